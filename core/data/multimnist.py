"""Multi-MNIST: images of two MNIST digits side by side, and strings of 1 to 6 digits, composed on demand.

Owns composition (vectorised NumPy, seeded, deterministic): `compose_pairs` for the multi-task CNN
(labels: the two classes left to right and the two x-centres in pixels), `compose_strings` for the
CRNN (labels: the digit string, padded with -1, and its length), and `compose` for one image from
chosen digits at chosen places (the composer page). A digit's x-centre is the centre of mass of its
ink along x on the canvas, the same definition MNIST used to centre its digits, so it is measurable
on the composed image. Train images are composed from MNIST's train digits, test images from its
test digits; 60,000 pairs take well under a second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DIGIT = 28  # MNIST digit tiles are 28 x 28; canvases are 28 pixels high


@dataclass
class Pairs:
    images: torch.Tensor  # uint8 (N, 1, 28, width)
    classes: torch.Tensor  # int64 (N, 2): left digit, right digit
    x: torch.Tensor  # float32 (N, 2): x-centres in pixels, left then right


@dataclass
class Strings:
    images: torch.Tensor  # uint8 (N, 1, 28, width)
    targets: torch.Tensor  # int64 (N, max_len): the digits left to right, padded with -1
    lengths: torch.Tensor  # int64 (N,)
    x: torch.Tensor  # float32 (N, max_len): each digit's x-centre in pixels, padded with -1


def ink_centre(digits: np.ndarray) -> np.ndarray:
    """x centre of mass (in pixels, 0 = centre of the first column) of each (…, 28, 28) tile's ink; 13.5
    for an empty tile."""
    d = np.asarray(digits, dtype=np.float32)
    col_mass = d.sum(-2)  # (…, 28)
    total = col_mass.sum(-1)
    com = (col_mass * np.arange(d.shape[-1], dtype=np.float32)).sum(-1) / np.maximum(total, 1e-6)
    return np.where(total > 0, com, (d.shape[-1] - 1) / 2).astype(np.float32)


def _paste(canvas: np.ndarray, tiles: np.ndarray, offsets: np.ndarray) -> None:
    """canvas[i, :, off_i : off_i + 28] = max(itself, tiles[i]) for every i, in place."""
    n = len(canvas)
    rows = np.arange(DIGIT)[None, :, None]
    cols = (offsets[:, None] + np.arange(DIGIT))[:, None, :]
    which = np.arange(n)[:, None, None]
    canvas[which, rows, cols] = np.maximum(canvas[which, rows, cols], tiles)


def add_noise(canvas: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian pixel noise of standard deviation `noise` (on the [0, 1] scale), clipped, as uint8."""
    if noise <= 0:
        return canvas
    noisy = canvas.astype(np.float32) + rng.standard_normal(canvas.shape, dtype=np.float32) * (noise * 255)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def _pool(digits: torch.Tensor | np.ndarray) -> np.ndarray:
    d = digits.numpy() if isinstance(digits, torch.Tensor) else np.asarray(digits)
    return d.reshape(len(d), DIGIT, DIGIT).astype(np.uint8, copy=False)


def compose_pairs(digits, labels, n: int, *, width: int = 64, max_overlap: int = 0, noise: float = 0.0,
                  seed: int = 0) -> Pairs:
    """`n` images of two random digits from (`digits` (M, [1,] 28, 28) uint8, `labels` (M,)) on a
    28 x `width` canvas at random horizontal offsets; tiles overlap by up to `max_overlap` pixels."""
    if width < 2 * DIGIT - max_overlap:
        raise ValueError(f"a canvas {width} px wide cannot hold two 28 px digits overlapping by at most "
                         f"{max_overlap} px; use width >= {2 * DIGIT - max_overlap}")
    pool, labels = _pool(digits), np.asarray(labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pool), size=(n, 2))
    overlap = rng.integers(0, max_overlap + 1, size=n) if max_overlap > 0 else np.zeros(n, dtype=np.int64)
    # left tile at a in [0, width - 56 + o]; right tile at b in [a + 28 - o, width - 28]
    a = np.floor(rng.random(n) * (width - 2 * DIGIT + overlap + 1)).astype(np.int64)
    b_lo = a + DIGIT - overlap
    b = b_lo + np.floor(rng.random(n) * (width - DIGIT - b_lo + 1)).astype(np.int64)
    canvas = np.zeros((n, DIGIT, width), dtype=np.uint8)
    _paste(canvas, pool[idx[:, 0]], a)
    _paste(canvas, pool[idx[:, 1]], b)
    classes = labels[idx]
    x = np.stack([a, b], 1) + ink_centre(pool)[idx]
    order = np.argsort(x, axis=1, kind="stable")  # left to right by where the ink is
    classes, x = np.take_along_axis(classes, order, 1), np.take_along_axis(x, order, 1)
    canvas = add_noise(canvas, noise, rng)
    return Pairs(torch.from_numpy(canvas[:, None]), torch.from_numpy(classes), torch.from_numpy(x.astype(np.float32)))


def compose_strings(digits, labels, n: int, *, width: int = 192, min_len: int = 1, max_len: int = 6,
                    gap: tuple[int, int] = (-6, 4), noise: float = 0.0, seed: int = 0) -> Strings:
    """`n` images of strings of `min_len`..`max_len` random digits; consecutive 28 px tiles are `gap`
    pixels apart (drawn uniformly from the range; negative = overlapping tiles), the string starts at a
    random x. Targets are padded to `max_len` with -1."""
    if width < max_len * DIGIT + (max_len - 1) * gap[1]:
        raise ValueError(f"a canvas {width} px wide cannot hold {max_len} digits with gaps up to {gap[1]} px")
    pool, labels = _pool(digits), np.asarray(labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    idx = rng.integers(0, len(pool), size=(n, max_len))
    gaps = rng.integers(gap[0], gap[1] + 1, size=(n, max_len))
    gaps[:, 0] = 0
    present = np.arange(max_len)[None, :] < lengths[:, None]
    steps = np.where(present, DIGIT + gaps, 0)
    steps[:, 0] = 0
    rel = np.cumsum(steps, 1)  # tile offsets relative to the first tile
    span = rel[np.arange(n), lengths - 1] + DIGIT
    start = np.floor(rng.random(n) * (width - span + 1)).astype(np.int64)
    offsets = start[:, None] + rel
    canvas = np.zeros((n, DIGIT, width), dtype=np.uint8)
    for k in range(max_len):
        rows = np.nonzero(present[:, k])[0]
        sub = canvas[rows]
        _paste(sub, pool[idx[rows, k]], offsets[rows, k])
        canvas[rows] = sub
    targets = np.where(present, labels[idx], -1)
    x = np.where(present, offsets + ink_centre(pool)[idx], -1.0)
    canvas = add_noise(canvas, noise, rng)
    return Strings(torch.from_numpy(canvas[:, None]), torch.from_numpy(targets), torch.from_numpy(lengths),
                   torch.from_numpy(x.astype(np.float32)))


def compose(tiles: list[np.ndarray], offsets: list[int], *, width: int, noise: float = 0.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One image from chosen 28 x 28 tiles at chosen left offsets (clipped into the canvas): returns
    (uint8 (28, width), x-centres in pixels in the order given)."""
    canvas = np.zeros((1, DIGIT, width), dtype=np.uint8)
    centres = []
    for tile, off in zip(tiles, offsets):
        off = int(np.clip(off, 0, width - DIGIT))
        tile = np.asarray(tile, dtype=np.uint8).reshape(1, DIGIT, DIGIT)
        _paste(canvas, tile, np.array([off]))
        centres.append(off + float(ink_centre(tile)[0]))
    return add_noise(canvas, noise, np.random.default_rng(seed))[0], np.array(centres, dtype=np.float32)
