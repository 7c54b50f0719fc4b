"""Tasks: what a batch is, how a model's loss and metrics are computed on it, for the engine.

Owns `ClassificationTask` (uint8 images -> normalised floats, batch augmentation, label smoothing,
mixup and cutmix, accuracy). Later model families (autoencoders, multi-task, CTC, captioning) add
their own task classes with the same three methods; the engine needs nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.ctc import greedy_batch
from core.data.augment import AugmentConfig, augment_batch
from core.models.multidigit import split_pair_output


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


@dataclass
class ReconstructionTask:
    """Autoencoders: pixels in [0, 1] in, the same pixels out; MSE, plus a weighted KL term for a VAE.

    The KL term (summed over latent dimensions) is divided by the number of pixels, putting it on the
    scale of the per-pixel MSE; `kl_weight` then trades sample quality (higher) for sharper
    reconstructions (lower). `noise` > 0 trains a denoising autoencoder (Gaussian noise on the inputs).
    """
    kl_weight: float = 0.0
    noise: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # applied to the training images themselves
    channels_last: bool = True  # NHWC is ~15 % faster for these convs on CPU

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, [0.0] * x.shape[1], [1.0] * x.shape[1], self.channels_last and x.device.type == "cpu")

    def _forward(self, model: nn.Module, x: torch.Tensor, train: bool):
        if hasattr(model, "posterior"):
            mu, logvar = model.posterior(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if train else mu
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)  # per image
            return model.decode(z), kl
        return model.decode(model.encode(x)), None

    def training_loss(self, model: nn.Module, batch: tuple) -> tuple[torch.Tensor, dict[str, float]]:
        target = self.prepare(batch[0])
        if self.augment.active:
            target = augment_batch(target, self.augment)
        x = (target + self.noise * torch.randn_like(target)).clamp(0, 1) if self.noise else target
        recon, kl = self._forward(model, x, train=True)
        mse = F.mse_loss(recon, target)
        loss = mse
        stats = {"mse": mse.item()}
        if kl is not None:
            kl_term = kl.mean() / target[0].numel()
            loss = mse + self.kl_weight * kl_term
            stats["kl"] = kl.mean().item()
        return loss, stats

    def evaluation_sums(self, model: nn.Module, batch: tuple) -> dict[str, float]:
        target = self.prepare(batch[0])
        recon, kl = self._forward(model, target, train=False)
        per_image = (recon - target).pow(2).flatten(1).mean(1)
        sums = {"mse": per_image.sum().item(), "n": len(target)}
        if kl is not None:
            sums["kl"] = kl.sum().item()
            sums["loss"] = (per_image + self.kl_weight * kl / target[0].numel()).sum().item()
        else:
            sums["loss"] = sums["mse"]
        return sums

    def summarize(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums.get("n", 0), 1)
        return {k: sums[k] / n for k in sums if k != "n"}


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
