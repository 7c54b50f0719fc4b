"""Bring your own model: Keras, ONNX and checkpoint-zip uploads load as torch modules that explain works on;
files that are programs (TorchScript, pickles), or are broken, get a clear refusal."""
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from core.byo import ModelFileError, load_model_file  # noqa: E402
from core.upload_card import with_class_names, with_normalisation  # noqa: E402
from core.inside.explain import activations, class_target, conv_layer_names, grad_cam, layer_table, saliency  # noqa: E402
from core.engine.predict import predict_proba  # noqa: E402
from tests.conftest import ROOT  # noqa: E402


def seed001_keras():
    """The shape of seed 001's Keras MNIST CNN, with non-trivial BatchNorm statistics."""
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"), layers.BatchNormalization(name="bn1"),
        layers.MaxPooling2D(name="pool1"), layers.Conv2D(16, 3, strides=2, padding="same", name="conv2"),
        layers.Activation("relu", name="act2"), layers.Dropout(0.25, name="drop"),
        layers.Conv2D(16, 3, padding="valid", activation="relu", name="conv3"),
        layers.GlobalAveragePooling2D(name="gap"), layers.Dense(10, activation="softmax", name="out")])
    bn = model.layers[1]
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 2, 8).astype("float32"), rng.normal(0, 0.3, 8).astype("float32"),
                    rng.normal(0, 0.5, 8).astype("float32"), rng.uniform(0.5, 2, 8).astype("float32")])
    return model


def flatten_keras():
    layers = keras.layers
    return keras.Sequential([keras.Input((32, 32, 3)), layers.Rescaling(1 / 255), layers.Conv2D(4, 5, strides=2),
                             layers.ReLU(), layers.Flatten(), layers.Dense(3)])


def saved(model, tmp_path, name) -> bytes:
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_model_converts_and_matches(tmp_path, suffix):
    kmodel = seed001_keras()
    model, card = load_model_file(saved(kmodel, tmp_path, "mnist_cnn_best" + suffix), "mnist_cnn_best" + suffix)
    assert card.model.kwargs == {"in_channels": 1, "image_size": 28, "num_classes": 10}
    assert card.dataset.class_names == [str(i) for i in range(10)] and card.dataset.mean == [0.0]
    image = np.random.default_rng(0).integers(0, 256, (1, 28, 28), dtype=np.uint8)
    want = kmodel.predict(image.transpose(1, 2, 0)[None].astype("float32") / 255, verbose=0)[0]
    np.testing.assert_allclose(predict_proba(model, card, image), want, atol=1e-5)
    assert conv_layer_names(model) == ["conv1", "conv2", "conv3"]
    x = torch.from_numpy(image).float()[None] / 255
    cam = grad_cam(model, x, class_target(3))
    assert cam.shape == (1, 28, 28) and 0 <= float(cam.min()) <= float(cam.max()) <= 1
    assert float(saliency(model, x, class_target(3)).max()) > 0
    _, acts = activations(model, x)
    assert dict((r["layer"], r["output shape"]) for r in layer_table(model, acts))["pool1"] == "8 x 14 x 14"


def test_keras_flatten_order_rescaling_and_logits(tmp_path):
    kmodel = flatten_keras()
    model, card = load_model_file(saved(kmodel, tmp_path, "m.keras"), "m.keras")
    assert card.model.kwargs["num_classes"] == 3 and card.dataset.name == "uploaded"
    card = with_normalisation(card, "0-255 (raw pixels)")  # the model rescales by itself
    image = np.random.default_rng(2).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    logits = kmodel(image.transpose(1, 2, 0)[None].astype("float32")).detach().numpy()
    np.testing.assert_allclose(predict_proba(model, card, image), torch.softmax(torch.tensor(logits), 1)[0], atol=1e-5)


def test_keras_lambda_is_refused_without_running_it(tmp_path):
    layers = keras.layers
    kmodel = keras.Sequential([keras.Input((28, 28, 1)), layers.Lambda(lambda t: t * 2), layers.Flatten(),
                               layers.Dense(10)])
    for name in ("lambda.keras", "lambda.h5"):
        with pytest.raises(ModelFileError, match="Lambda layer"):
            load_model_file(saved(kmodel, tmp_path, name), name)


def test_keras_weights_only_and_truncated_files(tmp_path):
    kmodel = seed001_keras()
    kmodel.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ModelFileError, match="not a readable Keras model|only weights"):
        load_model_file((tmp_path / "w.weights.h5").read_bytes(), "w.h5")
    data = saved(kmodel, tmp_path, "m.keras")
    with pytest.raises(ModelFileError, match="truncated|corrupt"):
        load_model_file(data[: len(data) // 2], "m.keras")
    data = saved(kmodel, tmp_path, "m.h5")
    with pytest.raises(ModelFileError):
        load_model_file(data[: len(data) // 2], "m.h5")


def test_unsupported_keras_layer_is_named(tmp_path):
    inputs = keras.Input((28, 28, 1))
    a = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    out = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Add()([a, a])))
    with pytest.raises(ModelFileError, match="Add"):
        load_model_file(saved(keras.Model(inputs, out), tmp_path, "add.keras"), "add.keras")


def test_onnx_model_is_rebuilt_from_torch_layers_that_explain():
    from tests.hostile_corpus import small_onnx

    model, card = load_model_file(small_onnx(side=12), "small.onnx")
    assert card.upload["format"] == "ONNX" and card.model.kwargs == {"in_channels": 1, "image_size": 12,
                                                                      "num_classes": 3}
    assert [type(m).__name__ for m in model.layers.children()] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    x = torch.rand(2, 1, 12, 12)
    conv = conv_layer_names(model)
    assert conv and grad_cam(model, x, class_target(1), conv[0]).shape == (2, 12, 12)
    probs = predict_proba(model, card, np.zeros((1, 12, 12), np.uint8))
    assert probs.shape == (3,) and probs.sum() == pytest.approx(1, abs=1e-5)


def test_torchscript_is_refused_without_being_run(tmp_path):
    """TorchScript is a program: a scripted forward() that creates a file on the server is never called."""
    from tests.hostile_corpus import MARKER, _torchscript

    marker = Path("/tmp") / MARKER
    marker.unlink(missing_ok=True)
    for kind in ("writes", "loops", "fine"):
        with pytest.raises(ModelFileError, match="TorchScript is a program.*ONNX"):
            load_model_file(_torchscript(kind), f"{kind}.pt")
    assert not marker.exists()


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cnn_studio_pwned_byo",))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_hostile_pickles_are_refused_unopened(how):
    target = "/tmp/cnn_studio_pwned_byo"
    if os.path.exists(target):
        os.remove(target)
    if how == "pickle":
        data = pickle.dumps(Evil())
    else:
        buffer = io.BytesIO()
        torch.save({"model": Evil()}, buffer)
        data = buffer.getvalue()
    with pytest.raises(ModelFileError, match="pickle|torch.save"):
        load_model_file(data, "model.pth")
    assert not os.path.exists(target)


def test_checkpoint_zip_loads_and_ignores_other_paths(tmp_path):
    folder = ROOT / "checkpoints" / "mnist_fast_cnn"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"mnist_fast_cnn/{f.name}")
        z.writestr("mnist_fast_cnn/notes/readme.txt", "not part of a checkpoint: ignored")
    model, card = load_model_file(buffer.getvalue(), "mnist_fast_cnn.zip")
    assert card.model.name == "fast_cnn" and card.dataset.name == "mnist"
    from core.engine.checkpoint import load_checkpoint
    reference, _ = load_checkpoint(folder)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(model(x), reference(x))


@pytest.mark.parametrize("data,match", [(b"", "empty"), (b"hello world", "not a model file"),
                                        (b"PK\x03\x04broken", "truncated"),
                                        (b"\x89HDF\r\n\x1a\n", "not a readable Keras model.*truncated")])
def test_junk_files_get_a_message(data, match):
    with pytest.raises(ModelFileError, match=match):
        load_model_file(data, "thing.bin")


def test_card_helpers_validate():
    from core.engine.checkpoint import DatasetInfo, ModelCard, ModelSpec

    card = ModelCard(task="classification", model=ModelSpec("TorchScript", {"num_classes": 2}), upload={},
                     dataset=DatasetInfo(name="uploaded", channels=1, image_size=8, mean=[0.0], std=[1.0],
                                         class_names=["a", "b"]))
    assert with_normalisation(card, "[-1, 1]").dataset.std == [0.5]
    with pytest.raises(ValueError):
        with_normalisation(card, "ImageNet mean/std")
    named = with_class_names(card, ["cat", "dog"])
    assert named.dataset.class_names == ["cat", "dog"] and named.upload["class_names_guessed"] is False
    with pytest.raises(ValueError):
        with_class_names(card, ["one"])


def open_with_upload(page: str, select_key: str, model, card, label="mine.keras (uploaded Keras .keras)"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=90)
    at.session_state["uploaded_models"] = {label: (model, card)}
    at.session_state[select_key] = label
    return at.run()


def test_uploaded_keras_model_drives_the_draw_and_inside_pages(tmp_path):
    model, card = load_model_file(saved(seed001_keras(), tmp_path, "mine.keras"), "mine.keras")
    at = open_with_upload("draw.py", "draw_model", model, card)
    assert not at.exception and at.metric[0].label == "Prediction"  # a 28x28 digit model gets the canvas
    assert any("Keras .keras from mine.keras: input 1x28x28, 10 classes" in s.value for s in at.success)
    at = open_with_upload("inside.py", "inside_model", model, card)
    assert not at.exception
    assert {"conv1", "pool1", "out"} <= set(at.dataframe[0].value["layer"])
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert "Grad-CAM at conv 3 of 3: conv3" in captions and "Saliency for" in captions
    at.text_input(key="byo_names_mine.keras (uploaded Keras .keras)").set_value(
        "zero, one, two, three, four, five, six, seven, eight, nine").run()
    assert not at.exception and at.metric[0].value in {"zero", "one", "two", "three", "four", "five", "six",
                                                       "seven", "eight", "nine"}


def test_uploaded_model_without_convolutions_explains_what_it_can(tmp_path):
    layers = keras.layers
    dense = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(16, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model, card = load_model_file(saved(dense, tmp_path, "mlp.h5"), "mlp.h5")
    at = open_with_upload("inside.py", "inside_model", model, card, label="mlp.h5 (uploaded Keras .h5)")
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "no convolution layer" in infos and "Grad-CAM needs a convolution layer" in infos
    assert any("Saliency for" in c for img in at.get("image") for c in img.captions)
