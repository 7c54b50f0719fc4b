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
from core.engine import Event, RunControl, TensorLoader, evaluate, fit
from core.models import build_model
from core.engine.tasks import ClassificationTask


@dataclass
class FoldEvent:
    fold: int  # 1-based
    folds: int
    accuracy: float
    loss: float
    epochs: int
    train_seconds: float
    kind: str = "fold"


def cross_validate(spec, folds: int, callback: Callable[[Event], None] | None = None,
                   control: RunControl | None = None) -> dict:
    """{"folds": [{"fold", "accuracy", "loss", "epochs", "train_seconds", "n"}], "mean", "std", ...}."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError("k-fold cross-validation needs at least 2 folds")
    data = load_dataset(spec.dataset, spec.data_dir)
    labels = data.train_y.numpy()
    if np.bincount(labels).min() < folds:
        raise ValueError(f"{folds} folds need at least {folds} training images of every class")
    control = control or RunControl()
    emit = callback or (lambda event: None)
    config = dataclasses.replace(spec.config, keep_best=False, early_stopping=0)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=spec.config.seed)
    results, offset = [], {"step": 0, "epoch": 0}
    started = time.perf_counter()
    for i, (train_idx, held_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        if control.stop_requested:
            break
        model = build_model(spec.model, in_channels=data.channels, image_size=data.image_size,
                            num_classes=data.num_classes, seed=config.seed + i, **spec.model_options)
        task = ClassificationTask(data.mean, data.std, augment=spec.augment, label_smoothing=spec.label_smoothing,
                                  mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha,
                                  channels_last=config.channels_last)
        x, y = data.train_x[train_idx], data.train_y[train_idx]
        loader = TensorLoader(x, y, batch_size=config.batch_size, drop_last=len(x) > config.batch_size,
                              seed=config.seed + i)
        base = dict(offset)

        def shifted(event, base=base):
            changes = {k: getattr(event, k) + base[k] for k in ("step", "epoch") if hasattr(event, k)}
            emit(dataclasses.replace(event, **changes) if changes else event)

        result = fit(model, task, loader, None, config, callback=shifted, control=control)
        held = TensorLoader(data.train_x[held_idx], data.train_y[held_idx], batch_size=1000, shuffle=False)
        scores = evaluate(model, task, held)
        offset["step"] += result.steps
        offset["epoch"] += result.epochs
        row = {"fold": i + 1, "accuracy": scores["accuracy"], "loss": scores["loss"], "epochs": result.epochs,
               "train_seconds": round(result.train_seconds, 2), "n": len(held_idx), "stop_reason": result.reason}
        results.append(row)
        emit(FoldEvent(fold=i + 1, folds=folds, accuracy=scores["accuracy"], loss=scores["loss"],
                       epochs=result.epochs, train_seconds=result.train_seconds))
        if result.reason in ("nan", "stopped"):
            break
    accuracies = np.array([r["accuracy"] for r in results])
    return {"k": folds, "folds": results, "completed": len(results),
            "mean": float(accuracies.mean()) if len(results) else None,
            "std": float(accuracies.std(ddof=1)) if len(results) > 1 else 0.0,
            "train_seconds": round(sum(r["train_seconds"] for r in results), 2),
            "wall_seconds": round(time.perf_counter() - started, 2)}
