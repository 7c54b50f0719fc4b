"""The composer's two tasks for the engine: two digits and their positions (multi-task), digit strings (CTC)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.composer.ctc import greedy_batch
from core.engine.tasks import normalize
from core.models.multidigit import split_pair_output


@dataclass
class PairTask:
    """Multi-task digit pairs: loss = CE(both digits) + x_weight * MSE(x-centres in units of x_scale px).

    Batches are (images, classes (B, 2), x-centres in pixels (B, 2)). `accuracy` counts an image right
    only when both digits are; `x_mae` is the mean absolute x error in pixels.
    """
    mean: tuple
    std: tuple
    x_weight: float = 1.0  # lambda
    x_scale: float = 28.0  # MSE is computed on x / x_scale, so lambda does not depend on the canvas width
    channels_last: bool = True

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std, self.channels_last and x.device.type == "cpu")

    def _parts(self, model: nn.Module, batch: tuple):
        x, classes, centres = batch
        logits, pred_x = split_pair_output(model(self.prepare(x)))
        ce = F.cross_entropy(logits.reshape(-1, 10), classes.reshape(-1), reduction="none").view(-1, 2).sum(1)
        mse = ((pred_x - centres) / self.x_scale).pow(2).mean(1)
        right = (logits.argmax(2) == classes)
        return ce, mse, right, (pred_x - centres).abs()

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        ce, mse, right, err = self._parts(model, batch)
        loss = ce.mean() + self.x_weight * mse.mean()
        return loss, {"accuracy": right.all(1).float().mean().item(), "x_mae": err.mean().item()}

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]:
        ce, mse, right, err = self._parts(model, batch)
        return {"loss": (ce + self.x_weight * mse).sum().item(), "ce": ce.sum().item(),
                "both": right.all(1).sum().item(), "digits": right.float().mean(1).sum().item(),
                "x_abs": err.mean(1).sum().item(), "n": len(ce)}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("n", 0), 1)
        return {"loss": sums.get("loss", 0.0) / n, "ce": sums.get("ce", 0.0) / n,
                "accuracy": sums.get("both", 0.0) / n, "digit_accuracy": sums.get("digits", 0.0) / n,
                "x_mae": sums.get("x_abs", 0.0) / n}


@dataclass
class CTCTask:
    """Digit strings read by a CRNN with CTC: batches are (images, targets padded with -1, lengths).

    Class 0 of the model's output is the CTC blank, digit d is class d + 1. `accuracy` is the share of
    strings whose greedy decoding is exactly right.
    """
    mean: tuple
    std: tuple
    channels_last: bool = True

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std, self.channels_last and x.device.type == "cpu")

    def _parts(self, model: nn.Module, batch: tuple):
        x, targets, lengths = batch
        log_probs = model(self.prepare(x)).float().log_softmax(2)  # (B, T, C)
        b, t = log_probs.shape[:2]
        loss = F.ctc_loss(log_probs.transpose(0, 1), (targets + 1).clamp_min(1), torch.full((b,), t, dtype=torch.long),
                          lengths, blank=0, reduction="none", zero_infinity=True)
        exact = [p == tuple(row[:n].tolist()) for p, row, n in zip(greedy_batch(log_probs), targets, lengths)]
        return loss, torch.tensor(exact, dtype=torch.float32)

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        loss, exact = self._parts(model, batch)
        return (loss / batch[2].clamp_min(1)).mean(), {"accuracy": exact.mean().item()}

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]:
        loss, exact = self._parts(model, batch)
        return {"loss": (loss / batch[2].clamp_min(1)).sum().item(), "exact": exact.sum().item(), "n": len(loss)}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("n", 0), 1)
        return {"loss": sums.get("loss", 0.0) / n, "accuracy": sums.get("exact", 0.0) / n}
