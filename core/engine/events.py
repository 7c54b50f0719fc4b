"""What the engine tells and takes: the events `fit` reports, the Task contract it trains through, and the
thread-safe control a page or a console uses to stop a run or change its learning rate.

Events are plain dataclasses (JSON-ready with `dataclasses.asdict`), so a run's worker writes them to
events.jsonl and a page draws live charts from the same stream a console turns into a progress bar.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn


@dataclass
class StepEvent:
    step: int
    epoch: int
    loss: float
    lr: float
    images_per_s: float
    train_seconds: float  # training time so far, evaluation excluded
    progress: float  # fraction of the planned steps done
    metrics: dict = field(default_factory=dict)  # the task's per-batch metrics (e.g. accuracy)
    kind: str = "step"


@dataclass
class EvalEvent:
    step: int
    epoch: int
    metrics: dict
    train_seconds: float
    kind: str = "eval"


@dataclass
class EpochEvent:
    epoch: int
    train: dict
    val: dict
    lr: float
    seconds: float
    improved: bool
    kind: str = "epoch"


@dataclass
class EndEvent:
    reason: str  # completed | stopped | early_stopping | nan | max_steps | time_budget
    message: str
    epochs: int
    steps: int
    kind: str = "end"


@dataclass
class PrepareEvent:
    """Work before the first step, e.g. extracting and caching a pretrained network's features."""
    done: int
    total: int
    message: str
    kind: str = "prepare"


@dataclass
class WarningEvent:
    """Something the user should know before trusting the run, e.g. a class missing from the test split."""
    message: str
    kind: str = "warning"


@dataclass
class MonitorEvent:
    """Live views a recipe made after an epoch: metrics (e.g. BLEU-4) and, in samples.npz, pictures."""
    epoch: int
    metrics: dict
    caption: str = ""  # what the pictures show
    kind: str = "monitor"


class StoppedWhilePreparing(Exception):
    """The user stopped a run before its first step (e.g. while a pretrained network's features were extracted)."""


Event = StepEvent | EvalEvent | EpochEvent | EndEvent | PrepareEvent | WarningEvent | MonitorEvent


class Task(Protocol):
    """How one kind of model turns a batch into a loss and metrics (see `core.engine.tasks`)."""

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]: ...

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]: ...

    def summarize(self, sums: dict[str, float]) -> dict[str, float]: ...


class RunControl:
    """Thread-safe handle to steer a running `fit`: stop between steps, or change the learning rate.

    `planned` holds learning-rate changes (after STEP optimizer steps, LR) to make on the way, the way a card's
    `--lr-at STEP:LR` replays what a user did by hand; `changes` lists every change made, planned or not."""

    def __init__(self, planned: Iterable[tuple[int, float]] = ()):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._lr: float | None = None
        self.planned = {int(step): float(lr) for step, lr in planned}
        self.changes: list[tuple[int, float]] = []

    def stop(self) -> None:
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def set_lr(self, lr: float) -> None:
        with self._lock:
            self._lr = float(lr)

    def take_lr(self, step: int = 0) -> float | None:
        """The learning rate to switch to before optimizer step `step` + 1 (a user's order first), or None."""
        with self._lock:
            lr, self._lr = self._lr, None
        lr = lr if lr is not None else self.planned.get(step)
        if lr is not None:
            self.changes.append((step, lr))
        return lr

    def unplanned(self) -> list[tuple[int, float]]:
        """The changes made by hand: what a command must add to replay this run."""
        return [(step, lr) for step, lr in self.changes if self.planned.get(step) != lr]
