"""Stratified k-fold cross-validation of a training spec (seed 003 reports 5-fold accuracies).

Each fold trains a fresh model on the other k-1 folds of the training set with the spec's settings and
is scored on its held-out fold. The held-out fold is never seen during training, not even for model
selection: keep-best and early stopping are switched off, and a plateau schedule watches the training
loss. Events of every fold go to one callback with steps and epochs numbered on from the previous fold,
so a live chart shows the folds one after the other; a `FoldEvent` marks the end of each.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.data import load_dataset
from core.engine import Event, RunControl
from core.errors import SettingsError
from core.engine.run import run


@dataclass
class FoldEvent:
    fold: int  # 1-based
    folds: int
    accuracy: float
    epochs: int
    train_seconds: float
    kind: str = "fold"


def cross_validate(spec, folds: int, callback: Callable[[Event], None] | None = None,
                   control: RunControl | None = None) -> dict:
    """{"folds": [{"fold", "accuracy", "epochs", "train_seconds", "n"}], "mean", "std", ...}: one `run` per fold."""
    if folds < 2:
        raise SettingsError("k-fold cross-validation needs at least 2 folds")
    data = load_dataset(spec.dataset, spec.data_dir)
    labels = data.train_y.numpy()
    if np.bincount(labels).min() < folds:
        raise SettingsError(f"{folds} folds need at least {folds} training images of every class")
    control = control or RunControl()
    emit = callback or (lambda event: None)
    results, offset = [], {"step": 0, "epoch": 0}
    started = time.perf_counter()
    for i in range(folds):
        if control.stop_requested:
            break
        base = dict(offset)

        def shifted(event, base=base):
            changes = {k: getattr(event, k) + base[k] for k in ("step", "epoch") if hasattr(event, k)}
            emit(dataclasses.replace(event, **changes) if changes else event)

        card = run(dataclasses.replace(spec, folds=folds, fold=i), shifted, control)
        training = card.training
        offset["step"] += training["steps"]
        offset["epoch"] += training["epochs"]
        row = {"fold": i + 1, "accuracy": card.metrics["test_accuracy"], "epochs": training["epochs"],
               "train_seconds": training["train_seconds"], "n": card.metrics["test_n"],
               "stop_reason": training["stop_reason"]}
        results.append(row)
        emit(FoldEvent(fold=i + 1, folds=folds, accuracy=row["accuracy"], epochs=row["epochs"],
                       train_seconds=row["train_seconds"]))
        if row["stop_reason"] in ("diverged", "stopped"):
            break
    accuracies = np.array([r["accuracy"] for r in results])
    return {"k": folds, "folds": results, "completed": len(results),
            "mean": float(accuracies.mean()) if len(results) else None,
            "std": float(accuracies.std(ddof=1)) if len(results) > 1 else 0.0,
            "train_seconds": round(sum(r["train_seconds"] for r in results), 2),
            "wall_seconds": round(time.perf_counter() - started, 2)}
