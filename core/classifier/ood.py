"""Images no class of a model describes, and what a classifier says about any one image with its confidence.

`ood_images(name, channels, size)` makes the other side of an out-of-distribution test at a model's input format:
a registered data set's test images, converted (`fashion_mnist` against an MNIST model), or one of the project's
own sets: `scribbles` (random pen strokes through the drawing pad's MNIST preprocessing, as a visitor draws
them), `textures` (gratings, checkerboards, blobs and noise in random colours) and `photos` (crops of
scikit-image's photos of things no CIFAR-10 class names: coffee, an astronaut, a rocket, text, the moon).
`ood_report` measures a checkpoint against one of them; `answer` is what a page shows for one image: the
(calibrated and raw) probabilities and whether the image looks like anything the model knows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.classifier.calibration import SCORES, score, separation
from core.data import load_dataset
from core.draw.preprocess import preprocess_digit, render_strokes
from core.engine.predict import predict_logits, to_batch
from core.errors import SettingsError

OWN = ("scribbles", "textures", "photos")  # the project's own out-of-distribution sets
PHOTOS = ("coffee", "astronaut", "rocket", "text", "moon", "camera", "brick", "grass", "gravel")  # skimage.data


def scribbles(n: int = 1000, seed: int = 0) -> torch.Tensor:
    """Random pen scribbles (2-5 strokes of 2-8 points, a pad-like brush) through the pad's MNIST preprocessing:
    (n, 1, 28, 28) uint8."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        strokes = [[tuple(p) for p in rng.uniform(20, 260, (rng.integers(2, 9), 2))] for _ in range(rng.integers(2, 6))]
        drawing = render_strokes(strokes, size=280, width=int(rng.integers(12, 30)))
        out.append(preprocess_digit(drawing).image)
    return torch.from_numpy(np.stack(out))[:, None]


def textures(n: int = 1000, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Synthetic textures: oriented gratings, checkerboards, smooth blobs and noise, in random colours:
    (n, 3, size, size) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        kind, a, b = i % 4, rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        if kind == 0:
            angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 12)
            t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)))
        elif kind == 1:
            cells = rng.integers(2, 9)
            t = ((np.floor(x * cells) + np.floor(y * cells)) % 2).astype(float)
        elif kind == 2:
            t = F.interpolate(torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(seed + i)), size=size,
                              mode="bicubic", align_corners=False)[0, 0].clamp(0, 1).numpy()
        else:
            t = rng.uniform(0, 1, (size, size))
        out.append((a[:, None, None] * t + b[:, None, None] * (1 - t)).clip(0, 255).astype(np.uint8))
    return torch.from_numpy(np.stack(out))


def photos(n: int = 900, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random square crops of scikit-image photos of things no CIFAR-10 class names, resized: (n, 3, size, size)."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [np.asarray(getattr(data, name)()) for name in PHOTOS]
    sources = [np.repeat(s[..., None], 3, 2) if s.ndim == 2 else s[..., :3] for s in sources]
    out = []
    for i in range(n):
        image = sources[i % len(sources)]
        side = int(rng.integers(min(image.shape[:2]) // 4, min(image.shape[:2]) + 1))
        top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        crop = Image.fromarray(np.ascontiguousarray(image[top:top + side, left:left + side]).astype(np.uint8))
        out.append(np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR)).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))


def _as_input(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) as the model's input format: grey or colour, size x size."""
    x = images.float()
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def ood_images(name: str, channels: int, size: int, data_dir: str | None = None) -> torch.Tensor:
    """An out-of-distribution set at the model's input format (see the module docstring)."""
    if name == "scribbles":
        raw = scribbles()
    elif name == "textures":
        raw = textures(size=max(size, 32))
    elif name == "photos":
        raw = photos(size=max(size, 32))
    else:
        raw = load_dataset(name, data_dir).test_x
    return _as_input(raw, channels, size)


def ood_report(model, card, out_name: str, data_dir: str | None = None) -> dict:
    """{score: {auroc, fpr_at_95_tpr}} of the checkpoint's test images against `out_name`'s, and the card's threshold."""
    if not card.dataset.has_test_set:
        raise SettingsError(f"{card.dataset.name} is not on this machine: no in-distribution test images to compare.")
    if out_name.split("@")[0] == card.dataset.name.split("@")[0]:
        raise SettingsError(f"{out_name} is the model's own data set; choose another (e.g. {', '.join(OWN)}).")
    ds = card.dataset
    inside = predict_logits(model, load_dataset(ds.name, data_dir).test_x, ds.mean, ds.std)
    outside = predict_logits(model, ood_images(out_name, ds.channels, ds.image_size, data_dir), ds.mean, ds.std)
    rows = {name: separation(score(inside, name), score(outside, name)) for name in SCORES}
    return {"in": ds.name, "in_n": len(inside), "ood": out_name, "ood_n": len(outside), "scores": rows,
            "auroc": rows[SCORES[0]]["auroc"], "fpr_at_95_tpr": rows[SCORES[0]]["fpr_at_95_tpr"],
            "threshold": (card.section("calibration") or {}).get("ood", {}).get("threshold")}


@dataclass
class Answer:
    probs: np.ndarray  # the class probabilities the page shows (calibrated when the card has a temperature)
    raw: np.ndarray  # without temperature scaling
    temperature: float | None
    score: float | None  # the out-of-distribution score (energy), None when the card has no threshold
    threshold: float | None

    @property
    def known(self) -> bool:
        """Whether the image looks like the images the model was trained on (no threshold: assumed so)."""
        return self.threshold is None or self.score >= self.threshold


def answer(model, card, image: np.ndarray) -> Answer:
    """What a page says about one image: probabilities (calibrated and raw) and the out-of-distribution verdict."""
    section = card.section("calibration") or {}
    with torch.inference_mode():
        logits = model(to_batch(image, card)).float()
    t, ood = section.get("temperature"), section.get("ood") or {}
    raw = F.softmax(logits, 1)[0].numpy()
    probs = F.softmax(logits / t, 1)[0].numpy() if t else raw
    value = float(score(logits, ood.get("score", SCORES[0]))[0]) if ood else None
    return Answer(probs, raw, t, value, ood.get("threshold"))
