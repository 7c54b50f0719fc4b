"""The engine's settings: `TrainConfig`, every knob of `core.engine.fit`, with the limits and choices the settings
check (`core.engine.settings`) applies to them, and the words a user may give for precision and device."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch

from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.engine.settings import SHARE
from core.errors import SettingsError

PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda", "mps")  # or cuda:N for one GPU of several


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
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | cuda:N | mps
    threads: int = 0  # torch CPU threads; 0 = torch's default
    channels_last: bool = True  # NHWC memory format for conv nets on CPU (faster with oneDNN)
    max_steps: int = 0  # stop after this many optimizer steps; 0 = no limit (dry runs use 1-2)
    time_budget_s: float = 0.0  # stop once this much training time has passed; 0 = no limit
    eval_every_steps: int = 0  # also evaluate on the validation data every N steps; 0 = epoch ends only
    ema_decay: float = 0.0  # evaluate and keep an exponential moving average of the weights; 0 = off
    precision: str = "auto"  # auto (mixed on a GPU, float32 elsewhere) | bf16 (bfloat16 autocast) | fp32
    norm_lr_scale: float = 1.0  # normalisation layers learn this many times faster, decay as many times less

    limits: ClassVar[dict] = {
        "epochs": (1, 10_000), "batch_size": (1, 65_536), "lr": (1e-12, 100), "seed": (0, 2**32 - 1),
        "threads": (0, 1024), "max_steps": (0, 100_000_000), "plateau_patience": (0, 10_000),
        "early_stopping": (0, 10_000), "eval_every_steps": (0, 100_000_000), "warmup_epochs": (0, 10_000),
        "plateau_factor": (1e-6, 1), "norm_lr_scale": (1e-3, 1000), "momentum": SHARE, "ema_decay": SHARE}
    choices: ClassVar[dict] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS,
                               "monitor": ("val_loss", "val_accuracy")}

    def check(self) -> None:
        name, _, index = self.device.partition(":")
        if name not in DEVICES or (index and not (name == "cuda" and index.isdigit())):
            raise SettingsError(f"device must be auto, cpu, cuda, cuda:N (one GPU of several) or mps; got "
                                f"{self.device!r}.")
        if name == "cuda" and not torch.cuda.is_available():
            raise SettingsError(f"device {self.device!r}: this machine has no CUDA GPU; use auto or cpu.")
        if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise SettingsError("device 'mps': this machine has no Apple GPU; use auto or cpu.")

    def to_dict(self) -> dict:
        return asdict(self)
