"""The one training engine: `fit` trains any model through a pluggable `Task` and reports events.

Owns the loop (epochs, steps, evaluation, early stopping, keep-best, NaN and divergence detection,
cooperative stop, seeding, device and thread selection), written as small parts in the shape of
torchvision's reference `train.py`: `_Loop.train_epoch` runs one epoch's steps, `_Loop.step` one optimizer
step, `_Loop.end_epoch` validates, remembers the best weights and reports, and `fit` strings them
together. It never prints: it calls `callback(event)` with `StepEvent`, `EvalEvent`, `EpochEvent` and
finally `EndEvent`, so the CLI draws a progress bar and a page draws a live chart from the same stream.
The learning rate is set in one place, `core.engine.optim.Schedule` (from the schedule, or a change the
user makes mid-run through `RunControl`). What a batch is and how its loss and metrics are computed
belongs to the `Task` (see `core.engine.tasks`), so every model kind trains here.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import nn

from core.engine import distributed
from core.engine.averaging import WeightAverage
from core.engine.config import TrainConfig
from core.engine.device import (BF16_FALLBACK, GROWTH_ADVICE, NAN_ADVICE, DivergenceWatch, mixed_precision,
                                seed_everything, select_device, to_device)
from core.engine.events import EndEvent, EpochEvent, EvalEvent, Event, RunControl, StepEvent, Task, WarningEvent
from core.engine.optim import Schedule, current_lr, make_optimizer, param_groups
from core.engine.resume import TrainState, capture, restore
from core.models.registry import evaluating


@dataclass
class FitResult:
    reason: str
    message: str
    epochs: int  # epochs completed
    steps: int
    train_seconds: float
    wall_seconds: float
    history: list[dict] = field(default_factory=list)  # one dict per epoch: train_*, val_*, lr, seconds
    best_epoch: int = 0
    best_value: float | None = None


def evaluate(model: nn.Module, task: Task, loader: Iterable, device: torch.device | None = None) -> dict[str, float]:
    """Metrics of `model` over `loader` (eval mode, no gradients); restores the previous mode."""
    device = device or next(model.parameters()).device
    sums: dict[str, float] = {}
    with evaluating(model), torch.inference_mode():
        for batch in loader:
            for k, v in task.evaluation_sums(model, to_device(batch, device)).items():
                sums[k] = sums.get(k, 0.0) + float(v)
    return task.summarize(sums)


class _Loop:
    """One call of `fit`: the model, its optimizer and schedule, and the bookkeeping that crosses epochs."""

    def __init__(self, model: nn.Module, task: Task, train_loader: Iterable, val_loader: Iterable | None,
                 cfg: TrainConfig, emit: Callable[[Event], None], control: RunControl):
        self.model, self.task, self.val_loader, self.cfg, self.emit, self.control = (
            model, task, val_loader, cfg, emit, control)
        self.device = select_device(cfg.device)
        model.to(self.device)
        if cfg.channels_last and self.device.type in ("cpu", "cuda"):
            model.to(memory_format=torch.channels_last)
        self.amp = mixed_precision(self.device, cfg.precision)
        if cfg.precision == "bf16" and self.amp is None:
            emit(WarningEvent(BF16_FALLBACK))
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self.net = model  # what trains: the model, or its DistributedDataParallel wrapper under torchrun
        if distributed.active():
            train_loader = distributed.Shard(train_loader, distributed.rank(), distributed.world_size())
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if hasattr(train_loader, "generator"):
            train_loader.generator.manual_seed(cfg.seed)
        self.train_loader = train_loader
        self.optimizer = make_optimizer(param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                                     norm_lr_scale=cfg.norm_lr_scale), name=cfg.optimizer,
                                        lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
        steps_per_epoch = len(train_loader)
        self.planned = min(steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
        self.monitor = cfg.monitor if val_loader is not None else "train_loss"
        self.mode = "max" if self.monitor.endswith("accuracy") else "min"
        self.schedule = Schedule(self.optimizer, name=cfg.schedule, total_steps=self.planned, lr=cfg.lr,
                                 warmup_steps=int(cfg.warmup_epochs * steps_per_epoch),
                                 plateau_patience=cfg.plateau_patience, plateau_factor=cfg.plateau_factor,
                                 monitor_mode=self.mode)
        self.average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
        self.watch = DivergenceWatch()
        self.result = FitResult(reason="completed", message="", epochs=0, steps=0, train_seconds=0.0,
                                wall_seconds=0.0)
        self.best_state, self.best_value, self.last_value, self.stale = None, None, None, 0

    def resume(self, state: TrainState) -> None:
        """Go on from a saved end of epoch, as if the run had never stopped."""
        self.best_state = restore(state, model=self.model, optimizer=self.optimizer, schedule=self.schedule,
                                  loader=self.train_loader, average=self.average)
        r = self.result
        r.epochs, r.steps, r.train_seconds = state.epoch, state.steps, state.train_seconds
        r.history, r.best_epoch = [dict(h) for h in state.history], state.best_epoch
        self.best_value, self.stale = state.best_value, state.stale

    def train_epoch(self, epoch: int) -> dict | None:
        """One pass over the training data; its mean loss and metrics, or None when it stopped before any step."""
        sums, n_batches = {"loss": 0.0}, 0
        tick = time.perf_counter()  # step time includes fetching the batch, excludes evaluation
        for batch in self.train_loader:
            if not self.step(batch, epoch, sums, tick):
                break
            n_batches += 1
            if self.stopping():
                break
            tick = time.perf_counter()
        if n_batches == 0 and self.result.reason != "completed":
            return None  # stopped or diverged before this epoch did any work: nothing to summarise
        sums = distributed.summed({**sums, "_batches": n_batches})  # over the ranks
        n = max(sums.pop("_batches"), 1)
        return {k: v / n for k, v in sums.items()}

    def step(self, batch: tuple, epoch: int, sums: dict, tick: float) -> bool:
        """One optimizer step on `batch` (False, without stepping, when the run must end first)."""
        r, cfg = self.result, self.cfg
        if distributed.any_rank(self.control.stop_requested):  # a stop on any rank stops every rank
            r.reason, r.message = "stopped", "Stopped by the user."
            return False
        self.schedule.take_order(distributed.from_main(self.control.take_lr(r.steps)))  # a page's new rate
        batch = to_device(batch, self.device)
        with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16, enabled=self.amp is not None):
            loss, stats = self.task.training_loss(self.net, batch)
        loss_value = float(loss.detach())
        if self.diverged(loss_value, epoch):
            return False
        self.backward_and_step(loss)
        step_seconds = time.perf_counter() - tick
        r.train_seconds += step_seconds
        r.steps += 1
        sums["loss"] += loss_value
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        batch_size = len(batch[0]) if isinstance(batch[0], torch.Tensor) else cfg.batch_size
        self.emit(StepEvent(step=r.steps, epoch=epoch, loss=loss_value, lr=current_lr(self.optimizer),
                            images_per_s=batch_size / max(step_seconds, 1e-9), train_seconds=r.train_seconds,
                            progress=r.steps / max(self.planned, 1), metrics=stats))
        if cfg.eval_every_steps and self.val_loader is not None and r.steps % cfg.eval_every_steps == 0:
            self.emit(EvalEvent(step=r.steps, epoch=epoch, metrics=self.validate(), train_seconds=r.train_seconds))
        return True

    def diverged(self, loss_value: float, epoch: int) -> bool:
        """Whether the loss is NaN or has exploded (on any rank); then the result says so, with advice."""
        exploded = math.isfinite(loss_value) and self.watch.diverged(loss_value)
        if not distributed.any_rank(not math.isfinite(loss_value) or exploded):
            return False
        r = self.result
        r.reason = "diverged"
        r.message = (GROWTH_ADVICE.format(start=self.watch.start, value=self.watch.mean, epoch=epoch, step=r.steps + 1)
                     if exploded else NAN_ADVICE.format(value=loss_value, epoch=epoch, step=r.steps + 1))
        return True

    def backward_and_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:  # float16 on a GPU: scale the loss so small gradients survive
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.schedule.after_step()
        if self.average is not None:
            self.average.update()

    def stopping(self) -> bool:
        """Whether a step limit or the time budget ends the run after this step."""
        r, cfg = self.result, self.cfg
        if cfg.max_steps and r.steps >= cfg.max_steps:
            r.reason, r.message = "max_steps", f"Reached max_steps={cfg.max_steps}."
            return True
        if cfg.time_budget_s and distributed.any_rank(r.train_seconds >= cfg.time_budget_s):
            r.reason, r.message = "time_budget", f"Used the {cfg.time_budget_s:g} s training budget."
            return True
        return False

    def validate(self) -> dict:
        """Validation metrics of the weights evaluated now (the averaged ones when the run keeps an average)."""
        if self.val_loader is None:
            return {}
        if self.average is not None:
            self.average.swap_in()
        try:
            return evaluate(self.model, self.task, self.val_loader, self.device)
        finally:
            if self.average is not None:
                self.average.swap_out()

    def end_epoch(self, epoch: int, train: dict, started: float,
                  on_epoch_end: Callable[[TrainState], None] | None) -> bool:
        """Validate, keep the best weights, step a plateau schedule, report the epoch; False when the run ends."""
        r, cfg = self.result, self.cfg
        if self.average is not None:
            self.average.swap_in()  # validate, and remember as best, the averaged weights
        val = evaluate(self.model, self.task, self.val_loader, self.device) if self.val_loader is not None else {}
        improved = self.remember(epoch, (val if self.monitor.startswith("val_") else train).get(
            self.monitor.split("_", 1)[1]))
        if self.average is not None:
            self.average.swap_out()
        self.schedule.after_epoch(self.last_value)
        r.epochs = epoch
        r.history.append({"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                          **{f"val_{k}": v for k, v in val.items()}, "lr": current_lr(self.optimizer),
                          "seconds": time.perf_counter() - started})
        self.emit(EpochEvent(epoch=epoch, train=train, val=val, lr=current_lr(self.optimizer),
                             seconds=time.perf_counter() - started, improved=improved))
        if r.reason != "completed":
            return False
        if on_epoch_end is not None:
            on_epoch_end(self.state(epoch))
        if cfg.early_stopping and self.stale >= cfg.early_stopping:
            r.reason = "early_stopping"
            r.message = f"No improvement in {self.monitor} for {self.stale} epochs; best was epoch {r.best_epoch}."
            return False
        return True

    def remember(self, epoch: int, value: float | None) -> bool:
        """Whether `value` of the monitored metric improves on the best so far (then its weights are kept)."""
        self.last_value = value
        improved = value is not None and math.isfinite(value) and (
            self.best_value is None or (value > self.best_value if self.mode == "max" else value < self.best_value))
        if improved:
            self.best_value, self.stale, self.result.best_epoch = value, 0, epoch
            if self.cfg.keep_best:
                self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
        return improved

    def state(self, epoch: int) -> TrainState:
        r = self.result
        return capture(model=self.model, optimizer=self.optimizer, schedule=self.schedule, loader=self.train_loader,
                       average=self.average, best_state=self.best_state, epoch=epoch, steps=r.steps,
                       train_seconds=r.train_seconds, history=r.history, best_epoch=r.best_epoch,
                       best_value=self.best_value, stale=self.stale)

    def finish(self, wall_start: float) -> FitResult:
        """The weights the run ends with (average, or best epoch's) and the result's last words."""
        r = self.result
        if self.average is not None and r.steps:
            self.average.swap_in()  # the averaged weights are the result
            self.average.live = None
        if self.cfg.keep_best and self.best_state is not None and r.best_epoch != r.epochs:
            self.model.load_state_dict(self.best_state)
            r.message = (r.message + f" Restored the best weights (epoch {r.best_epoch}).").strip()
        elif r.reason == "diverged":
            r.message += " The weights are those of the step it stopped at: do not trust this model."
        r.best_value = self.best_value
        r.wall_seconds = time.perf_counter() - wall_start
        if not r.message:
            r.message = f"Finished {r.epochs} epoch(s)."
        self.emit(EndEvent(reason=r.reason, message=r.message, epochs=r.epochs, steps=r.steps))
        return r


def fit(model: nn.Module, task: Task, train_loader: Iterable, val_loader: Iterable | None = None,
        config: TrainConfig | None = None, callback: Callable[[Event], None] | None = None,
        control: RunControl | None = None, resume: TrainState | None = None,
        on_epoch_end: Callable[[TrainState], None] | None = None) -> FitResult:
    """Train `model` in place; see the module docstring. Returns a `FitResult` with the history.

    `on_epoch_end` receives the complete state after every finished epoch (the run folder saves it);
    `resume` is such a state: training goes on from the epoch after it, as if it had never stopped.
    """
    cfg = config or TrainConfig()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    loop = _Loop(model, task, train_loader, val_loader, cfg, callback or (lambda event: None),
                 control or RunControl())
    if resume is not None:
        loop.resume(resume)
    wall_start = time.perf_counter()
    model.train()
    for epoch in range(loop.result.epochs + 1, cfg.epochs + 1):
        started = time.perf_counter()
        train = loop.train_epoch(epoch)
        if train is None or not loop.end_epoch(epoch, train, started, on_epoch_end):
            break
    return loop.finish(wall_start)
