"""Test-set evaluation of a classifier: accuracy, per-class accuracy, confusion matrix.

Owns classifier metrics on a data set's test split. `python -m core evaluate CKPT` (see `core.cli`) prints them for a checkpoint, with
the data set and normalisation from its model card, so a checkpoint evaluates the way it was trained.
"""
from __future__ import annotations

import torch
from torch import nn

from core.data import Dataset
from core.engine.predict import predict_logits


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


def evaluate_classifier(model: nn.Module, data: Dataset, mean=None, std=None) -> dict:
    """The classification report of `model` on the test split, plus `probs`: (N, classes) softmax outputs."""
    logits = predict_logits(model, data.test_x, mean or data.mean, std or data.std)
    report = classification_report(logits, data.test_y, data.class_names)
    report["probs"] = torch.softmax(logits, dim=1)
    return report


def most_confused(confusion: list[list[int]], top: int = 5) -> list[tuple[int, int, int]]:
    """The largest off-diagonal cells as (true, predicted, count), biggest first."""
    cells = [(i, j, n) for i, row in enumerate(confusion) for j, n in enumerate(row) if i != j and n]
    return sorted(cells, key=lambda c: -c[2])[:top]
