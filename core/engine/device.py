"""Where and how the loop computes: the device, the autocast precision, the batch's way to the device, seeding,
and the watch that tells when a loss has exploded. Helpers of `core.engine.fit`, kept apart so the loop reads
as the loop."""
from __future__ import annotations

import random

import numpy as np
import torch


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


def to_device(batch: tuple, device: torch.device) -> tuple:
    """The batch on `device`; on a GPU through pinned memory, so the copy overlaps the computation."""
    pin = device.type == "cuda"
    return tuple((t.pin_memory() if pin and not t.is_cuda else t).to(device, non_blocking=True)
                 if isinstance(t, torch.Tensor) else t for t in batch)



def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX units): elsewhere oneDNN emulates it, and
    a bfloat16 convolution runs 10-20x slower than the float32 one (measured on a 2-core AVX2 machine)."""
    return bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())


BF16_FALLBACK = ("bfloat16 was asked for, but this CPU has no native bfloat16 units (AVX-512 BF16 or AMX), where it "
                 "runs 10-20x slower than float32: this run trains in float32.")


def mixed_precision(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast type of the forward pass, None for float32. `auto`: on a GPU bfloat16 where supported, else
    float16 (with a gradient scaler), float32 elsewhere; `bf16`: bfloat16 on a GPU or on a CPU with native
    bfloat16 units (AMX or AVX-512 BF16: oneDNN runs its convolutions about twice as fast), float32 on other CPUs
    (see BF16_FALLBACK); `fp32`: never."""
    if precision == "bf16":
        return torch.bfloat16 if device.type != "cpu" or cpu_has_fast_bf16() else None
    if precision == "fp32" or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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
