"""Turn a free-hand drawing or an uploaded photo into the input a checkpoint expects.

Owns MNIST-style digit preprocessing (the way the MNIST set itself was made: crop to the ink, scale
into a 20x20 box keeping the aspect ratio with anti-aliasing, centre by centre of mass in 28x28) with
every intermediate step kept for display, and the plain resize used for photos. Does not own models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from core.data.images import ImageError, decode_image

INK_THRESHOLD = 0.05  # pixels brighter than this (on [0, 1], ink bright) count as ink
EXAMPLE_STROKES = [[(80, 70), (200, 70), (125, 225)], [(110, 150), (185, 150)]]  # a crossed 7 on a 280 canvas


@dataclass
class Preprocessed:
    image: np.ndarray  # (size, size) uint8, ink bright: what the model sees
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (caption, uint8 image) per step
    empty: bool = False  # no ink at all: nothing to classify


def to_grey_ink(image: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx3 or HxWx4 uint8 image -> float (H, W) in [0, 1] with the ink bright.

    Transparent pixels count as background; a mostly bright picture (dark ink on paper) is inverted.
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255.0
        rgb = img[..., :3].astype(np.float32) * alpha  # transparent -> black background
        grey = rgb.mean(axis=2) / 255.0
    elif img.ndim == 3:
        grey = img[..., :3].astype(np.float32).mean(axis=2) / 255.0
    else:
        grey = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else max(float(img.max()), 1.0))
    if np.median(grey) > 0.5:
        grey = 1.0 - grey
    return np.clip(grey, 0.0, 1.0)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _resize(x: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image in [0, 1] (Pillow's Lanczos on a float image)."""
    return np.asarray(Image.fromarray(x.astype(np.float32), mode="F").resize((width, height), Image.Resampling.LANCZOS))


def preprocess_digit(image: np.ndarray, *, size: int = 28, box: int = 20, centre: bool = True) -> Preprocessed:
    """MNIST-style preprocessing; with `centre=False` the whole canvas is just shrunk to size x size."""
    grey = to_grey_ink(image)
    steps = [("drawing (grey, ink bright)", _u8(grey))]
    ink = grey > INK_THRESHOLD
    if not ink.any():
        return Preprocessed(image=np.zeros((size, size), np.uint8), steps=steps, empty=True)
    if not centre:
        out = np.clip(_resize(grey, size, size), 0, 1)
        steps.append((f"whole canvas shrunk to {size}x{size}, no centring", _u8(out)))
        return Preprocessed(image=_u8(out), steps=steps)
    rows, cols = np.nonzero(ink)
    crop = grey[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    steps.append((f"cropped to the ink ({crop.shape[1]}x{crop.shape[0]})", _u8(crop)))
    scale = box / max(crop.shape)
    w, h = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    scaled = np.clip(_resize(crop, w, h), 0, 1)
    steps.append((f"scaled into a {box}x{box} box ({w}x{h})", _u8(scaled)))
    canvas = np.zeros((size, size), np.int64)  # the centre of mass of the bytes the model will see: whole numbers,
    top, left = (size - h) // 2, (size - w) // 2  # so the browser's copy (live.mjs) finds the same one, ties too
    canvas[top:top + h, left:left + w] = _u8(scaled)
    total = max(int(canvas.sum()), 1)
    cy = int((canvas.sum(axis=1) * np.arange(size)).sum()) / total
    cx = int((canvas.sum(axis=0) * np.arange(size)).sum()) / total
    dy, dx = int(round((size - 1) / 2 - cy)), int(round((size - 1) / 2 - cx))
    dy = int(np.clip(dy, -top, size - top - h))  # never push ink off the canvas
    dx = int(np.clip(dx, -left, size - left - w))
    centred = np.zeros((size, size), np.uint8)
    centred[top + dy:top + dy + h, left + dx:left + dx + w] = _u8(scaled)
    steps.append((f"centred by centre of mass in {size}x{size}", centred))
    return Preprocessed(image=centred, steps=steps)


MIN_SIDE, MAX_ASPECT = 8, 20  # a photo narrower than this, or this many times longer than wide, shows nothing


def read_photo(data: bytes) -> np.ndarray:
    """An uploaded photo (or camera shot) as uint8 (H, W, 3), by the guarded decoder; ImageError for a file that is
    no image and for one too small or too thin to show anything once it is made square (a 10,000 x 1 strip
    would be one uniform grey input)."""
    image = decode_image(data)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_ASPECT * min(height, width):
        raise ImageError(f"the image is {width}x{height} pixels: too small or too thin to classify (it would become "
                         f"one uniform patch). Use a picture at least {MIN_SIDE} pixels a side and at most "
                         f"{MAX_ASPECT} times as wide as it is high")
    return image


def preprocess_photo(image: np.ndarray, *, size: int, channels: int, dark_background: bool = False) -> np.ndarray:
    """Resize a photo (any mode) to (channels, size, size) uint8, centre-cropping to a square first.

    dark_background: the model's data shows light objects on black (MNIST, Fashion-MNIST); a grey photo
    whose border is light (an object on a white table or paper) is inverted to match.
    """
    img = Image.fromarray(np.asarray(image)).convert("L" if channels == 1 else "RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(img, dtype=np.uint8)
    if channels == 1 and dark_background and needs_inversion(arr):
        arr = 255 - arr
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1).copy()


def needs_inversion(grey: np.ndarray) -> bool:
    """Whether a grey image has a light background: its outer frame (1/8 of the side) averages above mid-grey."""
    k = max(1, grey.shape[0] // 8)
    frame = np.concatenate([grey[:k].ravel(), grey[-k:].ravel(), grey[:, :k].ravel(), grey[:, -k:].ravel()])
    return float(frame.mean()) > 127


def has_dark_background(card: dict) -> bool:
    """A grey data set of light objects on black (its mean pixel is darker than mid-grey): MNIST, Fashion-MNIST."""
    ds = card.dataset
    return ds.channels == 1 and float(ds.mean[0]) < 0.4


def render_strokes(strokes: list[list[tuple[float, float]]], *, size: int, width: int | list[int]) -> np.ndarray:
    """Draw polylines (canvas pixel coordinates) white on black with round ends and joints: the drawing pad's
    strokes, as the model gets them. `width`: one pen width for every stroke, or one per stroke.

    A pixel's ink is its centre's distance d to the nearest segment, as max(0, min(1, w/2 + 0.5 - d)): a one-pixel
    anti-aliased edge. The browser draws with the same rule (static/cnn_studio/live.mjs), so what it predicts
    while the pen moves is computed on the same pixels as the server's answer after it lifts."""
    ink = np.zeros((size, size), np.float64)
    widths = width if isinstance(width, list) else [width] * len(strokes or [])
    budget = MAX_WORK
    for stroke, w in zip(strokes or [], widths):
        points = np.asarray(list(stroke) if len(stroke) > 1 else list(stroke) * 2, np.float64).reshape(-1, 2)
        for start in range(0, len(points) - 1, CHUNK):  # consecutive segments together: one small box each
            budget -= _segments(ink, points[start:start + CHUNK + 1], w / 2)
            if budget < 0:  # only a message no pad sends gets here: the rest is left out, not waited for
                return np.rint(ink * 255.0).astype(np.uint8)
    return np.rint(ink * 255.0).astype(np.uint8)


CHUNK, MAX_WORK = 16, 40_000_000  # segments inked at once; pixel-segment distances one drawing may cost (~1 s)


def _segments(ink: np.ndarray, points: np.ndarray, r: float) -> int:
    """Ink the polyline `points` (n, 2) of radius r (see render_strokes) into `ink` in place, over its bounding
    box only; returns the work done (pixels x segments)."""
    size, reach = ink.shape[0], r + 0.5
    left, top = (max(int(math.floor(v - reach)), 0) for v in points.min(0))
    right, bottom = (min(int(math.ceil(v + reach)), size - 1) for v in points.max(0))
    if left > right or top > bottom:
        return 0
    px = np.arange(left, right + 1, dtype=np.float64)[None, None, :] + 0.5
    py = np.arange(top, bottom + 1, dtype=np.float64)[None, :, None] + 0.5
    a, b = points[:-1, :, None, None], points[1:, :, None, None]  # (segments, 2, 1, 1)
    d = b - a
    length2 = d[:, 0] ** 2 + d[:, 1] ** 2
    t = np.clip(((px - a[:, 0]) * d[:, 0] + (py - a[:, 1]) * d[:, 1]) / np.where(length2 > 0, length2, 1.0), 0, 1)
    distance = np.sqrt((px - a[:, 0] - t * d[:, 0]) ** 2 + (py - a[:, 1] - t * d[:, 1]) ** 2).min(0)
    box = ink[top:bottom + 1, left:right + 1]
    np.maximum(box, np.clip(reach - distance, 0.0, 1.0), out=box)
    return distance.size * len(a)


MAX_STROKES, MAX_POINTS = 1000, 20_000  # more than any drawing needs (points of all strokes together); a bigger
# message is cut, not refused


def pad_strokes(value, *, size: int) -> tuple[list[list[tuple[float, float]]], list[int]]:
    """(polylines, pen widths) from what a drawing pad sent, `[{"w": width, "p": [[x, y], ...]}, ...]`. It comes
    from a browser: malformed strokes are left out, points clipped to the canvas, widths to 1..size."""
    strokes, widths, budget = [], [], MAX_POINTS
    for stroke in value[:MAX_STROKES] if isinstance(value, list) else []:
        if budget <= 0:
            break
        try:
            points = [(min(max(float(x), 0.0), size), min(max(float(y), 0.0), size))
                      for x, y in stroke["p"][:budget]]
            width = int(min(max(float(stroke["w"]), 1.0), size))
        except (TypeError, ValueError, KeyError, OverflowError):
            continue
        if points and all(math.isfinite(c) for point in points for c in point):
            strokes.append(points)
            widths.append(width)
            budget -= len(points)
    return strokes, widths


SAMPLE_PHOTOS = {"cat (Chelsea)": "chelsea", "coffee": "coffee", "astronaut": "astronaut", "rocket": "rocket"}
SUBJECTS = {"cat (Chelsea)": ("cat", "tabby"), "coffee": ("coffee", "cup", "espresso", "mug"),
            "astronaut": ("astronaut", "person", "man"), "rocket": ("rocket", "missile", "shuttle")}  # words in classes


def shows_a_class(photo: str, class_names: list[str]) -> bool:
    """Whether sample photo `photo` shows one of the model's classes (by the words of its subject)."""
    words = SUBJECTS.get(photo, ())
    return any(w in str(name).lower().replace(",", " ").split() for name in class_names for w in words)


def sample_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos (H, W, 3) uint8, by its label in SAMPLE_PHOTOS."""
    from skimage import data  # imported on use: only the photo pages need scikit-image

    return np.asarray(getattr(data, SAMPLE_PHOTOS[name])(), dtype=np.uint8)


def example_digit(size: int = 28) -> np.ndarray:
    """The example drawing (a crossed 7), preprocessed: the default input before the user draws."""
    return preprocess_digit(render_strokes(EXAMPLE_STROKES, size=280, width=20), size=size).image
