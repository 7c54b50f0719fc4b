"""Pictures of tensors: activation montages, filter grids, heat-map colouring and overlays.

Owns the conversion of explainability results into uint8 RGB arrays that any front end can show. Pure
NumPy/PyTorch; no plotting library and no Streamlit.
"""
from __future__ import annotations

import math

import numpy as np
import torch

# A perceptually ordered dark-blue -> teal -> yellow ramp (viridis-like), 5 anchors interpolated.
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32)


def colourise(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] of any shape (...) to RGB uint8 (..., 3) along the ramp."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0) * (len(_RAMP) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_RAMP) - 2)
    t = (v - lo)[..., None]
    return (_RAMP[lo] * (1 - t) + _RAMP[lo + 1] * t).astype(np.uint8)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (1, H, W), (3, H, W) or (H, W, 3) -> (H, W, 3)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a [0, 1] heat map (resized to the image if needed) over an image: RGB uint8."""
    base = to_rgb(image).astype(np.float32)
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != base.shape[:2]:
        heat = torch.nn.functional.interpolate(torch.from_numpy(heat)[None, None], size=base.shape[:2],
                                               mode="bilinear", align_corners=False)[0, 0].numpy()
    return (base * (1 - alpha) + colourise(heat).astype(np.float32) * alpha).astype(np.uint8)


def normalise_each(maps: torch.Tensor) -> torch.Tensor:
    """Scale each (H, W) map of a (N, H, W) stack to [0, 1] on its own."""
    flat = maps.flatten(1).float()
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(maps)


def montage(maps: torch.Tensor, *, cols: int | None = None, pad: int = 1, cell: int | None = None) -> np.ndarray:
    """Tile N maps (N, H, W), each normalised on its own, into one RGB uint8 grid.

    `cell` enlarges each map to cell x cell pixels (nearest) so small maps stay legible.
    """
    maps = normalise_each(maps.detach().cpu())
    n, h, w = maps.shape
    if cell and cell > h:
        maps = torch.nn.functional.interpolate(maps[:, None], size=(cell, cell), mode="nearest")[:, 0]
        h = w = cell
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    tiles = colourise(maps.numpy())
    for i in range(n):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tiles[i]
    return grid


def filter_montage(weight: torch.Tensor, *, cell: int = 24) -> np.ndarray:
    """Conv weights (out, in, k, k) as a grid: RGB kernels shown in colour when in == 3, else the mean over inputs."""
    w = weight.detach().cpu().float()
    if w.shape[1] == 3:
        lo, hi = w.amin(dim=(1, 2, 3), keepdim=True), w.amax(dim=(1, 2, 3), keepdim=True)
        rgb = ((w - lo) / (hi - lo).clamp_min(1e-12) * 255).byte()
        rgb = torch.nn.functional.interpolate(rgb.float(), size=(cell, cell), mode="nearest").byte()
        n = rgb.shape[0]
        cols = math.ceil(math.sqrt(n))
        rows = math.ceil(n / cols)
        grid = np.full((rows * (cell + 1) + 1, cols * (cell + 1) + 1, 3), 255, np.uint8)
        for i in range(n):
            r, c = divmod(i, cols)
            grid[1 + r * (cell + 1):1 + r * (cell + 1) + cell, 1 + c * (cell + 1):1 + c * (cell + 1) + cell] = \
                rgb[i].permute(1, 2, 0).numpy()
        return grid
    return montage(w.mean(1), cell=cell)


def augmented_grid(images: torch.Tensor, augment, *, copies: int = 4, seed: int = 0) -> np.ndarray:
    """`copies` augmented versions of each uint8 image (N, C, H, W) side by side: one row per image, RGB uint8."""
    from core.data.augment import augment_batch

    torch.manual_seed(seed)
    x = images.float().div(255.0).repeat_interleave(copies, dim=0)
    out = (augment_batch(x, augment).clamp(0, 1) * 255).round().byte()  # (N * copies, C, H, W)
    n, c, h, w = images.shape
    tiles = out.view(n, copies, c, h, w).permute(0, 3, 1, 4, 2).reshape(n * h, copies * w, c).numpy()
    return to_rgb(tiles[..., 0]) if c == 1 else tiles


def image_grid(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """uint8 images (N, C, H, W) in rows of `cols` on a white background, as one RGB uint8 picture."""
    n, c, h, w = images.shape
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = img.transpose(1, 2, 0) if c == 3 \
            else to_rgb(img[0])
    return grid


def enlarge(image, side: int, square: bool = True):
    """Blow a small uint8 image up with crisp pixels so its longest side is `side`: a PIL image, centred on a
    square black tile unless `square` is False. Channel-first (C, H, W) arrays are accepted."""
    from PIL import Image

    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    img = Image.fromarray(array)
    scale = side / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.NEAREST)
    if not square:
        return img
    tile = Image.new(img.mode, (side, side))
    tile.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return tile
