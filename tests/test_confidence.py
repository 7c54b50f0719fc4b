"""Confidence that means something (issue 28): calibration metrics on cases whose answer is known, temperature
scaling, out-of-distribution scores and the `calibrate` / `ood` verbs, and deletion curves on a model built so
that the faithful explanation is known (it looks at one quadrant only)."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from core.classifier.calibration import (brier, calibration_metrics, ece, fit_temperature, nll, reliability, score,
                                         separation, threshold)
from core.cli import main
from core.engine.checkpoint import read_card
from core.inside.attribution import attribute
from core.inside.explain import class_target
from core.inside.faithfulness import deletion_curve, random_curve


def logits_with_confidence(confidence: float, n: int, classes: int = 10) -> torch.Tensor:
    """Logits whose softmax gives `confidence` to class 0 and shares the rest equally."""
    rest = (1 - confidence) / (classes - 1)
    row = torch.log(torch.tensor([confidence] + [rest] * (classes - 1)))
    return row.repeat(n, 1)


def test_ece_is_the_gap_between_confidence_and_accuracy():
    logits = logits_with_confidence(0.8, 1000)
    labels = torch.zeros(1000, dtype=torch.long)
    labels[:200] = 1  # 80 % right at 80 % confidence: calibrated
    assert ece(logits, labels) == pytest.approx(0.0, abs=1e-6)
    labels[:500] = 1  # 50 % right at 80 % confidence: 0.3 overconfident
    assert ece(logits, labels) == pytest.approx(0.3, abs=1e-6)
    bins = reliability(logits, labels)
    assert sum(b["count"] for b in bins) == 1000
    full = [b for b in bins if b["count"]]
    assert len(full) == 1 and full[0]["accuracy"] == pytest.approx(0.5) and full[0]["confidence"] == pytest.approx(0.8)


def test_nll_and_brier_match_their_definitions():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    p = torch.softmax(logits, 1)
    assert nll(logits, labels) == pytest.approx(float(-torch.log(p[[0, 1], [0, 0]]).mean()), rel=1e-5)
    onehot = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert brier(logits, labels) == pytest.approx(float(((p - onehot) ** 2).sum(1).mean()), rel=1e-5)


def test_temperature_scaling_recovers_an_overconfidence_it_was_given():
    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(5000, 10, generator=gen) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=gen)[:, 0]  # exactly calibrated
    t = fit_temperature(true_logits * 3, labels)  # a model 3x overconfident
    assert t == pytest.approx(3.0, rel=0.1)
    assert ece(true_logits * 3, labels, t) < ece(true_logits * 3, labels) / 3
    metrics, section = calibration_metrics((true_logits[:2500] * 3, labels[:2500]), (true_logits[2500:] * 3,
                                                                                       labels[2500:]))
    assert metrics["ece_calibrated"] < metrics["ece"] and section["temperature"] == metrics["temperature"]
    assert section["ood"]["tpr"] == 0.95 and "test split" in section["ood"]["on"]
    no_val, section = calibration_metrics(None, (true_logits, labels))
    assert "temperature" not in no_val and "temperature" not in section  # nothing held out: no temperature


def test_scores_and_threshold():
    confident = torch.tensor([[10.0, 0.0], [0.0, 9.0]])
    unsure = torch.tensor([[0.1, 0.0], [0.0, 0.2]])
    assert (score(confident) > score(unsure)).all() and (score(confident, "msp") > score(unsure, "msp")).all()
    inside = torch.linspace(0, 1, 101)
    assert threshold(inside) == pytest.approx(0.05)  # 95 % of in-distribution scores lie above it
    apart = separation(inside + 2, inside)
    assert apart["auroc"] == 1.0 and apart["fpr_at_95_tpr"] == 0.0
    assert separation(inside, inside)["auroc"] == pytest.approx(0.5)


class QuadrantModel(nn.Module):
    """Two classes decided by the top-left quadrant's ink alone: the faithful map is that quadrant."""

    def forward(self, x):
        ink = x[:, :, :8, :8].mean((1, 2, 3)) * 20
        return torch.stack([ink, -ink], 1)


def test_deletion_curve_ranks_the_faithful_map_first():
    model = QuadrantModel()
    x = torch.ones(1, 1, 16, 16)
    right = np.zeros((16, 16))
    right[:8, :8] = 1.0  # the quadrant the model reads
    wrong = 1.0 - right  # everything but the quadrant, so the quadrant goes last
    faithful = deletion_curve(model, x, 0, right)
    unfaithful = deletion_curve(model, x, 0, wrong)
    chance = random_curve(model, x, 0)
    assert faithful["probability"][0] == pytest.approx(unfaithful["probability"][0])  # nothing removed yet
    assert faithful["probability"][0] > 0.99
    assert faithful["probability"][-1] == pytest.approx(0.5)  # all removed: no evidence either way
    assert len(faithful["removed"]) == 21 and faithful["removed"][1] == pytest.approx(0.05, abs=0.01)
    assert faithful["area"] < chance["area"] - 0.2 and faithful["area"] < unfaithful["area"] - 0.2
    assert min(unfaithful["probability"][:15]) > 0.99  # 75 % of the pixels gone, and the model has not noticed
    assert faithful["probability"][5] == pytest.approx(0.5, abs=0.01)  # the quadrant (25 %) gone after 5 steps
    saliency = attribute("Saliency", model, x, class_target(0))[0].numpy()  # a real method finds the quadrant
    assert saliency[8:, :].max() == 0 and saliency[:, 8:].max() == 0
    assert deletion_curve(model, x, 0, saliency)["area"] == pytest.approx(faithful["area"], abs=0.02)


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    from core.classifier.recipe import ClassifierRecipe
    from core.engine import TrainConfig
    from core.engine.run import run

    folder = tmp_path_factory.mktemp("confidence")
    config = TrainConfig(epochs=3, batch_size=64, lr=0.05, seed=0)
    run(ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.1, config=config), out=folder / "held")
    run(ClassifierRecipe(dataset="digits", model="fast_cnn", config=config), out=folder / "all")
    return folder


def test_training_records_calibration_and_the_ood_threshold(digits_runs):
    card = read_card(digits_runs / "held")
    section = card.section("calibration")
    assert {"ece", "nll", "brier", "temperature", "ece_calibrated"} <= set(card.metrics)
    assert section["temperature"] == card.metrics["temperature"] and "validation split" in section["fitted_on"]
    assert len(section["reliability"]) == 15 and len(section["reliability_calibrated"]) == 15
    assert isinstance(section["ood"]["threshold"], float)
    assert "temperature" not in read_card(digits_runs / "all").metrics  # no held-out images: no temperature


def test_calibrate_and_ood_verbs(digits_runs, capsys):
    held = digits_runs / "held"
    before = read_card(held).section("calibration")["temperature"]
    assert main(["calibrate", str(held)]) == 0
    assert "temperature" in capsys.readouterr().out
    assert read_card(held).section("calibration")["temperature"] == pytest.approx(before, rel=1e-3)  # same split
    assert "python -m core calibrate" in read_card(held).section("calibration")["command"]
    assert main(["calibrate", str(digits_runs / "all")]) == 0  # its threshold and ECE, but no temperature ...
    assert "--val-split" in capsys.readouterr().out  # ... and how to get one: never from the test set
    assert "temperature" not in read_card(digits_runs / "all").section("calibration")
    assert read_card(digits_runs / "all").section("calibration")["ood"]["threshold"] is not None
    assert main(["ood", str(held), "--ood", "scribbles", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["auroc"] <= 1 and 0 <= report["fpr_at_95_tpr"] <= 1
    assert set(report["scores"]) == {"energy", "msp"} and report["in"] == "digits"
    assert main(["ood", str(held), "--ood", "digits"]) == 2  # its own data set is no outside
    assert main(["evaluate", str(held), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert {"ece", "nll", "temperature", "ece_calibrated"} <= set(metrics)


def test_shipped_mnist_model_tells_fashion_from_digits(real_data):
    from core.classifier.ood import ood_report
    from core.engine.checkpoint import load_checkpoint

    from core import paths

    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    report = ood_report(model, card, "fashion_mnist", str(real_data))
    assert report["auroc"] >= 0.99 and report["threshold"] is not None
