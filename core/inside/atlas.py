"""A layer's neuron atlas: one feature visualisation per channel, computed once per checkpoint and layer.

Owns the atlas's cache (in the user's cache folder, named by a digest of the model's weights and the layer, so a
retrained or uploaded model never shows another's pictures) and the images the visualisations are measured
against: the first test images of the checkpoint's data set, or its shipped sample when the set is not here.
"""
from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core import paths
from core.inside.featvis import visualize

VERSION = 1  # bump when the optimisation changes: older atlases are then recomputed
CHUNK = 32  # channels optimised together (one batch); the progress moves once per chunk and within it


_DIGESTS: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()


def model_digest(model: nn.Module) -> str:
    """A short digest of every parameter and buffer: the same weights, the same digest (kept per model object:
    the pages' models are shared and never trained)."""
    if model in _DIGESTS:
        return _DIGESTS[model]
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    _DIGESTS[model] = h.hexdigest()[:16]
    return _DIGESTS[model]


def atlas_path(digest: str, layer: str) -> str:
    return str(paths.cache_dir("atlas") / f"{digest}_{paths.safe_name(layer)}_v{VERSION}.npz")


def cached_atlas(digest: str, layer: str) -> dict | None:
    """The stored atlas of this model's layer: {"images": uint8 (channels, C, H, W), "activations"}, or None."""
    try:
        with np.load(atlas_path(digest, layer)) as stored:
            return {"images": stored["images"], "activations": stored["activations"]}
    except (OSError, KeyError, ValueError):
        return None


def compute_atlas(model: nn.Module, card, layer: str, digest: str,
                  progress: Callable[[float], None] | None = None) -> dict:
    """Every channel of conv layer `layer` visualised (chunks of `CHUNK` channels), stored, and returned."""
    channels = dict(model.named_modules())[layer].out_channels
    images, reached = [], []
    for start in range(0, channels, CHUNK):
        part = list(range(start, min(channels, start + CHUNK)))
        done = lambda f, s=start, n=len(part): progress and progress((s + f * n) / channels)  # noqa: E731
        result = visualize(model, card, layer, part, progress=done)
        images.append(result.images)
        reached.append(result.activations)
    atlas = {"images": np.concatenate(images), "activations": np.concatenate(reached)}
    paths.replace_atomically(Path(atlas_path(digest, layer)), lambda tmp: np.savez_compressed(tmp, **atlas))
    if progress:
        progress(1.0)
    return atlas


def search_images(card, data_dir: str | None = None, n: int = 1000, data=None) -> tuple[torch.Tensor, str]:
    """(uint8 images (n, C, H, W), a phrase naming them): the first `n` test images of the checkpoint's data set
    (`data` when the caller holds it already), or of its shipped sample. Raises `core.data.DataError` when neither
    is here."""
    from core.data.samples import load_or_sample

    data = data if data is not None else load_or_sample(card.dataset.name, data_dir)
    images = data.test_x[:n]
    what = f"{len(images)} test images of {card.dataset.name}" + (" (the shipped sample)" if data.sample else "")
    return images, what
