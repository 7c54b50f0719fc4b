"""One channel's units seen through data: the test images that excite it most (and least), and the patch of the
input each unit reads.

Owns the receptive field, measured rather than derived: the input pixels that carry a gradient to a layer's centre
unit, united over a batch of noise images (so max-pooling's one routed pixel per window, different per image,
still covers the window). That holds for any architecture (space-to-depth stems, residual blocks, uploaded
graphs), where adding up kernel sizes and strides would not. The Deep Visualization Toolbox (Yosinski et al.,
2015) showed the top-9 images per unit with the patch that produced the maximum; `top_images` does that for any
conv channel of any classifier here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.engine.predict import input_spec
from core.inside.channels import Target, channel_reader, to_model
from core.models import evaluating


@dataclass(frozen=True)
class Field:
    """A layer's receptive field: the centre unit's box (y0, x0, y1, x1; ends exclusive) on the input, the centre
    unit's map position and the map's stride on the input (pixels per map step)."""
    box: tuple[int, int, int, int]
    centre: tuple[int, int]
    stride: tuple[float, float]
    size: int

    @property
    def extent(self) -> int:
        """The side of the field, in input pixels (the larger of its height and width)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def at(self, row: int, col: int) -> tuple[int, int, int, int]:
        """The box of the unit at map position (row, col), clipped to the image."""
        dy, dx = round((row - self.centre[0]) * self.stride[0]), round((col - self.centre[1]) * self.stride[1])
        y0, x0, y1, x1 = self.box
        clip = lambda v: int(min(max(v, 0), self.size))  # noqa: E731
        return clip(y0 + dy), clip(x0 + dx), clip(y1 + dy), clip(x1 + dx)


def receptive_field(model, card, layer: str, probes: int = 16, seed: int = 0) -> Field:
    """The receptive field of conv layer `layer`'s units (at its block output), measured by gradients from the
    centre unit of every channel to a batch of noise images."""
    channels, size = input_spec(card)
    gen = torch.Generator().manual_seed(seed)
    x = to_model(torch.rand(probes, channels, size, size, generator=gen), card).requires_grad_(True)
    with evaluating(model):
        pre, _ = channel_reader(model, Target(layer, 0))(x)
        cy, cx = pre.shape[2] // 2, pre.shape[3] // 2
        pre[:, :, cy, cx].abs().sum().backward()
    touched = (x.grad.abs().sum((0, 1)) > 0).nonzero()
    if not len(touched):  # a unit no input reaches (all weights zero): the pixel under it
        row, col = round((cy + 0.5) * size / pre.shape[2]), round((cx + 0.5) * size / pre.shape[3])
        touched = torch.tensor([[min(row, size - 1), min(col, size - 1)]])
    (y0, x0), (y1, x1) = touched.min(0).values.tolist(), touched.max(0).values.tolist()
    return Field((y0, x0, y1 + 1, x1 + 1), (cy, cx), (size / pre.shape[2], size / pre.shape[3]), size)


@dataclass
class Exciting:
    """A channel's most exciting and most inhibiting images among those searched."""
    top: list[int]  # indices into the images, highest activation first
    top_values: list[float]  # each one's activation (its map's maximum)
    top_boxes: list[tuple[int, int, int, int]]  # the patch (y0, x0, y1, x1) of its strongest unit
    bottom: list[int]  # lowest activation (its map's mean) first
    bottom_values: list[float]
    searched: int


def channel_maps(model, card, layer: str, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    """(N, channels, H, W) every channel's map at the layer's block output, for uint8 images (N, C, H, W)."""
    read, out = channel_reader(model, Target(layer, 0)), []
    with evaluating(model), torch.no_grad():
        for part in images.split(batch):
            out.append(read(to_model(part.float() / 255, card))[1])
    return torch.cat(out)


def top_images(maps: torch.Tensor, channel: int, field: Field, k: int = 9) -> Exciting:
    """The `k` images whose channel map peaks highest (with the patch of that peak), and the `k` whose map is
    lowest on average, from `channel_maps`' output."""
    one = maps[:, channel]
    peak, where = one.flatten(1).max(1)
    top = peak.argsort(descending=True)[:k].tolist()
    boxes = [field.at(int(where[i]) // one.shape[2], int(where[i]) % one.shape[2]) for i in top]
    mean = one.flatten(1).mean(1)
    bottom = mean.argsort()[:k].tolist()
    return Exciting(top, [float(peak[i]) for i in top], boxes, bottom, [float(mean[i]) for i in bottom], len(one))


def outline(image: np.ndarray, box: tuple[int, int, int, int], colour=(228, 87, 46)) -> np.ndarray:
    """An RGB uint8 (H, W, 3) copy of a uint8 (C, H, W) image with a one-pixel frame just inside `box`."""
    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image.copy()
    rgb = np.ascontiguousarray(rgb.transpose(1, 2, 0))
    y0, x0, y1, x1 = box
    paint = np.array(colour, np.uint8)
    rgb[y0:y1, [x0, x1 - 1]] = paint
    rgb[[y0, y1 - 1], x0:x1] = paint
    return rgb
