"""Look inside a network from the outside: activations, Grad-CAM, gradient saliency, occlusion.

Owns explainability for any `nn.Module` that maps a (B, C, H, W) image batch to outputs: layer outputs
through forward hooks attached from outside the model (removed before returning, so models carry no
explain branches), and the attribution maps, computed by Captum in `core.inside.attribution`. A `target` picks the scalar to explain from the model's
output; by default the logit of one class, and later multi-head models pass their own (e.g. one head's
regression output), which is how Grad-CAM works per head.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from core.models import evaluating

Target = Callable[[torch.Tensor], torch.Tensor]  # model output -> (B,) scalars to explain

_LEAF_TYPES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
               nn.Flatten, nn.Dropout, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU)


def class_target(index: int) -> Target:
    return lambda out: out[:, index]


def inspectable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named layers worth showing, in forward order: leaves plus residual blocks, minus containers; a model
    with a `layer_names` list (a pretrained network of hundreds of parts) shows those layers instead."""
    if isinstance(getattr(model, "layer_names", None), list):
        modules = dict(model.named_modules())
        return [(name, modules[name]) for name in model.layer_names]
    found = []
    for name, module in model.named_modules():
        if not name:
            continue
        is_leaf = not list(module.children())
        if is_leaf or type(module).__name__.endswith("Block"):
            found.append((name, module))
    return found


def is_conv(module: nn.Module) -> bool:
    """A 2-d convolution (uploaded models are rebuilt from torch layers, so this holds for them too)."""
    return isinstance(module, nn.Conv2d)


def conv_layer_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if is_conv(m)]


CONTAINERS = {"net", "features", "model", "body", "layers", "backbone", "module", "head", "encoder", "decoder"}


def layer_label(name: str, convs: list[str]) -> str:
    """A layer as a reader reads it: its place among the conv layers, then the words of its path if it has any
    besides containers and indices (EfficientNet's `net._blocks.15._project_conv` -> 'conv 47 of 49: block 15,
    project conv'; `features.9` -> 'conv 3 of 3'). Other layers keep their path."""
    if name not in convs:
        return name
    words: list[str] = []
    for part in (p.strip("_") for p in name.split(".")):
        if part.isdigit():
            if words and words[-1].endswith("blocks"):
                words[-1] = f"{words[-1][:-1]} {part}"  # "blocks", "15" -> "block 15"
        elif part not in CONTAINERS:
            words.append(part.replace("_", " "))
    return f"conv {convs.index(name) + 1} of {len(convs)}" + (": " + ", ".join(words) if words else "")


ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Hardswish, nn.Mish)
_PASS_THROUGH = (nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Dropout2d, nn.Identity)


def block_output(model: nn.Module, conv: str) -> str:
    """The module whose output is conv layer `conv`'s feature maps as the next layer reads them: the activation that
    follows it (past batch norm, pooling and dropout), else the conv itself. Grad-CAM weighs these maps by the mean
    gradient of each channel; it assumes they are rectified. Taken before their ReLU, the negative values of
    inactive units outweigh the rest, and the map is empty (seed 004's CNN: 168 of 200 test images at its last
    conv's own output, 0 of 200 after its ReLU)."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    names = [n for n, _ in leaves]
    if conv not in names:
        return conv
    for name, module in leaves[names.index(conv) + 1:]:
        if isinstance(module, ACTIVATIONS):
            return name
        if not isinstance(module, _PASS_THROUGH):
            break
    return conv


def cam_layers(model: nn.Module) -> list[str]:
    """The layers the CAM methods read: each conv layer's block output (see `block_output`), in forward order."""
    return [block_output(model, conv) for conv in conv_layer_names(model)]


def cam_label(name: str, model: nn.Module, convs: list[str]) -> str:
    """A CAM layer for a reader: its conv's place ('conv 2 of 2'), and after which activation, if any."""
    conv = next((c for c in convs if block_output(model, c) == name), name)
    module = dict(model.named_modules()).get(name)
    return layer_label(conv, convs) + (f" (after its {type(module).__name__})" if name != conv else "")


def default_cam_layer(model: nn.Module) -> str:
    """The layer Grad-CAM uses by default: the last conv layer's block output (after its activation)."""
    layers = cam_layers(model)
    if not layers:
        raise ValueError("Grad-CAM needs a convolutional layer; this model has none.")
    return layers[-1]


@contextmanager
def recording(model: nn.Module, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, `store[name]` holds each named layer's latest output; hooks removed on exit."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no layer named {missing[0]!r} in the model")
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        def hook(_module, _inputs, output, name=name):
            store[name] = output
        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def activations(model: nn.Module, x: torch.Tensor, names: list[str] | None = None) -> tuple[torch.Tensor, dict]:
    """(model output, {layer name: detached output}) for one forward pass in eval mode."""
    names = names or [n for n, _ in inspectable_layers(model)]
    with evaluating(model), torch.no_grad(), recording(model, names) as store:
        out = model(x)
        acts = {n: v.detach() for n, v in store.items() if isinstance(v, torch.Tensor)}
    return out, acts


def grad_cam(model: nn.Module, x: torch.Tensor, target: Target, layer: str | None = None,
             hires: bool = False) -> torch.Tensor:
    """Grad-CAM maps (B, H, W) in [0, 1] at the input's resolution, for `target` at `layer` (default: the
    last conv layer), computed by Captum; hires=True gives HiResCAM (see `core.inside.attribution`)."""
    from core.inside.attribution import hires_cam, layer_cam

    layer = layer or default_cam_layer(model)
    with evaluating(model):
        return (hires_cam if hires else layer_cam)(model, x.detach(), target, layer)


def saliency(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """|d target / d input|, max over channels, scaled to [0, 1]: (B, H, W), by Captum's Saliency."""
    from core.inside.attribution import attribute

    return attribute("Saliency", model, x, target)


def occlusion(model: nn.Module, x: torch.Tensor, target: Target, *, patch: int, stride: int,
              fill: float = 0.0, batch_size: int = 64) -> torch.Tensor:
    """How much `target` drops when a patch x patch square of `fill` covers each spot, per pixel (the mean
    over the squares that hide it), for one image: (H, W), by Captum's Occlusion. Positive: evidence."""
    from core.inside.attribution import occlusion_map

    with evaluating(model):
        return occlusion_map(model, x, target, patch, stride, fill, batch_size)


def layer_table(model: nn.Module, acts: dict[str, torch.Tensor]) -> list[dict]:
    """One row per recorded layer: name, type, output shape (batch dimension dropped), parameters."""
    modules = dict(model.named_modules())
    rows = []
    for name, a in acts.items():
        module = modules[name]
        rows.append({"layer": name, "type": type(module).__name__,
                     "output shape": " x ".join(map(str, a.shape[1:])),
                     "parameters": sum(p.numel() for p in module.parameters())})
    return rows


def canvas_box(obj: dict, scale: float, size: int) -> tuple[int, int, int, int]:
    """A fabric.js rectangle drawn on a canvas `scale` times the image -> pixel box (x0, y0, x1, y1), x1/y1
    exclusive, clipped to the image and at least one pixel wide."""
    x0 = int(np.clip(round(obj["left"] / scale), 0, size - 1))
    y0 = int(np.clip(round(obj["top"] / scale), 0, size - 1))
    x1 = int(np.clip(round((obj["left"] + obj["width"] * obj.get("scaleX", 1)) / scale), x0 + 1, size))
    y1 = int(np.clip(round((obj["top"] + obj["height"] * obj.get("scaleY", 1)) / scale), y0 + 1, size))
    return x0, y0, x1, y1


def occluder_rect(size: int, patch: int, scale: float, grey: list[int]) -> dict:
    """The fabric.js rectangle the occluder starts as: a `patch`-pixel square of the data set's mean `grey`
    (one value, or one per RGB channel) in the middle of a canvas `scale` times the image."""
    rgb = grey * 3 if len(grey) == 1 else grey
    corner = (size - patch) / 2 * scale
    return {"type": "rect", "left": corner, "top": corner, "width": patch * scale, "height": patch * scale,
            "fill": f"rgb({rgb[0]},{rgb[1]},{rgb[2]})", "stroke": "#e4572e", "strokeWidth": 2}


def hide_box(image: np.ndarray, box: tuple[int, int, int, int], grey: list[int]) -> np.ndarray:
    """A copy of a uint8 (C, H, W) image with the pixel box (x0, y0, x1, y1) painted the data set's mean grey."""
    x0, y0, x1, y1 = box
    hidden = image.copy()
    hidden[:, y0:y1, x0:x1] = np.array(grey, np.uint8).reshape(-1, 1, 1)
    return hidden
