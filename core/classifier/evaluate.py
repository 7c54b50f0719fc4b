"""Test-set evaluation of a classifier: accuracy, per-class accuracy, confusion matrix, ensembles.

Owns classifier metrics on a data set's test split. `python -m core evaluate CKPT` (see `core.cli`) measures a
checkpoint with them, with the data set and normalisation from its model card, so a checkpoint evaluates
the way it was trained; `--ensemble` averages several classifiers' probabilities.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from core.classifier.calibration import calibration_metrics
from core.data import Dataset, load_dataset
from core.engine.checkpoint import update_card
from core.engine.predict import predict_logits
from core.errors import SettingsError


def classification_report(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict:
    """accuracy, per_class {name: accuracy}, confusion[true][pred] counts, n."""
    k = len(class_names)
    pred = logits.argmax(1)
    confusion = torch.bincount(labels * k + pred, minlength=k * k).view(k, k)
    support = confusion.sum(1).clamp_min(1)
    per_class = (confusion.diag().float() / support).tolist()
    return {"accuracy": float((pred == labels).float().mean()), "n": int(len(labels)),
            "per_class": {name: round(a, 4) for name, a in zip(class_names, per_class)},
            "confusion": confusion.tolist()}


def report_metrics(report: dict) -> dict:
    """A classification report as card metrics (the confusion matrix only while it stays small)."""
    metrics = {"test_accuracy": round(report["accuracy"], 5), "test_per_class": report["per_class"],
               "test_n": report["n"]}
    if len(report["confusion"]) <= 100:
        metrics["test_confusion"] = report["confusion"]
    return metrics


def evaluate_checkpoint(model: nn.Module, card, data_dir: str | None, tta: bool = False) -> tuple[dict, bool]:
    """(metrics, measured) of a classifier checkpoint on its data set's test split; a pretrained model whose data
    set is not on this machine (ImageNet) keeps the figures its card reports (measured False)."""
    from core.classifier.calibration import brier, ece, nll

    if not card.dataset.has_test_set:
        return dict(card.metrics), False
    data = load_dataset(card.dataset.name, data_dir)
    report = evaluate_classifier(model, data, card.dataset.mean, card.dataset.std, tta=tta)
    logits, labels = report["logits"], data.test_y
    metrics = {**report_metrics(report), "ece": round(ece(logits, labels), 5), "nll": round(nll(logits, labels), 5),
               "brier": round(brier(logits, labels), 5)}
    t = (card.section("calibration") or {}).get("temperature")
    if t is not None:  # fitted on the run's validation split when it trained (or by `python -m core calibrate`)
        metrics.update(temperature=t, ece_calibrated=round(ece(logits, labels, t), 5),
                       nll_calibrated=round(nll(logits, labels, t), 5))
    return {**metrics, **({"tta": True} if tta else {})}, True


def evaluate_classifier(model: nn.Module, data: Dataset, mean=None, std=None, tta: bool = False) -> dict:
    """The classification report of `model` on the test split, plus `probs`: (N, classes) softmax outputs.
    `tta`: average each image's logits with its mirror image's (refused for data whose labels a flip changes)."""
    if tta and not data.hflip:
        raise SettingsError(f"test-time flips change the labels of {data.name}: evaluate it without --tta.")
    logits = predict_logits(model, data.test_x, mean or data.mean, std or data.std, tta=tta)
    report = classification_report(logits, data.test_y, data.class_names)
    report["probs"], report["logits"] = torch.softmax(logits, dim=1), logits
    return report


def ensemble_report(members: list[tuple[nn.Module, object]], data: Dataset, tta: bool = False) -> dict:
    """Average the test-set probabilities of several classifiers of the same data set (each normalised as its
    card says). Returns the ensemble's classification report with `members`: each one's accuracy alone."""
    names = {tuple(card.dataset.class_names) for _, card in members}
    if len(names) != 1 or any(card.dataset.name != data.name for _, card in members):
        raise SettingsError("an ensemble needs classifiers of one data set with the same classes; got "
                         + ", ".join(sorted({card.dataset.name for _, card in members})) + ".")
    probs = [evaluate_classifier(model, data, card.dataset.mean, card.dataset.std, tta=tta)["probs"]
             for model, card in members]
    return averaged_report(probs, data.test_y, data.class_names)


def averaged_report(probs: list, labels: torch.Tensor, class_names: list[str]) -> dict:
    """The classification report of the mean of several models' (N, classes) probabilities on one test set, with
    `members`: each model's accuracy alone."""
    probs = [torch.as_tensor(p, dtype=torch.float32) for p in probs]
    report = classification_report(torch.stack(probs).mean(0).clamp_min(1e-12).log(), labels, class_names)
    report["members"] = [float((p.argmax(1) == labels).float().mean()) for p in probs]
    return report


def most_confused(confusion: list[list[int]], top: int = 5) -> list[tuple[int, int, int]]:
    """The largest off-diagonal cells as (true, predicted, count), biggest first."""
    cells = [(i, j, n) for i, row in enumerate(confusion) for j, n in enumerate(row) if i != j and n]
    return sorted(cells, key=lambda c: -c[2])[:top]


def ensemble_checkpoints(members: list[tuple[nn.Module, object]], data_dir: str | None, tta: bool = False) -> dict:
    """Card metrics of several classifier checkpoints of one data set whose probabilities are averaged, with
    `members_test_accuracy`: each one alone."""
    if any(card.task != "classification" or not card.dataset.has_test_set for _, card in members):
        raise SettingsError("an ensemble averages classifiers measured here: every checkpoint must be a classifier "
                            "of a data set on this machine.")
    report = ensemble_report(members, load_dataset(members[0][1].dataset.name, data_dir), tta)
    return {**report_metrics(report), "members_test_accuracy": [round(a, 5) for a in report["members"]],
            **({"tta": True} if tta else {})}


def calibrate_classifier(cls, folder, model, card, data_dir) -> dict:
    """Rebuild the run's splits from its card's settings; fit the temperature on the validation split (when the
    run held one out) and the OOD threshold on the test split; write both to the card."""
    from core.engine.flags import recipe_from_command

    settings = card.training.get("settings")
    try:  # the settings it recorded, or (older cards) the command that trained it
        recipe = (cls.from_dict(dict(settings, data_dir=data_dir)) if isinstance(settings, dict)
                  else dataclasses.replace(recipe_from_command(cls, card.command), data_dir=data_dir or ""))
    except (ValueError, TypeError, SystemExit):
        recipe = None
    if not isinstance(recipe, cls):
        raise SettingsError(f"{folder}: not a classifier trained by CNN Studio (its card records neither the "
                            "settings nor the command that would rebuild its validation split).")
    split = recipe._split(load_dataset(recipe.dataset, data_dir))
    ds = card.dataset
    logits = {name: predict_logits(model, x, ds.mean, ds.std) for name, (x, _) in split.items() if name != "train"}
    held = "validation" in split and recipe.folds <= 1
    metrics, section = calibration_metrics((logits["validation"], split["validation"][1]) if held else None,
                                           (logits["test"], split["test"][1]))
    update_card(folder, metrics={**card.metrics, **metrics},
                calibration={**section, "command": f"python -m core calibrate {folder}"})
    measured = {"test ECE": metrics["ece"], "OOD threshold": section["ood"]["threshold"]}
    if not held:
        return {**measured, "temperature": "none (its run held out no validation split and the test set is "
                "never used to fit one: train it again with --val-split 0.05)"}
    return {**measured, "temperature": metrics["temperature"], "test ECE calibrated": metrics["ece_calibrated"]}
