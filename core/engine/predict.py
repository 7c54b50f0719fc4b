"""Predictions for single images, the way a checkpoint's model card says its input must look.

Owns the bridge from a uint8 image (H, W) or (C, H, W) to class probabilities: shape checks against
the card, normalisation with the card's constants, softmax. Pages and benchmarks use it, so the draw
page, the feature-map viewer and `bench/latency.py` all feed models identically.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.engine.tasks import normalize
from core.models.registry import evaluating


def input_spec(card: dict) -> tuple[int, int]:
    """(channels, image size) the checkpoint's model expects."""
    kwargs = card.model.kwargs
    return int(kwargs["in_channels"]), int(kwargs["image_size"])


def to_batch(image: np.ndarray, card: dict) -> torch.Tensor:
    """uint8 (H, W) or (C, H, W) -> normalised float (1, C, H, W), checked against the card."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[None]
    channels, size = input_spec(card)
    if arr.shape != (channels, size, size):
        raise ValueError(f"the model expects a {channels}x{size}x{size} image, got {tuple(arr.shape)}")
    ds = card.dataset
    return normalize(torch.from_numpy(np.array(arr, dtype=np.uint8))[None], ds.mean, ds.std)  # a copy: inputs may be read-only


def predict_proba(model: nn.Module, card: dict, image: np.ndarray) -> np.ndarray:
    """Class probabilities (num_classes,) for one image."""
    with torch.inference_mode():
        logits = model(to_batch(image, card))
    return torch.softmax(logits.float(), dim=1)[0].numpy()


DIGIT_SETS = ("mnist", "emnist", "kmnist", "digits")  # handwritten digits: a drawing on the pad is their kind of input


def is_digit_model(card: dict) -> bool:
    """Whether the model reads grey handwritten digits (of any resolution, or a class subset), so a drawing on the
    pad, preprocessed MNIST-style to its input size, is a valid input."""
    return input_spec(card)[0] == 1 and card.dataset.name.split("@")[0] in DIGIT_SETS


def digit_box(size: int) -> int:
    """The box a digit is scaled into on a size x size input: MNIST's 20 of 28, in proportion (6 of 8)."""
    return max(4, round(size * 20 / 28))


def predict_logits(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 1000,
                   tta: bool = False) -> torch.Tensor:
    """Model outputs (N, ...), logits (N, classes) for a classifier, for uint8 images (N, C, H, W), in eval
    mode without gradients; the model's training mode is restored afterwards. `tta`: test-time augmentation,
    the mean of the logits of each image and its mirror image (only for data whose labels survive a flip)."""
    device = next(model.parameters()).device
    out = []
    with evaluating(model), torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = normalize(images[i:i + batch_size].to(device), mean, std)
            logits = model(x).float()
            if tta:
                logits = (logits + model(x.flip(-1)).float()) / 2
            out.append(logits.cpu())
    return torch.cat(out)
