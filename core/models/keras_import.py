"""Keras 3 models as PyTorch layers: a `.keras` / `.h5` file read in safe mode and converted layer by layer.

Owns the conversion (Conv2D, Dense, pooling, BatchNorm, Dropout, Flatten in Keras's channel order,
Rescaling, activations) and its check against Keras's own output. Keras is imported on its torch backend,
so no TensorFlow is needed to read a file; a Lambda layer's pickled function is refused by safe mode.
Used by uploads (`core.byo`) and by checkpoints of Keras runs (`core.engine.checkpoint`); builds no model card.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import ProjectError


class ModelFileError(ProjectError, ValueError):
    """The upload is not a model we can load safely; the message says why and what to do."""


class KerasFlatten(nn.Module):
    """Keras flattens channels-last tensors: (B, C, H, W) -> (B, H*W*C) in H, W, C order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1) if x.dim() == 4 else x.flatten(1)


class Rescale(nn.Module):
    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x):
        return x * self.scale + self.offset


class SigmoidAsTwoLogits(nn.Module):
    """A 1-unit sigmoid output as logits [0, z]: softmax of them is [1 - sigmoid(z), sigmoid(z)]."""

    def forward(self, z):
        return torch.cat([torch.zeros_like(z), z], dim=1)


_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU, "selu": nn.SELU,
                "gelu": nn.GELU, "swish": nn.SiLU, "silu": nn.SiLU, "softplus": nn.Softplus, "relu6": nn.ReLU6,
                "leaky_relu": nn.LeakyReLU, "hard_sigmoid": nn.Hardsigmoid, "hard_swish": nn.Hardswish}


def load_keras(data: bytes, suffix: str) -> tuple[nn.Module, int, int, int, list[str]]:
    """A Keras 3 file's bytes (read in safe mode) -> (PyTorch nn.Sequential in eval mode, input channels, input
    side, outputs, layer names), checked against Keras's own output; ModelFileError with advice otherwise."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 needs no TensorFlow to read the file
    try:
        import keras
    except ImportError:
        raise ModelFileError("reading Keras files needs the `keras` and `h5py` packages "
                             "(pip install -e . in the project folder).") from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model{suffix}"
        path.write_bytes(data)
        try:
            kmodel = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as exc:  # noqa: BLE001 - any loader failure explains itself below
            raise ModelFileError(_keras_error(exc)) from None
    shape = tuple(kmodel.input_shape) if not isinstance(kmodel.input_shape, list) else None
    if shape is None or len(shape) != 4 or None in shape[1:]:
        raise ModelFileError(f"the model's input is {kmodel.input_shape}; this page takes one image input of a "
                             "fixed size (batch, height, width, channels).")
    _, height, width, channels = shape
    if height != width:
        raise ModelFileError(f"the model takes {height}x{width} images; only square inputs are supported.")
    modules = _convert_layers(kmodel, (channels, height, width))
    model = nn.Sequential()
    for name, module in modules:
        model.add_module(name, module)
    model.eval()
    _check_same(kmodel, model, channels, height)
    with torch.no_grad():
        num_classes = model(torch.zeros(1, channels, height, width)).shape[1]
    return model, channels, height, int(num_classes), [f"{n}: {type(m).__name__}" for n, m in modules]


def _keras_error(exc: Exception) -> str:
    text = str(exc)
    if "safe_mode" in text or "Lambda" in text:
        return ("the model contains a Lambda layer, i.e. Python code stored in the file. Loading it would run that "
                "code, so it is refused. Replace the Lambda with built-in layers and save again.")
    if "Unknown layer" in text or "Could not locate" in text or "custom_objects" in text:
        return (f"the model uses custom classes this page does not have ({text.splitlines()[0][:160]}). Only "
                "models built from Keras's own layers can be uploaded.")
    if "No model config" in text or "model_config" in text:
        return "this .h5 file holds only weights (save_weights), no architecture. Save with model.save('m.h5')."
    return f"not a readable Keras model ({text.splitlines()[0][:200] if text else type(exc).__name__}): is it truncated?"


def _same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2  # TensorFlow puts the odd pixel after


def _conv2d(layer, cfg, w, shape, name, last) -> list:
    k, s, d = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    conv = nn.Conv2d(shape[0], cfg["filters"], tuple(k), tuple(s), dilation=tuple(d), groups=cfg.get("groups", 1),
                     bias=cfg["use_bias"])
    conv.weight.data = torch.from_numpy(np.ascontiguousarray(w[0].transpose(3, 2, 0, 1)))
    if cfg["use_bias"]:
        conv.bias.data = torch.from_numpy(w[1])
    mods = []
    if cfg["padding"] == "same":
        (t, b), (lft, r) = (_same_pad(shape[1], k[0], s[0], d[0]), _same_pad(shape[2], k[1], s[1], d[1]))
        if (t, lft) == (b, r):
            conv.padding = (t, lft)
        else:
            mods.append((name + "_pad", nn.ZeroPad2d((lft, r, t, b))))
    return mods + [(name, conv)] + _activation(name, cfg.get("activation"), last)


def _dense(layer, cfg, w, shape, name, last) -> list:
    if len(shape) != 1:
        raise ModelFileError(f"layer {layer.name}: Dense on a {len(shape) + 1}-d tensor is not supported; "
                             "Flatten first.")
    lin = nn.Linear(shape[0], cfg["units"], bias=cfg["use_bias"])
    lin.weight.data = torch.from_numpy(np.ascontiguousarray(w[0].T))
    if cfg["use_bias"]:
        lin.bias.data = torch.from_numpy(w[1])
    return [(name, lin)] + _activation(name, cfg.get("activation"), last, units=cfg["units"])


def _activation_layer(layer, cfg, w, shape, name, last) -> list:
    kind = type(layer).__name__
    act = cfg.get("activation", kind.lower())
    if kind == "ReLU" and (cfg.get("max_value") or cfg.get("negative_slope") or cfg.get("threshold")):
        raise ModelFileError(f"layer {layer.name}: ReLU with max_value/negative_slope is not supported.")
    return _activation(name, "leaky_relu" if kind == "LeakyReLU" else act, last, layer_name=name,
                       slope=cfg.get("negative_slope", cfg.get("alpha")))


def _batch_norm(layer, cfg, w, shape, name, last) -> list:
    axis = cfg["axis"][0] if isinstance(cfg["axis"], (list, tuple)) else cfg["axis"]
    if axis not in (-1, len(shape)):
        raise ModelFileError(f"layer {layer.name}: BatchNormalization over axis {axis} is not supported.")
    bn = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=cfg["epsilon"])
    values = list(w)
    bn.weight.data = torch.from_numpy(values.pop(0)) if cfg["scale"] else torch.ones(shape[0])
    bn.bias.data = torch.from_numpy(values.pop(0)) if cfg["center"] else torch.zeros(shape[0])
    bn.running_mean.data, bn.running_var.data = torch.from_numpy(values[0]), torch.from_numpy(values[1])
    return [(name, bn)]


def _pooling(layer, cfg, w, shape, name, last) -> list:
    k = tuple(cfg["pool_size"])
    s = tuple(cfg["strides"] or k)
    if cfg["padding"] == "same" and k != s:
        raise ModelFileError(f"layer {layer.name}: 'same' pooling with strides != pool size is not supported.")
    cls = nn.MaxPool2d if type(layer).__name__ == "MaxPooling2D" else nn.AvgPool2d
    return [(name, cls(k, s, ceil_mode=cfg["padding"] == "same"))]


def _global_pooling(layer, cfg, w, shape, name, last) -> list:
    if cfg.get("keepdims"):
        raise ModelFileError(f"layer {layer.name}: keepdims=True is not supported.")
    pool = nn.AdaptiveAvgPool2d(1) if type(layer).__name__.startswith("GlobalAverage") else nn.AdaptiveMaxPool2d(1)
    return [(name, nn.Sequential(pool, nn.Flatten()))]


def _zero_padding(layer, cfg, w, shape, name, last) -> list:
    (t, b), (lft, r) = cfg["padding"]
    return [(name, nn.ZeroPad2d((lft, r, t, b)))]


_CONVERTERS = {
    "Conv2D": _conv2d, "Dense": _dense, "BatchNormalization": _batch_norm, "ZeroPadding2D": _zero_padding,
    **dict.fromkeys(("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU"), _activation_layer),
    **dict.fromkeys(("MaxPooling2D", "AveragePooling2D"), _pooling),
    **dict.fromkeys(("GlobalAveragePooling2D", "GlobalMaxPooling2D"), _global_pooling),
    "Flatten": lambda layer, cfg, w, shape, name, last: [(name, KerasFlatten())],
    "Rescaling": lambda layer, cfg, w, shape, name, last: [(name, Rescale(cfg["scale"], cfg["offset"]))],
    **dict.fromkeys(("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"),
                    lambda layer, cfg, w, shape, name, last: [(name, nn.Dropout(0.0))]),  # inactive at inference
}


def _convert_layers(kmodel, in_shape: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    """The Keras model's layers as named torch modules, in order; `in_shape` is (C, H, W) or (F,), channels first."""
    out: list[tuple[str, nn.Module]] = []
    shape = in_shape
    layers = [layer for layer in kmodel.layers if type(layer).__name__ != "InputLayer"]
    for i, layer in enumerate(layers):
        kind, cfg = type(layer).__name__, layer.get_config()
        name = layer.name.replace(".", "_")
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ModelFileError(f"layer {layer.name} uses {cfg['data_format']}; only channels_last is supported.")
        if kind in ("Sequential", "Functional") and hasattr(layer, "layers"):
            mods = [(f"{name}_{n}", m) for n, m in _convert_layers(layer, shape)]
        elif kind in _CONVERTERS:
            mods = _CONVERTERS[kind](layer, cfg, layer.get_weights(), shape, name, i == len(layers) - 1)
        else:
            raise ModelFileError(f"layer {layer.name} is a {kind}, which this page cannot convert. Supported: Conv2D, "
                                 "Dense, pooling, BatchNormalization, activations, Flatten, Dropout, Rescaling, "
                                 "ZeroPadding2D, in one chain.")
        for mod_name, mod in mods:
            out.append((mod_name, mod))
            with torch.no_grad():
                shape = tuple(mod.eval()(torch.zeros(1, *shape)).shape[1:])
    return out


def _activation(name: str, act, last: bool, units: int = 0, layer_name: str | None = None,
                slope=None) -> list[tuple[str, nn.Module]]:
    if isinstance(act, dict):  # a serialised activation object
        act = act.get("config", {}).get("name", act.get("class_name", "linear"))
    mod_name = layer_name or f"{name}_{act}"
    if act in (None, "linear"):
        return []
    if act == "softmax":  # the pages apply softmax to logits themselves; a final softmax is dropped
        return [] if last else [(mod_name, nn.Softmax(dim=1))]
    if act == "sigmoid" and last and units == 1:
        return [(mod_name, SigmoidAsTwoLogits())]
    if act not in _ACTIVATIONS:
        raise ModelFileError(f"activation {act!r} of layer {name} is not supported.")
    if act == "leaky_relu":
        return [(mod_name, nn.LeakyReLU(0.2 if slope is None else float(slope)))]
    return [(mod_name, _ACTIVATIONS[act]())]


def _check_same(kmodel, model: nn.Module, channels: int, size: int) -> None:
    """The converted model must give the Keras model's probabilities on random inputs, or it is not used."""
    x = np.random.default_rng(0).random((4, size, size, channels), dtype=np.float32)
    result = kmodel(x, training=False)
    want = result.detach().cpu().numpy() if hasattr(result, "detach") else np.asarray(result)
    with torch.no_grad():
        got = torch.softmax(model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()), dim=1).numpy()
    if want.shape[-1] != got.shape[-1]:  # a 1-unit sigmoid output: compare P(class 1)
        got = got[:, 1:]
    elif not np.allclose(want.sum(1), 1, atol=1e-3):  # the model ends in logits, not probabilities
        want = torch.softmax(torch.from_numpy(want), dim=1).numpy()
    if not np.allclose(want, got, atol=1e-4):
        raise ModelFileError("the converted model does not reproduce the Keras model's outputs (max difference "
                             f"{np.abs(want - got).max():.2g}); its layers are probably not one simple chain.")
