"""The captioner's task for the engine: next-word cross-entropy with teacher forcing plus the attention term."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.engine.tasks import normalize


@dataclass
class CaptionTask:
    """Image captioning with teacher forcing: batches are (images uint8, tokens (B, L) from <start> to <end>,
    padded with 0). Loss: cross-entropy on the next word (padding ignored) plus Show-Attend-Tell's doubly
    stochastic attention term, attention_weight * mean over cells of (words / cells - the cell's attention
    summed over the caption)^2 (the paper's (1 - sum)^2, scaled to the caption length), which asks the
    decoder to look at every part of the image over the whole caption."""
    mean: tuple
    std: tuple
    attention_weight: float = 1.0
    channels_last: bool = False

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.mean, self.std, self.channels_last and x.device.type == "cpu")

    def _parts(self, model: nn.Module, batch: tuple):
        x, tokens = batch[0], batch[1]
        logits, alphas = model(self.prepare(x), tokens[:, :-1])
        target = tokens[:, 1:]
        mask = target != 0
        ce = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=0, reduction="none").sum(1)
        coverage = (alphas * mask[:, :, None]).sum(1)  # (B, P): total attention each cell got
        reg = ((mask.sum(1, keepdim=True) / alphas.shape[2] - coverage) ** 2).mean(1)
        correct = ((logits.argmax(2) == target) & mask).sum(1)
        return ce, reg, correct, mask.sum(1)

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        ce, reg, correct, words = self._parts(model, batch)
        loss = ce.sum() / words.sum() + self.attention_weight * reg.mean()
        return loss, {"accuracy": (correct.sum() / words.sum()).item()}

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]:
        ce, reg, correct, words = self._parts(model, batch)
        return {"ce": ce.sum().item(), "reg": reg.sum().item(), "correct": correct.sum().item(),
                "words": words.sum().item(), "n": len(ce)}

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        words, n = max(sums.get("words", 0), 1), max(sums.get("n", 0), 1)
        return {"loss": sums.get("ce", 0.0) / words + self.attention_weight * sums.get("reg", 0.0) / n,
                "accuracy": sums.get("correct", 0.0) / words}
