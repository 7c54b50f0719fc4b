"""Optimizers and learning-rate schedules, built from a `TrainConfig` by name.

Owns the mapping from config strings to torch objects: Adam / AdamW / SGD with Nesterov momentum, and
the schedules one-cycle, cosine with linear warm-up (both stepped every batch), reduce-on-plateau
(stepped every epoch on the monitored metric) and constant. `Schedule` is the one place the loop's
learning rate changes: by the schedule, or by a user's order mid-run (`take_order`), which replaces it.
Does not own the training loop.
"""
from __future__ import annotations

import math

import torch

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine", "plateau")


def param_groups(model: torch.nn.Module, *, lr: float, weight_decay: float, norm_lr_scale: float = 1.0) -> list[dict]:
    """The model's trainable parameters as optimizer groups: with `norm_lr_scale` != 1 the normalisation layers'
    parameters form a group whose learning rate is that many times larger and whose weight decay is as many times
    smaller (the same decay per step): airbench's "bias scaler", for nets whose BatchNorm weights are frozen."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if norm_lr_scale == 1.0:
        return [{"params": trainable}]
    norm_types = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
    norm = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    return [{"params": [p for p in trainable if id(p) not in norm]},
            {"params": [p for p in trainable if id(p) in norm], "lr": lr * norm_lr_scale,
             "weight_decay": weight_decay / norm_lr_scale, "lr_scale": norm_lr_scale}]


def make_optimizer(params, *, name: str, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    raise ValueError(f"Unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")


class Schedule:
    """Wraps a torch scheduler with the engine's two hooks: `after_step()` and `after_epoch(metric)`."""

    def __init__(self, optimizer: torch.optim.Optimizer, *, name: str, total_steps: int, lr: float,
                 warmup_steps: int = 0, plateau_patience: int = 2, plateau_factor: float = 0.5,
                 monitor_mode: str = "min"):
        if name not in SCHEDULES:
            raise ValueError(f"Unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}.")
        self.name, self.optimizer = name, optimizer
        self.manual = False  # set once the user overrides the learning rate by hand
        total_steps = max(total_steps, 1)
        if name == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[lr * g.get("lr_scale", 1.0) for g in optimizer.param_groups],
                total_steps=max(total_steps + 1, 8), pct_start=0.25,  # >= 8: tiny runs work
                anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0)
        elif name == "cosine":
            def factor(step: int) -> float:
                if step < warmup_steps:
                    return (step + 1) / warmup_steps
                progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
                return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        elif name == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=monitor_mode, factor=plateau_factor, patience=plateau_patience)
        else:
            self.scheduler = None

    def take_order(self, lr: float | None) -> None:
        """A learning rate the user set mid-run (None: no order): it replaces the schedule from here on."""
        if lr is not None:
            set_lr(self.optimizer, lr)
            self.manual = True

    def after_step(self) -> None:
        if self.name in ("onecycle", "cosine") and not self.manual:
            self.scheduler.step()

    def after_epoch(self, metric: float | None) -> None:
        if self.name == "plateau" and not self.manual and metric is not None:
            self.scheduler.step(metric)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group at `lr` (times its `lr_scale`, see `param_groups`)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
