"""The one training engine: `fit` trains any model through a pluggable `Task` and reports events.

Owns the loop (optimizer, schedule, epochs, evaluation, early stopping, keep-best, NaN detection,
cooperative stop, live learning-rate override, seeding, device and thread selection). It never prints:
it calls `callback(event)` with `StepEvent`, `EvalEvent`, `EpochEvent` and finally `EndEvent`, so the
CLI draws a progress bar and a page draws a live chart from the same stream. What a batch is and how
its loss and metrics are computed belongs to the `Task` (see `core.engine.tasks`), so classifiers,
autoencoders, multi-task, CTC and captioning models all train here.
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

from core.engine import distributed
from core.engine.events import EndEvent, EpochEvent, EvalEvent, Event, RunControl, StepEvent, Task
from core.engine.optim import Schedule, current_lr, make_optimizer, param_groups, set_lr
from core.engine.resume import TrainState, capture, restore


@dataclass
class TrainConfig:
    epochs: int = 5  # passes over the training data
    batch_size: int = 128  # images per optimizer step
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov momentum)
    lr: float = 1e-3  # peak learning rate (one-cycle / cosine) or the constant one
    weight_decay: float = 0.0  # L2 (adam, sgd) or decoupled (adamw)
    momentum: float = 0.9  # SGD only
    schedule: str = "constant"  # constant | onecycle | cosine | plateau
    warmup_epochs: float = 0.0  # linear warm-up for the cosine schedule
    plateau_patience: int = 2  # epochs without improvement before reduce-on-plateau cuts the LR
    plateau_factor: float = 0.5  # LR multiplier on a plateau
    early_stopping: int = 0  # stop after this many epochs without improvement; 0 = off
    keep_best: bool = True  # end with the weights of the best epoch by the monitored metric
    monitor: str = "val_loss"  # val_loss | val_accuracy (falls back to train_loss without validation)
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    seed: int = 0  # seeds torch, numpy, random and the batch order
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | mps
    threads: int = 0  # torch CPU threads; 0 = torch's default
    channels_last: bool = True  # NHWC memory format for conv nets on CPU (faster with oneDNN)
    max_steps: int = 0  # stop after this many optimizer steps; 0 = no limit (dry runs use 1-2)
    time_budget_s: float = 0.0  # stop once this much training time has passed; 0 = no limit
    eval_every_steps: int = 0  # also evaluate on the validation data every N steps; 0 = epoch ends only
    ema_decay: float = 0.0  # evaluate and keep an exponential moving average of the weights; 0 = off
    precision: str = "auto"  # auto (mixed on a GPU, float32 elsewhere) | bf16 (bfloat16 autocast) | fp32
    norm_lr_scale: float = 1.0  # normalisation layers learn this many times faster, decay as many times less

    def to_dict(self) -> dict:
        return asdict(self)


class WeightAverage:
    """Exponential moving average of a model's parameters, swapped in for evaluation and at the end."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.live: list[torch.Tensor] | None = None

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))  # warm up from the first weights
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - decay)

    @torch.no_grad()
    def swap_in(self) -> None:
        self.live = [p.detach().clone() for p in self.params]
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)

    @torch.no_grad()
    def swap_out(self) -> None:
        for p, live in zip(self.params, self.live or []):
            p.copy_(live)
        self.live = None


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


def select_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _to(batch: tuple, device: torch.device) -> tuple:
    """The batch on `device`; on a GPU through pinned memory, so the copy overlaps the computation."""
    pin = device.type == "cuda"
    return tuple((t.pin_memory() if pin and not t.is_cuda else t).to(device, non_blocking=True)
                 if isinstance(t, torch.Tensor) else t for t in batch)


PRECISIONS = ("auto", "bf16", "fp32")


def mixed_precision(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast type of the forward pass, None for float32. `auto`: on a GPU bfloat16 where supported, else
    float16 (with a gradient scaler), float32 elsewhere; `bf16`: bfloat16 on any device (on a CPU with AMX or
    AVX-512 BF16 units, oneDNN runs its convolutions about twice as fast); `fp32`: never."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32" or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def evaluate(model: nn.Module, task: Task, loader: Iterable, device: torch.device | None = None) -> dict[str, float]:
    """Metrics of `model` over `loader` (eval mode, no gradients); restores the previous mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    with torch.inference_mode():
        for batch in loader:
            for k, v in task.evaluation_sums(model, _to(batch, device)).items():
                sums[k] = sums.get(k, 0.0) + float(v)
    model.train(was_training)
    return task.summarize(sums)


NAN_ADVICE = ("The loss became {value} at epoch {epoch}, step {step}: training diverged. Lower the learning "
              "rate (try a tenth), switch on gradient clipping or a warm-up, or check the input normalisation.")
GROWTH_ADVICE = ("The loss grew from {start:.4g} at the start to {value:.4g} (averaged over the last steps) by epoch "
                 "{epoch}, step {step}: training diverged. Lower the learning rate (try a tenth), switch on gradient "
                 "clipping or a warm-up, or check the input normalisation.")


class DivergenceWatch:
    """Tells when a loss has exploded: its running mean stays above `factor` times the first step's loss (the
    untrained model's, at chance) plus a margin of 0.5, for `patience` steps in a row. Ordinary noise and the
    bump of a one-cycle warm-up stay far below that; an unstable learning rate (Adam at lr 10) passes it at
    once. A resumed run measures from its own first step."""

    def __init__(self, factor: float = 10.0, patience: int = 5, smoothing: float = 0.1):
        self.factor, self.patience, self.smoothing = factor, patience, smoothing
        self.start = self.mean = None
        self.over = 0

    def diverged(self, loss: float) -> bool:
        if self.start is None:
            self.start = self.mean = loss
            return False
        self.mean += self.smoothing * (loss - self.mean)
        self.over = self.over + 1 if self.mean > self.factor * abs(self.start) + 0.5 else 0
        return self.over >= self.patience


def fit(model: nn.Module, task: Task, train_loader: Iterable, val_loader: Iterable | None = None,
        config: TrainConfig | None = None, callback: Callable[[Event], None] | None = None,
        control: RunControl | None = None, resume: TrainState | None = None,
        on_epoch_end: Callable[[TrainState], None] | None = None) -> FitResult:
    """Train `model` in place; see the module docstring. Returns a `FitResult` with the history.

    `on_epoch_end` receives the complete state after every finished epoch (the run folder saves it);
    `resume` is such a state: training goes on from the epoch after it, as if it had never stopped.
    """
    cfg = config or TrainConfig()
    emit = callback or (lambda event: None)
    control = control or RunControl()
    seed_everything(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = select_device(cfg.device)
    model.to(device)
    if cfg.channels_last and device.type in ("cpu", "cuda"):
        model.to(memory_format=torch.channels_last)
    amp = mixed_precision(device, cfg.precision)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    net = model  # what trains: the model, or its DistributedDataParallel wrapper under torchrun
    if distributed.active():
        train_loader = distributed.Shard(train_loader, distributed.rank(), distributed.world_size())
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if hasattr(train_loader, "generator"):
        train_loader.generator.manual_seed(cfg.seed)

    optimizer = make_optimizer(param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                            norm_lr_scale=cfg.norm_lr_scale), name=cfg.optimizer,
                               lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    steps_per_epoch = len(train_loader)
    planned = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        planned = min(planned, cfg.max_steps)
    monitor = cfg.monitor if val_loader is not None else "train_loss"
    mode = "max" if monitor.endswith("accuracy") else "min"
    schedule = Schedule(optimizer, name=cfg.schedule, total_steps=planned, lr=cfg.lr,
                        warmup_steps=int(cfg.warmup_epochs * steps_per_epoch),
                        plateau_patience=cfg.plateau_patience, plateau_factor=cfg.plateau_factor, monitor_mode=mode)

    average = WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None
    watch = DivergenceWatch()
    result = FitResult(reason="completed", message="", epochs=0, steps=0, train_seconds=0.0, wall_seconds=0.0)
    best_state, best_value, stale = None, None, 0
    if resume is not None:
        best_state = restore(resume, model=model, optimizer=optimizer, schedule=schedule, loader=train_loader,
                             average=average)
        result.epochs, result.steps, result.train_seconds = resume.epoch, resume.steps, resume.train_seconds
        result.history, result.best_epoch = [dict(h) for h in resume.history], resume.best_epoch
        best_value, stale = resume.best_value, resume.stale
    wall_start = time.perf_counter()
    model.train()
    for epoch in range(result.epochs + 1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        loss_sum, metric_sums, n_batches = 0.0, {}, 0
        tick = time.perf_counter()  # step time includes fetching the batch, excludes evaluation
        for batch in train_loader:
            if distributed.any_rank(control.stop_requested):  # a stop on any rank stops every rank
                result.reason, result.message = "stopped", "Stopped by the user."
                break
            new_lr = distributed.from_main(control.take_lr(result.steps))  # a page order reaches rank 0: share it
            if new_lr is not None:
                set_lr(optimizer, new_lr)
                schedule.manual = True  # the user's learning rate replaces the schedule from here on
            batch = _to(batch, device)
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                loss, stats = task.training_loss(net, batch)
            loss_value = float(loss.detach())
            exploded = math.isfinite(loss_value) and watch.diverged(loss_value)
            if distributed.any_rank(not math.isfinite(loss_value) or exploded):
                result.reason = "diverged"
                result.message = (GROWTH_ADVICE.format(start=watch.start, value=watch.mean, epoch=epoch,
                                                       step=result.steps + 1) if exploded else
                                  NAN_ADVICE.format(value=loss_value, epoch=epoch, step=result.steps + 1))
                break
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:  # float16 on a GPU: scale the loss so small gradients survive
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            schedule.after_step()
            if average is not None:
                average.update()
            step_seconds = time.perf_counter() - tick
            result.train_seconds += step_seconds
            result.steps += 1
            n_batches += 1
            loss_sum += loss_value
            for k, v in stats.items():
                metric_sums[k] = metric_sums.get(k, 0.0) + float(v)
            batch_size = len(batch[0]) if isinstance(batch[0], torch.Tensor) else cfg.batch_size
            emit(StepEvent(step=result.steps, epoch=epoch, loss=loss_value, lr=current_lr(optimizer),
                           images_per_s=batch_size / max(step_seconds, 1e-9),
                           train_seconds=result.train_seconds, progress=result.steps / max(planned, 1),
                           metrics=stats))
            if cfg.eval_every_steps and val_loader is not None and result.steps % cfg.eval_every_steps == 0:
                if average is not None:
                    average.swap_in()
                emit(EvalEvent(step=result.steps, epoch=epoch, metrics=evaluate(model, task, val_loader, device),
                               train_seconds=result.train_seconds))
                if average is not None:
                    average.swap_out()
            tick = time.perf_counter()
            if cfg.max_steps and result.steps >= cfg.max_steps:
                result.reason, result.message = "max_steps", f"Reached max_steps={cfg.max_steps}."
                break
            if cfg.time_budget_s and distributed.any_rank(result.train_seconds >= cfg.time_budget_s):
                result.reason, result.message = "time_budget", f"Used the {cfg.time_budget_s:g} s training budget."
                break

        if n_batches == 0 and result.reason != "completed":
            break  # stopped or diverged before this epoch did any work: nothing to summarise
        sums = distributed.summed({"loss": loss_sum, **metric_sums, "_batches": n_batches})  # over the ranks
        n = max(sums.pop("_batches"), 1)
        train = {k: v / n for k, v in sums.items()}
        if average is not None:
            average.swap_in()  # validate, and remember as best, the averaged weights
        val = evaluate(model, task, val_loader, device) if val_loader is not None else {}
        value = (val if monitor.startswith("val_") else train).get(monitor.split("_", 1)[1])
        improved = value is not None and math.isfinite(value) and (
            best_value is None or (value > best_value if mode == "max" else value < best_value))
        if improved:
            best_value, stale, result.best_epoch = value, 0, epoch
            if cfg.keep_best:
                best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if average is not None:
            average.swap_out()
        schedule.after_epoch(value)
        result.epochs = epoch
        result.history.append({"epoch": epoch, **{f"train_{k}": v for k, v in train.items()},
                               **{f"val_{k}": v for k, v in val.items()}, "lr": current_lr(optimizer),
                               "seconds": time.perf_counter() - epoch_start})
        emit(EpochEvent(epoch=epoch, train=train, val=val, lr=current_lr(optimizer),
                        seconds=time.perf_counter() - epoch_start, improved=improved))
        if result.reason != "completed":
            break
        if on_epoch_end is not None:
            on_epoch_end(capture(model=model, optimizer=optimizer, schedule=schedule, loader=train_loader,
                                 average=average, best_state=best_state, epoch=epoch, steps=result.steps,
                                 train_seconds=result.train_seconds, history=result.history,
                                 best_epoch=result.best_epoch, best_value=best_value, stale=stale))
        if cfg.early_stopping and stale >= cfg.early_stopping:
            result.reason = "early_stopping"
            result.message = f"No improvement in {monitor} for {stale} epochs; best was epoch {result.best_epoch}."
            break

    if average is not None and result.steps:
        average.swap_in()  # the averaged weights are the result
        average.live = None
    if cfg.keep_best and best_state is not None and result.best_epoch != result.epochs:
        model.load_state_dict(best_state)
        result.message = (result.message + f" Restored the best weights (epoch {result.best_epoch}).").strip()
    elif result.reason == "diverged":
        result.message += " The weights are those of the step it stopped at: do not trust this model."
    result.best_value = best_value
    result.wall_seconds = time.perf_counter() - wall_start
    if not result.message:
        result.message = f"Finished {result.epochs} epoch(s)."
    emit(EndEvent(reason=result.reason, message=result.message, epochs=result.epochs, steps=result.steps))
    return result
