"""Teach: the head and its batched held-out check, the checkpoint it saves, the `teach` verb and the page."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import SettingsError
from core.teach import head
from core.teach.head import folds_of, teach
from core.teach.shots import check_classes, views


def _clusters(per_class: int, classes: int = 3, dim: int = 40, views: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 1.5
    labels = torch.arange(classes).repeat_interleave(per_class)
    features = centres[labels][:, None] + torch.randn(len(labels), views, dim, generator=g)
    return features.relu(), labels  # non-negative, like the backbone's pooled features


def test_each_held_out_answer_comes_from_a_model_that_never_saw_that_shot():
    """The batched check equals training again without the shot: leave shot i out, retrain, predict it."""
    features, labels = _clusters(per_class=6)
    taught = teach(features, labels, ["a", "b", "c"])
    assert taught.check["method"].startswith("leave-one-out") and taught.check["shots"] == 18
    for i in (0, 7, 17):
        keep = torch.arange(18) != i
        alone = teach(features[keep], labels[keep], ["a", "b", "c"])
        again = alone.logits(features[i, :1]).softmax(1)[0]
        batched = taught.held[i].softmax(0)
        assert int(again.argmax()) == int(batched.argmax())
        assert (again - batched).abs().max() < 0.1  # (the batched check standardises with all shots' statistics)
    assert taught.check["accuracy"] > 0.9
    assert sum(map(sum, taught.check["confusion"])) == 18


def test_the_folded_head_scores_raw_features_like_the_standardised_model():
    features, labels = _clusters(per_class=5)
    taught = teach(features, labels, ["a", "b", "c"])
    logits = taught.logits(features[:, 0])
    assert (logits.argmax(1) == labels).float().mean() == 1.0  # training shots are fitted
    assert taught.losses[-1] < taught.losses[0] and len(taught.losses) > 3


def test_many_shots_get_stratified_folds_and_every_class_needs_two():
    fold, method = folds_of(torch.arange(4).repeat_interleave(20))
    assert method.startswith(f"{head.FOLDS}-fold") and sorted(fold.unique().tolist()) == list(range(head.FOLDS))
    assert all(len(fold[torch.arange(80) // 20 == c].unique()) == head.FOLDS for c in range(4))
    features, labels = _clusters(per_class=25)
    assert teach(features, labels, ["a", "b", "c"]).check["method"].startswith(f"{head.FOLDS}-fold")
    with pytest.raises(SettingsError, match="at least 2 shots; add more to: b, c"):
        teach(features[:26], labels[:26], ["a", "b", "c"])


@pytest.mark.parametrize("names, match", [(["cat"], "between 2 and 10"), (["a", "a"], "same name"),
                                          (["a", " "], "no name"), ([str(i) for i in range(11)], "between 2 and 10")])
def test_class_names_are_checked(names, match):
    with pytest.raises(SettingsError, match=match):
        check_classes(names)


def test_views_are_the_shot_its_mirror_and_a_zoom():
    shot = torch.arange(3 * 10 * 10, dtype=torch.float32).view(1, 3, 10, 10).to(torch.uint8)
    out = views(shot)
    assert out.shape == (3, 3, 10, 10) and out.dtype == torch.uint8
    assert torch.equal(out[0], shot[0]) and torch.equal(out[1], shot[0].flip(-1))


def _shot_folder(root, per_class: int = 3, junk: bool = True):
    """Class folders of crops of scikit-image photos (and, with junk, a file that is no image)."""
    from skimage import data

    rng = np.random.default_rng(0)
    for name in ("chelsea", "coffee", "rocket"):
        image = np.asarray(getattr(data, name)())
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            side = int(min(image.shape[:2]) * rng.uniform(0.6, 0.9))
            top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
            Image.fromarray(image[top:top + side, left:left + side]).save(root / name / f"{i}.jpg")
    if junk:
        (root / "coffee" / "notes.png").write_bytes(b"not a picture")
    return root


def test_teach_verb_writes_a_checkpoint_that_predicts_like_the_head(tmp_path, capsys, monkeypatch):
    from core.cli import main
    from core.engine.checkpoint import load_checkpoint
    from core.engine.predict import predict_proba
    from core.runs import list_runs
    from core.teach.shots import as_shot

    folder = _shot_folder(tmp_path / "shots")
    assert main(["teach", str(folder), "--out", str(tmp_path / "runs" / "taught")]) in (0, None)
    out = capsys.readouterr().out
    assert "leave-one-out over 9 shots" in out and "1 files were not readable images" in out
    model, card = load_checkpoint(tmp_path / "runs" / "taught")
    assert card.dataset.class_names == ["chelsea", "coffee", "rocket"] and not card.dataset.has_test_set
    assert card.dataset.extra["shots"] == {"chelsea": 3, "coffee": 3, "rocket": 3}
    assert card.headline.value == card.metrics["heldout_accuracy"] and card.section("calibration")["ood"]["threshold"]
    photo = np.asarray(Image.open(folder / "rocket" / "0.jpg"))
    assert int(predict_proba(model, card, as_shot(photo)).argmax()) == 2
    (run_dir, spec, status), = list_runs(tmp_path / "runs")  # listed on Compare runs like a run
    assert spec["kind"] == "teach" and status["state"] == "finished"
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path / "runs"))
    trainer = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120).run()  # watches it: newest
    assert not trainer.exception and any("accuracy on held-out shots" in s.value for s in trainer.success)
    assert "fitting one needs at least 50 held-out shots" in trainer.success[0].value
    compare = AppTest.from_file(str(ROOT / "pages" / "runs.py"), default_timeout=120).run()
    assert not compare.exception and list(compare.dataframe[0].value["run"]) == ["taught"]
    assert main(["teach", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "error:" in capsys.readouterr().err


def test_teach_page_example_trains_answers_and_saves(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "teach.py"), default_timeout=300).run()
    assert not at.exception and "Add at least 2 shots" in at.info[0].value
    at.button[0].click().run()  # the example: three classes of sample-photo shots
    assert [m.value for m in at.markdown if m.value.startswith("**")] == \
        ["**cat**: 8 shots", "**coffee**: 8 shots", "**rocket**: 8 shots"]
    at.button(key="teach_train").click().run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Held-out accuracy"] == "100%" and metrics["Prediction"] == "cat"  # the sample photo: Chelsea
    at.selectbox(key="teach_try_photo").set_value("rocket").run()
    assert {m.label: m.value for m in at.metric}["Prediction"] == "rocket"
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("teach_rm_"))).click().run()
    assert "**cat**: 7 shots" in [m.value for m in at.markdown] and "changed since this training" in at.info[0].value
    at.text_input(key="teach_save_name").input("pets").run()
    at.button(key="teach_save").click().run()
    assert "listed on Draw" in at.success[0].value and (tmp_path / "pets" / "card.json").is_file()
    at.text_input(key="teach_save_name").input("pets").run()  # the same name again: this model, saved again
    at.button(key="teach_save").click().run()
    assert not at.error
    (tmp_path / "other").mkdir()
    at.text_input(key="teach_save_name").input("other").run()  # another run's name: refused, nothing overwritten
    at.button(key="teach_save").click().run()
    assert "another name" in at.error[0].value and not (tmp_path / "other" / "card.json").exists()
