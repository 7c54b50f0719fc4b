"""ONNX export (issue 30): every shipped classifier, the pair CNN and the CRNN export and match PyTorch in ONNX
Runtime; an export returns through the project's own ONNX upload as it left; the metadata an upload carries is
data, checked like any card; a mismatch writes no file."""
import json

import numpy as np
import pytest

import core.kinds  # noqa: F401  (every kind's card rules)
from core import paths
from core.byo import load_model_file
from core.cli import main
from core.engine.checkpoint import load_checkpoint, read_card
from core.engine.predict import predict_proba
from core.models import onnx_export
from core.models.onnx_export import METADATA, TASKS, export_model

EXPORTABLE = sorted(p.name for p in paths.SHIPPED_CHECKPOINTS.iterdir()
                    if (p / "card.json").is_file() and read_card(p).task in TASKS
                    and not read_card(p).weights_from_package)


def test_every_shipped_exportable_model_is_covered():
    assert {"mnist_fast_cnn", "fashion_fast_cifar", "cifar10_fast_cifar", "mnist_pair_cnn", "mnist_crnn"} <= set(
        EXPORTABLE)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_export_matches_pytorch_in_onnx_runtime(name):
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / name)
    data, report = export_model(model, card)
    assert report["max_abs_diff"] <= 1e-4 and report["bytes"] == len(data)
    import onnx

    meta = json.loads({p.key: p.value for p in onnx.load_from_string(data).metadata_props}[METADATA])
    assert meta["task"] == card.task and meta["mean"] == list(card.dataset.mean)
    assert meta["class_names"] == list(card.dataset.class_names)


@pytest.mark.parametrize("name", ["mnist_fast_cnn", "cifar10_fast_cifar"])
def test_an_export_loads_back_through_the_upload_unchanged(name):
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / name)
    data, _ = export_model(model, card)
    back, back_card = load_model_file(data, f"{name}.onnx")
    assert back_card.dataset.class_names == card.dataset.class_names
    assert back_card.dataset.mean == list(card.dataset.mean) and back_card.dataset.std == list(card.dataset.std)
    assert back_card.dataset.name == card.dataset.name and not back_card.upload["notes"]
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.integers(0, 256, (card.dataset.channels, card.dataset.image_size, card.dataset.image_size), np.uint8)
        assert np.abs(predict_proba(back, back_card, x) - predict_proba(model, card, x)).max() < 1e-5


def _with_metadata(data: bytes, **changes) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    entry = next(p for p in proto.metadata_props if p.key == METADATA)
    entry.value = json.dumps({**json.loads(entry.value), **changes})
    return proto.SerializeToString()


def test_an_uploads_metadata_is_checked_like_a_card():
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    data, _ = export_model(model, card)
    hostile = _with_metadata(data, std=[0.0], dataset="/etc/passwd", class_names=["a", "b"])
    _, back = load_model_file(hostile, "hostile.onnx")
    assert back.dataset.std == [1.0] and back.dataset.name == "mnist"  # the guess from the input shape, not the file
    assert back.dataset.class_names == [str(i) for i in range(10)]
    assert any("normalisation" in n for n in back.upload["notes"]) and any("class names" in n for n in back.upload["notes"])
    _, junk = load_model_file(_with_metadata(data, class_names="zero"), "junk.onnx")
    assert junk.dataset.class_names == [str(i) for i in range(10)]


def test_the_export_verb(tmp_path, capsys):
    out = tmp_path / "pair.onnx"
    assert main(["export", str(paths.SHIPPED_CHECKPOINTS / "mnist_pair_cnn"), "--out", str(out)]) == 0
    assert out.stat().st_size > 1e6 and "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    assert main(["export", str(paths.SHIPPED_CHECKPOINTS / "fashion_ae"), "--out", str(tmp_path / "ae.onnx")]) == 2
    assert "classifiers, the pair CNN and the CRNN" in capsys.readouterr().err and not (tmp_path / "ae.onnx").exists()


def test_an_export_that_does_not_match_writes_no_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # nothing can match: the check must stop the write
    out = tmp_path / "m.onnx"
    assert main(["export", str(paths.SHIPPED_CHECKPOINTS / "mnist_seed004_mlp"), "--out", str(out)]) == 2
    assert "differs from the PyTorch model" in capsys.readouterr().err and not out.exists()
