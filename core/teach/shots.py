"""Shots and their features: any image -> the 224 x 224 RGB square the model reads -> pretrained features.

`as_shot` centre-crops and resizes like every photo page (`core.draw.preprocess.preprocess_photo`), so a shot
is exactly what Inside and Draw will feed the saved model. `FeatureBank` runs the frozen EfficientNet-Lite0 on
each new shot in VIEWS (the shot, its mirror image and a zoomed centre crop: the few-shot augmentation) in one
batch, and keeps the result by the shot's bytes, so a shot seen before costs nothing.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

import numpy as np
import torch

from core.draw.preprocess import preprocess_photo
from core.engine.tasks import normalize
from core.errors import SettingsError
from core.models import build_model, evaluating
from core.models.pretrained import LITE_MEAN, LITE_STD

SIZE = 224  # the side of a shot: the backbone's own resolution
VIEWS = ("shot", "mirror", "zoom")  # the augmented copies each shot is seen as (zoom: the centre 80 %, resized)
ZOOM = 0.8
MIN_CLASSES, MAX_CLASSES = 2, 10
MAX_SHOTS = 500  # in one teaching session: features for all of them take ~2 minutes on a laptop CPU


def as_shot(image: np.ndarray) -> np.ndarray:
    """Any decoded image (H, W), (H, W, 3) or (H, W, 4) uint8 -> the shot, uint8 (3, SIZE, SIZE)."""
    return preprocess_photo(np.asarray(image, dtype=np.uint8), size=SIZE, channels=3)


def shot_key(shot: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(shot).tobytes(), digest_size=12).hexdigest()


def views(shots: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> (N * len(VIEWS), 3, S, S): each shot followed by its augmented copies."""
    side = shots.shape[-1]
    cut = int(round(side * (1 - ZOOM) / 2))
    zoom = torch.nn.functional.interpolate(shots[..., cut:side - cut, cut:side - cut].float(), size=(side, side),
                                           mode="bilinear", align_corners=False, antialias=True)
    copies = {"shot": shots, "mirror": shots.flip(-1), "zoom": zoom.round().clamp(0, 255).to(torch.uint8)}
    return torch.stack([copies[v] for v in VIEWS], 1).flatten(0, 1)


def check_classes(names: list[str]) -> list[str]:
    """The class names, stripped; SettingsError unless there are 2-10 distinct, non-empty ones."""
    names = [str(n).strip()[:60] for n in names]
    if any(not n for n in names):
        raise SettingsError("A class has no name: give every class a name (e.g. 'thumbs up').")
    if len(set(names)) != len(names):
        raise SettingsError(f"Two classes have the same name ({', '.join(names)}): each needs its own.")
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise SettingsError(f"{len(names)} classes: teach between {MIN_CLASSES} and {MAX_CLASSES}.")
    return names


def read_class_shots(source: str | bytes, filename: str = "upload.zip") -> tuple[list[str], list, list[int], int]:
    """(class names, shots, labels, files skipped) from a folder or zip (a path, or an upload's bytes) of class
    folders, train/ and test/ merged; each image decoded by the guarded decoder. DataError or SettingsError with
    the reason when it is no such folder or has too many images or classes."""
    from core.data.folder import class_files
    from core.data.images import ImageError
    from core.draw.preprocess import read_photo

    files = class_files(source, MAX_SHOTS, filename)
    folders = sorted({cls for cls, _ in files})
    classes = check_classes(folders)
    shots, labels, skipped = [], [], 0
    for cls, data in files:
        try:
            shots.append(as_shot(read_photo(data)))
            labels.append(folders.index(cls))
        except ImageError:
            skipped += 1
    return classes, shots, labels, skipped


def sample_shots(photo: str, n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` shots of one of scikit-image's photos (a label of SAMPLE_PHOTOS): the whole photo, then random square
    crops of 55-95 % of its short side, some mirrored, as a camera moved around the subject would take them."""
    from core.draw.preprocess import sample_photo

    image, rng = sample_photo(photo), np.random.default_rng(seed)
    height, width = image.shape[:2]
    shots = [as_shot(image)]
    while len(shots) < n:
        side = int(min(height, width) * rng.uniform(0.55, 0.95))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = image[top:top + side, left:left + side]
        shots.append(as_shot(crop[:, ::-1] if rng.random() < 0.3 else crop))
    return shots[:n]


class FeatureBank:
    """The frozen backbone and the features of every shot it has seen ((len(VIEWS), D) each, by the shot's bytes;
    the oldest dropped past `capacity`). Shared by every session of a server: a shot's features depend on
    nothing but the shot."""

    def __init__(self, capacity: int = 5000):
        self.model = build_model("efficientnet_lite0", in_channels=3, image_size=SIZE, num_classes=2)
        self.model.eval()
        self.capacity, self._store, self._lock = capacity, OrderedDict(), threading.Lock()
        self.last_seconds_per_shot: float | None = None

    def features(self, shots: list[np.ndarray], batch: int = 8, progress=None) -> torch.Tensor:
        """float32 (N, len(VIEWS), D) for uint8 (3, SIZE, SIZE) shots; only the unseen ones run the network."""
        keys = [shot_key(s) for s in shots]
        with self._lock:
            todo = list(dict.fromkeys(k for k in keys if k not in self._store))
        wanted = {k: s for k, s in zip(keys, shots)}
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            began = time.perf_counter()
            x = views(torch.from_numpy(np.stack([wanted[k] for k in chunk])))
            with evaluating(self.model), torch.inference_mode():
                out = self.model.prefix(normalize(x, LITE_MEAN, LITE_STD))[0].float()
            self.last_seconds_per_shot = (time.perf_counter() - began) / len(chunk)
            with self._lock:
                for i, k in enumerate(chunk):
                    self._store[k] = out[i * len(VIEWS):(i + 1) * len(VIEWS)].clone()
                while len(self._store) > self.capacity:
                    self._store.popitem(last=False)
            if progress is not None:
                progress(min(start + batch, len(todo)), len(todo))
        with self._lock:
            return torch.stack([self._store[k] for k in keys]) if keys else torch.zeros(0, len(VIEWS), 0)
