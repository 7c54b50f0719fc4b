"""Checkpoint round trip and every way a checkpoint file can be bad."""
from __future__ import annotations

import json
import pickle

import pytest
import torch

from core.engine.checkpoint import (CARD, WEIGHTS, CheckpointError, DatasetInfo, ModelCard, ModelSpec, list_checkpoints,
                             load_checkpoint, save_checkpoint)
from core.models import build_model


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("seed001_cnn", in_channels=1, image_size=8, num_classes=10)
    model.train()
    model(torch.randn(4, 1, 8, 8))  # move BatchNorm running stats away from their defaults
    model.eval()
    folder = save_checkpoint(tmp_path / "ckpt", model, digits_card(command="pytest"))
    return model, folder


def digits_card(**fields) -> ModelCard:
    """A card for a 10-class 8x8 grey classifier (the model spec is stamped in by save_checkpoint)."""
    return ModelCard(task="classification", model=ModelSpec("?", {}),
                     dataset=DatasetInfo(name="digits", channels=1, image_size=8, mean=[0.5], std=[0.25],
                                         class_names=[str(i) for i in range(10)]), **fields)


def test_round_trip_gives_identical_outputs(saved):
    model, folder = saved
    loaded, card = load_checkpoint(folder)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert card.model.name == "seed001_cnn" and card.torch_version == torch.__version__
    assert card.command == "pytest" and card.weights_bytes == (folder / WEIGHTS).stat().st_size
    assert not loaded.training
    assert [f.name for f, _ in list_checkpoints(folder.parent)] == ["ckpt"]


def test_channels_last_model_saves(tmp_path):
    model = build_model("fast_cnn", in_channels=1, image_size=28, num_classes=10).to(memory_format=torch.channels_last)
    card = digits_card()
    card.dataset.image_size = 28
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "cl", model, card))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_truncated_weights_are_reported(saved):
    _, folder = saved
    data = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as err:
        load_checkpoint(folder)
    assert str(folder / WEIGHTS) in str(err.value)


def test_pickle_disguised_as_weights_is_not_executed(saved, tmp_path):
    _, folder = saved

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {tmp_path}/pwned",))

    (folder / WEIGHTS).write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(folder)
    assert not (tmp_path / "pwned").exists()


def test_mismatched_weights_are_reported(saved):
    _, folder = saved
    card = json.loads((folder / CARD).read_text())
    card["model"]["kwargs"]["dense"] = 64
    (folder / CARD).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(folder)


@pytest.mark.parametrize("text,match", [("{not json", "not valid JSON"), ('["a list"]', "not a CNN Studio"),
                                        ('{"format": "cnn-studio-checkpoint/1"}', "'task' is missing")])
def test_bad_cards_are_reported(saved, text, match):
    _, folder = saved
    (folder / CARD).write_text(text)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")


def test_snapshots_round_trip(saved):
    from core.engine.checkpoint import list_snapshots, load_snapshot, save_snapshot
    model, folder = saved
    assert list_snapshots(folder) == []
    for epoch in (1, 2):
        with torch.no_grad():
            model.features[0].weight.add_(epoch)  # each epoch's weights differ
        save_snapshot(folder, model, epoch)
    assert list_snapshots(folder) == [1, 2]
    snap = load_snapshot(folder, 2)
    assert torch.allclose(snap.features[0].weight, model.features[0].weight, atol=1e-2)  # float16 storage
    assert not torch.allclose(load_snapshot(folder, 1).features[0].weight, model.features[0].weight)
    assert snap.features[0].weight.dtype == torch.float32
    with pytest.raises(CheckpointError, match="epoch_009"):
        load_snapshot(folder, 9)
