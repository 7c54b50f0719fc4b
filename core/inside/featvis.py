"""Feature visualisation by optimisation: the input that a channel (or a class) responds to most.

Owns the method of Olah, Mordvintsev and Schubert, "Feature Visualization" (Distill, 2017), written for this
engine and for any classifier at its own input size (one or three channels): the image is a spectrum in Fourier
space scaled by 1/frequency (so gradient steps favour the low frequencies that natural images have), its colours
decorrelated for RGB models, squashed into valid pixels by a sigmoid; each step shows the model a randomly
jittered, scaled and rotated view of it, so only patterns that survive those transformations grow. Many channels
(or several diverse images of one channel, with a penalty on the similarity of their Gram matrices) optimise
together in one batch. The channel's activation is read at its conv's block output (`block_output`: after the
activation that follows it); the ascent follows it plus a tenth of its input (all of it while the activation is not
positive), so a rectified channel that starts dead, or a GELU's negative trough, still has a slope. Each image's
step has the same length (the gradient normalised, with momentum): Adam's per-coefficient steps turned the small,
consistent gradients of the image's border into noise and drove pixels into the sigmoid's flat ends, where they
stayed (a channel that wants a flat white image reached 70 % of the best photo's activation instead of 100 %+).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.engine.predict import input_spec
from core.inside.channels import Target, channel_reader, pick, to_model
from core.inside.units import receptive_field
from core.models import evaluating

# The square root of natural images' RGB covariance (Olah et al.'s Lucid, ImageNet), scaled to unit largest column
_COLOUR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOUR_SQRT = _COLOUR / _COLOUR.norm(dim=0).max()


class FourierImage(nn.Module):
    """n images (C, H, W) as 1/f-scaled Fourier coefficients, decorrelated colours, sigmoid to [0, 1]."""

    def __init__(self, n: int, channels: int, size: int, seed: int = 0, decay: float = 1.0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        freq = torch.sqrt(fx * fx + fy * fy).clamp_min(1.0 / size)
        self.register_buffer("scale", (1.0 / freq ** decay) / size)
        self.spectrum = nn.Parameter(0.01 * torch.randn(n, channels, size, size // 2 + 1, 2, generator=gen))
        self.size, self.channels = size, channels

    def forward(self) -> torch.Tensor:
        coeffs = torch.view_as_complex(self.spectrum) * self.scale
        img = torch.fft.irfft2(coeffs, s=(self.size, self.size), norm="ortho") * 4.0
        if self.channels == 3:
            img = torch.einsum("nchw,dc->ndhw", img, COLOUR_SQRT)
        return torch.sigmoid(img)


def random_view(img: torch.Tensor, jitter: int, scale: float, degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Each image seen shifted by up to `jitter` whole pixels (edges reflected), then scaled by 1 +- `scale` and
    turned by up to `degrees` in one bilinear resampling (skipped when both are 0: it would blur fine detail)."""
    n, _, h, w = img.shape
    u = lambda: torch.rand(n, generator=gen) * 2 - 1  # noqa: E731 - uniform in [-1, 1] per image
    if jitter:
        padded = F.pad(img, [jitter] * 4, mode="reflect")
        dy, dx = torch.randint(0, 2 * jitter + 1, (2,), generator=gen).tolist()
        img = padded[:, :, dy:dy + h, dx:dx + w]
    if not scale and not degrees:
        return img
    angle, zoom = u() * math.radians(degrees), 1 + u() * scale
    cos, sin, zero = torch.cos(angle) / zoom, torch.sin(angle) / zoom, torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gram_similarity(features: torch.Tensor, groups: int) -> torch.Tensor:
    """Mean cosine similarity between the Gram matrices of the images of each group (batch = groups x n)."""
    n = len(features) // groups
    flat = features.flatten(2)
    gram = F.normalize((flat @ flat.transpose(1, 2)).flatten(1), dim=1).view(groups, n, -1)
    sim = gram @ gram.transpose(1, 2)
    return (sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)).mean() / max(1, n * (n - 1))


def _field_share(model: nn.Module, card, layer: str | None) -> float:
    """How much of the input a unit of the layer sees, from 0 to 1 (a quarter of the image or more: 1); the
    regularisation scales with it: small fields get fine detail and little jitter, large ones the full strength."""
    if layer is None:
        return 1.0
    size = input_spec(card)[1]
    return min(1.0, receptive_field(model, card, layer).extent / (size / 4))


@dataclass
class Visualisation:
    images: np.ndarray  # uint8 (B, C, H, W), B = channels x per_channel
    activations: np.ndarray  # (B,) each image's activation of its own channel, seen without any transformation
    seconds: float


def visualize(model: nn.Module, card, layer: str | None, channels: list[int], *, mode: str = "mean",
              per_channel: int = 1, diversity: float = 0.0, steps: int = 256, lr: float = 1.0, seed: int = 0,
              progress: Callable[[float], None] | None = None) -> Visualisation:
    """Optimise `per_channel` images for each of `channels` of conv layer `layer` (None: class logits) at the
    model's input size, all in one batch; `diversity` > 0 pushes one channel's images apart."""
    start, (c, size) = time.perf_counter(), input_spec(card)
    want, field = torch.tensor(channels).repeat_interleave(per_channel), _field_share(model, card, layer)
    jitter = round(size / 16 * field)  # a unit that sees 2 pixels gains nothing from moving them: none below 1/8
    scale, degrees = (0.1, 10.0) if field >= 0.5 else (0.0, 0.0)
    param = FourierImage(len(want), c, size, seed=seed, decay=field)
    gen, read = torch.Generator().manual_seed(seed + 1), channel_reader(model, Target(layer, 0, mode))
    opt = torch.optim.SGD(param.parameters(), lr=lr, momentum=0.9)
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:  # gradients for the image only
        p.requires_grad_(False)
    try:
        with evaluating(model):
            for step in range(steps):
                calm = step >= steps * 7 // 8  # the last eighth sees the image as it is shown: it settles on pixels
                view = param() if calm else random_view(param(), jitter, scale, degrees, gen)
                pre, post = read(to_model(view, card))
                value, below = pick(post, want, mode), pick(pre, want, mode)  # a dead unit's input still has a slope
                loss = -(value + torch.where(value > 0, 0.1, 1.0) * below).sum()
                if diversity and per_channel > 1 and pre.dim() == 4:
                    loss = loss + diversity * len(want) * _gram_similarity(pre, len(channels))
                opt.zero_grad()
                loss.backward()
                grad = param.spectrum.grad  # each image's step has the same length, in the gradient's direction
                grad /= grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))
                opt.step()
                if progress and step % 8 == 7:
                    progress((step + 1) / steps)
            with torch.no_grad():
                pixels = (param() * 255).round() / 255  # the picture as stored: its activation is the one reported
                reached = pick(read(to_model(pixels, card))[1], want, mode)
    finally:
        for p in trainable:
            p.requires_grad_(True)
    images = (pixels * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return Visualisation(images, reached.numpy(), time.perf_counter() - start)
