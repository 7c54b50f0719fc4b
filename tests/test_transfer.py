"""The pretrained EfficientNet-Lite0: offline ImageNet predictions, the prefix/suffix split, the feature cache,
transfer training through the common engine, and the explorer pages with the ImageNet model."""
from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import paths
from core.engine.checkpoint import load_checkpoint
from core.data import load_dataset
from core.engine import TrainConfig
from core.engine.predict import predict_proba
from core.models import build_model
from core.draw.preprocess import preprocess_photo, sample_photo
from core.engine.run import run
from core.classifier import ClassifierRecipe
from core.classifier.evaluate import evaluate_classifier
from core.classifier.transfer import cached_prefix, imagenet_class_names, per_class_subset
from tests.conftest import ROOT

IMAGENET = paths.SHIPPED_CHECKPOINTS / "efficientnet_lite0_imagenet"
CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def imagenet():
    return load_checkpoint(IMAGENET)


def top(model, card, photo: str) -> int:
    return int(predict_proba(model, card, preprocess_photo(sample_photo(photo), size=224, channels=3)).argmax())


def test_imagenet_names_are_readable_and_in_model_order():
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000
    assert names[285] == "Egyptian cat" and names[967] == "espresso" and names[0].startswith("tench")
    assert {"crane (bird)", "crane (machine)"} <= set(names)


def test_pretrained_model_loads_offline_and_knows_the_bundled_photos(imagenet):
    model, card = imagenet
    assert card.dataset.class_names == imagenet_class_names()
    assert (IMAGENET / "model.safetensors").stat().st_size < 1000, "the weights come from the package, not the repo"
    assert top(model, card, "cat (Chelsea)") in CATS
    assert card.dataset.class_names[top(model, card, "coffee")] == "espresso"


def digits_batch(n=24):
    data = load_dataset("digits")
    return data, data.train_x[:n]


@pytest.mark.parametrize("fine_tune", [0, 2])
def test_prefix_then_suffix_is_the_forward_pass_and_only_the_tail_trains(fine_tune):
    data, x = digits_batch(4)
    model = build_model("efficientnet_lite0", in_channels=1, image_size=8, num_classes=10, resolution=64,
                        fine_tune=fine_tune, stats=(data.mean, data.std)).eval()
    from core.engine.tasks import normalize

    batch = normalize(x, data.mean, data.std)
    with torch.no_grad():
        torch.testing.assert_close(model.suffix(*model.prefix(batch)), model(batch))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"fc.weight", "fc.bias"} <= trainable
    assert any(n.startswith("net._blocks.15.") for n in trainable) == (fine_tune > 0)
    assert not any(n.startswith(("net._blocks.13.", "net._conv_stem")) for n in trainable)
    model.train()
    assert not model.net._blocks[0]._bn1.training, "frozen batch norms keep their ImageNet statistics"
    assert model.net._blocks[15]._bn1.training == (fine_tune > 0)


def test_feature_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    data, x = digits_batch()
    model = build_model("efficientnet_lite0", in_channels=1, image_size=8, num_classes=10, resolution=48,
                        stats=(data.mean, data.std))
    first, hit = cached_prefix(model, x, data.mean, data.std, cache=tmp_path)
    assert not hit and len(list(tmp_path.glob("*.safetensors"))) == 1
    monkeypatch.setattr(model, "prefix", lambda *_: pytest.fail("the cached features were computed again"))
    again, hit = cached_prefix(model, x, data.mean, data.std, cache=tmp_path)
    assert hit and torch.equal(first[0], again[0]) and first[0].shape == (len(x), 1904)
    monkeypatch.undo()
    _, hit = cached_prefix(model, x[:-1], data.mean, data.std, cache=tmp_path)
    assert not hit, "other images get their own cache entry"
    next(tmp_path.glob("*.safetensors")).write_bytes(b"broken")  # a damaged entry is recomputed, not fatal
    assert cached_prefix(model, x, data.mean, data.std, cache=tmp_path)[0][0].shape == (len(x), 1904)


def test_transfer_training_through_the_engine_and_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty feature cache: the first run fills it
    spec = ClassifierRecipe(dataset="digits", model="efficientnet_lite0", model_options={"resolution": 48}, val_split=0.1,
                     config=TrainConfig(epochs=4, batch_size=64, lr=3e-3))
    events = []
    card = run(spec, events.append, out=tmp_path / "run")
    assert card.metrics["test_accuracy"] > 0.85, card.metrics["test_accuracy"]
    prepare = [e for e in events if e.kind == "prepare"]
    assert prepare and prepare[-1].done == prepare[-1].total and "cached" in prepare[-1].message
    assert (tmp_path / "run" / "model.safetensors").stat().st_size < 100_000, "only the trained head is stored"
    model, loaded = load_checkpoint(tmp_path / "run")  # the whole network (frozen prefix + trained head) again
    data = load_dataset("digits")
    assert evaluate_classifier(model, data)["accuracy"] == pytest.approx(card.metrics["test_accuracy"], abs=0.01)
    assert predict_proba(model, loaded, data.test_x[0].numpy()).argmax() == int(data.test_y[0])
    events.clear()
    run(dataclasses.replace(spec, config=dataclasses.replace(spec.config, epochs=1)), events.append)
    assert any("read from the cache" in e.message for e in events if e.kind == "prepare")


def test_cached_features_refuse_augmentation():
    from core.data import AugmentConfig

    spec = ClassifierRecipe(dataset="digits", model="efficientnet_lite0", augment=AugmentConfig(translate=1))
    with pytest.raises(ValueError, match="switch off augmentation"):
        run(spec)


def test_stop_during_feature_extraction_ends_the_run_as_stopped(tmp_path, monkeypatch):
    from core.engine import RunControl
    from core.engine import StoppedWhilePreparing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing cached: extraction must run
    control = RunControl()
    control.stop()
    spec = ClassifierRecipe(dataset="digits", model="efficientnet_lite0", model_options={"resolution": 32})
    with pytest.raises(StoppedWhilePreparing, match="nothing was trained"):
        run(spec, control=control, out=tmp_path / "run")
    assert not (tmp_path / "run" / "card.json").exists()


def test_per_class_subset_takes_n_of_each_class():
    labels = torch.tensor([0] * 30 + [1] * 5 + [2] * 20)
    idx = per_class_subset(labels, 10)
    assert torch.bincount(labels[idx]).tolist() == [10, 5, 10] and torch.equal(idx, idx.unique())


def page_on_imagenet(page: str, key: str) -> AppTest:
    """AppTest of pages/`page` with its model chooser `key` set to the shipped ImageNet model."""
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=120)
    at.run()
    label = next(o for o in at.selectbox(key=key).options if o.startswith("efficientnet_lite0_imagenet"))
    at.selectbox(key=key).set_value(label).run()
    assert not at.exception
    return at


def test_inside_page_explains_a_sample_photo_with_the_imagenet_model():
    at = page_on_imagenet("inside.py", "inside_model")
    assert at.radio(key="inside_source").value == "Sample photo", "a pretrained model opens on a real photo"
    assert at.metric[0].value in {"tabby, tabby cat", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
    layers = at.dataframe[0].value
    assert list(layers["layer"])[:2] == ["net._conv_stem", "net._blocks.0"] and len(layers) == 18
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert re.search(r"Grad-CAM at conv (\d+) of \1: conv head", captions), captions  # the last conv, in words
    assert "occlusion sensitivity" in captions
    assert "Integrated Gradients" not in captions  # the four fast methods on a photo, whatever the MNIST model used
    at.selectbox(key="inside_photo").set_value("coffee").run()
    assert not at.exception and at.metric[0].value == "espresso"


def test_draw_page_classifies_a_sample_photo_with_the_imagenet_model():
    at = page_on_imagenet("draw.py", "draw_model")
    assert at.radio(key="draw_source_efficientnet_lite0_imagenet").value == "Sample photo"
    at.selectbox(key="draw_photo").set_value("coffee").run()
    assert at.metric[0].value == "espresso"


def test_trainer_transfer_recipe_shows_the_data_efficiency_chart():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120)
    at.run()
    name = next(o for o in at.selectbox(key="trainer_preset").options if o.startswith("Transfer: pretrained"))
    at.selectbox(key="trainer_preset").set_value(name).run()
    assert not at.exception
    assert at.selectbox(key=f"trainer_{name}_model").value == "efficientnet_lite0"
    assert any("test accuracy against training images per class" in e.label for e in at.expander)
