"""Reading one channel (or one class) of a classifier: the value that feature visualisation raises, that ranks the
test images, and that the receptive field is measured from.

Owns `Target` (a conv layer's channel, its map's mean or centre unit, or a class logit) and `channel_reader`, which
runs the model only up to the layer (a hook stops the forward pass there) and returns the layer's block output
before and after its activation (`core.inside.explain.block_output`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from core.engine.tasks import normalize
from core.inside.explain import block_output, conv_layer_names
from core.models import evaluating


@dataclass(frozen=True)
class Target:
    """What to excite: channel `index` of conv layer `layer` (its map's mean, or its centre unit), or, with
    layer None, the logit of class `index`."""
    layer: str | None
    index: int
    mode: str = "mean"  # "mean" | "centre"

    def label(self, classes=None) -> str:
        if self.layer is None:
            return f"class {classes[self.index] if classes is not None else self.index}"
        return f"{self.layer} channel {self.index}" + (" (centre unit)" if self.mode == "centre" else "")


class _Stop(Exception):
    """Raised by a hook once the target layer has run: nothing after it is needed."""


def own_copy(model: nn.Module) -> nn.Module:
    """A private copy of a shared model for work in another thread: its own weights and no hooks, so the hooks that
    read a layer (here, Grad-CAM's, the layer view's) never fire on the other thread's forward passes."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
        module._backward_hooks.clear()
    return twin.eval()


def to_model(pixels: torch.Tensor, card) -> torch.Tensor:
    """Pixels in [0, 1] (B, C, H, W) -> the model's normalised input: the engine's one normalisation
    (`core.engine.tasks.normalize`, which reads 0-255), kept differentiable for feature visualisation."""
    return normalize(pixels * 255.0, card.dataset.mean, card.dataset.std)


def channel_reader(model: nn.Module, target: Target) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """A function: normalised batch -> (pre, post), each (B, channels[, H, W]): the target layer's block output
    before and after its activation (a class target: the logits, twice). Stops the forward pass at the layer."""
    if target.layer is None:
        return lambda x: (model(x),) * 2
    if target.layer not in conv_layer_names(model):
        raise KeyError(f"no conv layer named {target.layer!r} in this model")
    name = block_output(model, target.layer)
    module, own = dict(model.named_modules())[name], name == target.layer  # own: no activation after the conv

    def read(x: torch.Tensor):
        got: dict = {}

        def before(_m, inputs):
            if not own:
                got["pre"] = inputs[0].clone()  # an in-place activation would overwrite it

        def after(_m, _inputs, output):
            got["post"] = output
            got.setdefault("pre", output)
            raise _Stop

        handles = [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
        try:
            model(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        return got["pre"], got["post"]
    return read


def pick(values: torch.Tensor, channels: torch.Tensor, mode: str) -> torch.Tensor:
    """(B,) the value of each batch element's own channel: its map's mean, or its centre unit (a logit as is)."""
    chosen = values[torch.arange(len(values)), channels]
    if chosen.dim() == 1:
        return chosen
    if mode == "centre":
        return chosen[:, chosen.shape[1] // 2, chosen.shape[2] // 2]
    return chosen.flatten(1).mean(1)


def activation(model: nn.Module, card, target: Target, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """(N,) the target's activation (after its activation function) for uint8 images (N, C, H, W)."""
    read, out = channel_reader(model, target), []
    with evaluating(model), torch.no_grad():
        for part in images.split(batch):
            _, post = read(to_model(part.float() / 255, card))
            out.append(pick(post, torch.full((len(part),), target.index), target.mode))
    return torch.cat(out)
