"""Batch augmentation in torch: translate (pad-and-crop), horizontal flip, small rotation and scale.

Owns one affine warp per batch, done with `affine_grid` + `grid_sample` on whatever device the batch
is on, so augmentation runs on CPU or GPU without a per-image Python loop. Whole-pixel translations
sample exactly on pixel centres, so translate-only augmentation equals pad-and-crop with zero padding.
Translate-and-flip alone (the common case) skips the warp: images are cut from a padded copy, one
slice per shift, which is several times cheaper. Does not decide whether a flip keeps the label: the
data set's `hflip` flag does.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    translate: int = 0  # max shift in whole pixels each way (pad-and-crop); 0 = off
    hflip: bool = False  # random horizontal flip; only for data sets whose labels survive it
    rotate: float = 0.0  # max rotation in degrees each way; 0 = off
    scale: float = 0.0  # max zoom in or out as a fraction (0.1 = 90%..110%); 0 = off

    limits: ClassVar[dict] = {"translate": (0, 64), "rotate": (0, 180), "scale": "share"}  # see core.engine.settings

    @property
    def active(self) -> bool:
        return bool(self.translate or self.hflip or self.rotate or self.scale)

    def to_dict(self) -> dict:
        return asdict(self)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Randomly warp every image of a float batch (B, C, H, W); returns a new tensor."""
    if not cfg.active:
        return x
    if not (cfg.rotate or cfg.scale) and cfg.translate <= 4:
        return _shift_and_flip(x, cfg.translate, cfg.hflip)
    b, _, h, w = x.shape
    dev = x.device
    angle = (torch.rand(b, device=dev) * 2 - 1) * math.radians(cfg.rotate)
    zoom = 1 + (torch.rand(b, device=dev) * 2 - 1) * cfg.scale
    flip = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if cfg.hflip else torch.ones(b, device=dev)
    shift = torch.randint(-cfg.translate, cfg.translate + 1, (b, 2), device=dev).float()
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = cos * flip
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * flip
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = shift[:, 0] * 2 / w  # whole pixels in normalised coordinates
    theta[:, 1, 2] = shift[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    mode = "nearest" if not (cfg.rotate or cfg.scale) else "bilinear"
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _shift_and_flip(x: torch.Tensor, translate: int, hflip: bool) -> torch.Tensor:
    """Pad-and-crop by whole pixels (zero padding) and random horizontal flips, without resampling."""
    if hflip:
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if not translate:
        return x
    _, _, h, w = x.shape
    side = 2 * translate + 1
    padded = F.pad(x, (translate,) * 4)
    choice = torch.randint(0, side * side, (x.shape[0],), device=x.device)
    out = torch.empty_like(x)
    for k in range(side * side):
        idx = torch.nonzero(choice == k).flatten()
        if idx.numel():
            dy, dx = divmod(k, side)
            out[idx] = padded[idx, :, dy:dy + h, dx:dx + w]
    return out
