"""The CIFAR speed recipe's parts on tiny data: the whitened stem, bfloat16 training, test-time flips recorded
on the card, and ensembles in `python -m core evaluate`."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from core.engine.checkpoint import read_card
from core.models import build_model
from tests.test_cli import run
from tests.test_data import write_cifar10_fixture


def test_the_whitened_stem_decorrelates_2x2_patches():
    torch.manual_seed(0)
    x = torch.randn(256, 3, 12, 12)
    x = x + 0.8 * x.roll(1, -1) + 0.5 * x.roll(1, 1)  # neighbouring pixels and channels correlated
    model = build_model("fast_cifar", in_channels=3, image_size=12, num_classes=10, widths=(8, 8, 8))
    stem = model.features[0]
    assert not stem.weight.requires_grad and stem.bias.requires_grad  # filters set from data, bias trains
    model.fit_to_data(x)
    out = F.conv2d(x, stem.weight[:12]).permute(0, 2, 3, 1).reshape(-1, 12)  # the 12 eigen-filters
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(12), atol=0.05)  # unit variance, no correlation left
    assert torch.equal(stem.weight[12:], -stem.weight[:12])  # each filter with its negative


@pytest.fixture(scope="module")
def cifar_runs(tmp_path_factory):
    """Two tiny fast_cifar runs (seeds 0 and 1) on a 20-image CIFAR-10 tarball, trained in bfloat16."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10_fixture(root)
    outs = []
    for seed in (0, 1):
        out = root / f"run{seed}"
        run("core", "train", "--dataset", "cifar10", "--data-dir", str(root), "--model", "fast_cifar",
            "--model-option", "widths=[8,16,16]", "--epochs", "2", "--batch-size", "8", "--optimizer", "sgd",
            "--lr", "0.05", "--precision", "bf16", "--hflip", "--translate", "2", "--seed", str(seed),
            "--out", str(out))
        outs.append(out)
    return root, outs


def test_bf16_training_is_recorded_and_the_card_has_flip_tta(cifar_runs):
    root, (out, _) = cifar_runs
    card = read_card(out)
    assert "--precision bf16" in card.command and card.training["config"]["precision"] == "bf16"
    assert 0 <= card.metrics["test_accuracy_tta"] <= 1 and card.metrics["test_n"] == 3
    report = json.loads(run("core", "evaluate", str(out), "--data-dir", str(root), "--tta", "--json").stdout)
    assert report["metrics"]["tta"] is True
    assert report["headline"]["value"] == pytest.approx(card.metrics["test_accuracy_tta"], abs=1e-4)


def test_an_ensemble_averages_its_members(cifar_runs):
    root, outs = cifar_runs
    report = json.loads(run("core", "evaluate", *map(str, outs), "--ensemble", "--data-dir", str(root),
                            "--json").stdout)
    metrics = report["metrics"]
    assert report["model"] == "ensemble of fast_cifar, fast_cifar" and len(metrics["members_test_accuracy"]) == 2
    assert metrics["members_test_accuracy"] == [read_card(o).metrics["test_accuracy"] for o in outs]
    assert sum(map(sum, metrics["test_confusion"])) == 3


def test_tta_and_ensembles_refuse_what_they_cannot_mean(cifar_runs, tmp_path):
    root, outs = cifar_runs
    digits = tmp_path / "digits"
    run("core", "train", "--dataset", "digits", "--epochs", "1", "--out", str(digits))
    flipped = run("core", "evaluate", str(digits), "--tta", check=False)
    assert flipped.returncode == 2 and "flips change the labels of digits" in flipped.stderr
    mixed = run("core", "evaluate", str(outs[0]), str(digits), "--ensemble", "--data-dir", str(root), check=False)
    assert mixed.returncode == 2 and "one data set" in mixed.stderr
    alone = run("core", "evaluate", str(outs[0]), "--ensemble", check=False)
    assert alone.returncode == 2 and "two or more" in alone.stderr
