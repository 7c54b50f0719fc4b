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
class Summary:
    """Each searched image's value per channel of one layer: its map's peak, where the peak is (flat index into
    the map), its map's mean and its centre unit; (N, channels) each. A class target has one 1x1 'map' per class:
    its logit."""
    peak: torch.Tensor
    where: torch.Tensor
    mean: torch.Tensor
    centre: torch.Tensor
    width: int

    def best(self, channel: int, mode: str) -> float:
        """The highest activation of `channel` among the images, read as feature visualisation reads it (`mode`)."""
        return float((self.centre if mode == "centre" else self.mean)[:, channel].max())


def channel_summary(model, card, layer: str | None, images: torch.Tensor, batch: int = 250) -> Summary:
    """Every channel's `Summary` at the layer's block output (None: the class logits), for uint8 images
    (N, C, H, W), read in batches so that no layer's maps for all images are held at once."""
    read, peak, where, mean, centre, width = channel_reader(model, Target(layer, 0)), [], [], [], [], 1
    with evaluating(model), torch.no_grad():
        for part in images.split(batch):
            post = read(to_model(part.float() / 255, card))[1]
            if post.dim() == 2:
                post = post[:, :, None, None]
            width = post.shape[3]
            flat = post.flatten(2)
            top = flat.max(2)
            peak.append(top.values)
            where.append(top.indices)
            mean.append(flat.mean(2))
            centre.append(post[:, :, post.shape[2] // 2, post.shape[3] // 2])
    return Summary(torch.cat(peak), torch.cat(where), torch.cat(mean), torch.cat(centre), width)


@dataclass
class Exciting:
    """A channel's most exciting and most inhibiting images among those searched."""
    top: list[int]  # indices into the images, highest peak first
    top_values: list[float]  # each one's activation (its map's maximum)
    top_boxes: list[tuple[int, int, int, int]]  # the patch (y0, x0, y1, x1) of its strongest unit
    bottom: list[int]  # lowest activation (its map's mean) first
    bottom_values: list[float]
    searched: int


def top_images(summary: Summary, channel: int, field: Field | None, k: int = 9) -> Exciting:
    """The `k` images whose channel map peaks highest (with the patch of that peak; no patch, (0, 0, 0, 0), without
    a `field`: a class's logit), and the `k` whose map is lowest on average."""
    peak, where, mean = summary.peak[:, channel], summary.where[:, channel], summary.mean[:, channel]
    top = peak.argsort(descending=True)[:k].tolist()
    boxes = [field.at(int(where[i]) // summary.width, int(where[i]) % summary.width) if field else (0, 0, 0, 0)
             for i in top]
    bottom = mean.argsort()[:k].tolist()
    return Exciting(top, [float(peak[i]) for i in top], boxes, bottom, [float(mean[i]) for i in bottom], len(peak))


def outline(image: np.ndarray, box: tuple[int, int, int, int], side: int = 96, colour=(228, 87, 46)) -> np.ndarray:
    """A uint8 (C, H, W) image enlarged (crisp pixels) to about `side` px, as RGB (H', W', 3), with a two-pixel
    frame around `box` (y0, x0, y1, x1 in the image's pixels, clipped to it)."""
    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image
    scale = max(1, side // image.shape[-1])
    big = np.ascontiguousarray(rgb.transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1))
    h, w = image.shape[1:]
    y0, x0, y1, x1 = (min(max(v, 0), lim) * scale for v, lim in zip(box, (h, w, h, w)))
    paint = np.array(colour, np.uint8)
    big[y0:y1, [x0, x0 + 1, x1 - 2, x1 - 1]] = paint
    big[[y0, y0 + 1, y1 - 2, y1 - 1], x0:x1] = paint
    return big
