"""The classification task and the one input normalisation every task uses.

Owns `normalize` (uint8 images -> floats with per-channel mean/std) and `ClassificationTask` (batch
augmentation, label smoothing, mixup and cutmix, accuracy). The other model families keep their tasks
in their feature packages (`core.latent.task`, `core.composer.tasks`, `core.captions.task`), all with
the three methods of `core.engine.fit.Task`; the engine needs nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data.augment import AugmentConfig, augment_batch


def normalize(x: torch.Tensor, mean, std, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 normalised with per-channel mean/std given on the [0, 1] scale."""
    m = torch.tensor(mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1)
    out = (x.float() / 255.0 - m) / s
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@dataclass
class ClassificationTask:
    mean: tuple  # per-channel normalisation, from the data set
    std: tuple
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # applied to training batches only
    label_smoothing: float = 0.0  # 0.1 is a common choice
    mixup_alpha: float = 0.0  # Beta(alpha, alpha) mixing of image pairs; 0 = off
    cutmix_alpha: float = 0.0  # Beta(alpha, alpha) box pasting; 0 = off (with both on, each batch picks one)
    channels_last: bool = True  # hand conv nets NHWC tensors on CPU

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std, self.channels_last and x.device.type == "cpu")

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch
        x = self.prepare(x)
        if self.augment.active:
            x = augment_batch(x, self.augment)
        x, y_b, lam = self._mix(x, y)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if y_b is not None:
            loss = lam * loss + (1 - lam) * F.cross_entropy(logits, y_b, label_smoothing=self.label_smoothing)
        accuracy = (logits.detach().argmax(1) == y).float().mean().item()
        return loss, {"accuracy": accuracy}

    def _mix(self, x: torch.Tensor, y: torch.Tensor):
        use = [a for a in (("mixup", self.mixup_alpha), ("cutmix", self.cutmix_alpha)) if a[1] > 0]
        if not use:
            return x, None, 1.0
        kind, alpha = use[np.random.randint(len(use))]
        lam = float(np.random.beta(alpha, alpha))
        perm = torch.randperm(x.shape[0], device=x.device)
        if kind == "mixup":
            return lam * x + (1 - lam) * x[perm], y[perm], lam
        h, w = x.shape[-2:]
        cut_h, cut_w = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
        cy, cx = np.random.randint(h), np.random.randint(w)
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the pasted area decides the label weights
        return x, y[perm], lam

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]:
        x, y = batch
        logits = model(self.prepare(x))
        return {"loss": F.cross_entropy(logits, y, reduction="sum").item(),
                "correct": (logits.argmax(1) == y).sum().item(), "n": len(y)}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("n", 0), 1)
        return {"loss": sums.get("loss", 0.0) / n, "accuracy": sums.get("correct", 0.0) / n}
