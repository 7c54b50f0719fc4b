"""How far an attribution map can be trusted: the deletion curve (Petsiuk et al., 2018, "RISE").

Pixels are removed in the order a map ranks them, most attributed first, 5 % of the image at a time, each
replaced by the data set's mean (zero once normalised); the class's probability is measured after each step.
A map that points at what the model really uses makes the probability fall at once: the area under the curve
(the mean probability over the steps) is low. A map that points elsewhere leaves it high. The same curve for a
random order of the pixels is the reference a reader compares with. Everything here is plain arithmetic a
reader can check: the curve is the model's own outputs on the masked images.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.models import evaluating

STEP = 0.05  # the share of the pixels removed at each step


def deletion_curve(model: nn.Module, x: torch.Tensor, target: int, heat: np.ndarray, step: float = STEP,
                   baseline: float = 0.0) -> dict:
    """{"removed": shares 0..1, "probability": the class's probability after each, "area": their mean} for one
    normalised image x (1, C, H, W) whose pixels are removed in the order of `heat` (H, W), most first."""
    h, w = x.shape[-2:]
    order = np.argsort(-np.asarray(heat, np.float64).ravel(), kind="stable")
    counts = [min(round(k * step * h * w), h * w) for k in range(int(round(1 / step)) + 1)]
    batch = x.repeat(len(counts), 1, 1, 1).clone()
    for row, count in enumerate(counts):
        hidden = torch.from_numpy(order[:count])
        flat = batch[row].view(x.shape[1], -1)
        flat[:, hidden] = baseline
    with evaluating(model), torch.inference_mode():
        probs = torch.softmax(model(batch).float(), dim=1)[:, target].numpy()
    removed = [c / (h * w) for c in counts]
    return {"removed": removed, "probability": [float(p) for p in probs], "area": float(np.trapezoid(probs, removed))}


def random_curve(model: nn.Module, x: torch.Tensor, target: int, seed: int = 0) -> dict:
    """The deletion curve of a random order of the pixels: what a map that knows nothing would score."""
    rng = np.random.default_rng(seed)
    return deletion_curve(model, x, target, rng.random(tuple(x.shape[-2:])))
