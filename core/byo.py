"""Bring your own model: turn an uploaded file into a plain PyTorch module plus a model card.

Accepted: a zipped CNN Studio checkpoint (card.json + model.safetensors), a TorchScript file, and Keras 3
`.keras` / legacy `.h5` files (seed 001's `mnist_cnn_best.h5`). Nothing in a file is ever run as Python:
checkpoints are safetensors + JSON, TorchScript archives are read by TorchScript's own loader (which only
rebuilds tensors and TorchScript code, never Python objects), and Keras files load with `safe_mode=True`
(a Lambda layer's pickled function is refused) and are then converted layer by layer to torch modules, so
the hooks of `core.explain` (feature maps, Grad-CAM, saliency) work on them as on our own models. Every
conversion is checked against the original's output before it is used. Python pickles (`torch.save` of a
whole model, `.pkl`) are refused with advice, never unpickled.
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.checkpoint import CARD, WEIGHTS, CheckpointError, DatasetInfo, ModelCard, ModelSpec, load_checkpoint

MAX_BYTES = 300 * 2**20
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NORMALISATIONS = {  # name -> (mean, std) on the [0, 1] scale, per channel when a list of 3
    "[0, 1] (pixels / 255)": (0.0, 1.0),
    "[-1, 1]": (0.5, 0.5),
    "0-255 (raw pixels)": (0.0, 1 / 255),
    "MNIST mean/std": (0.1307, 0.3081),
    "ImageNet mean/std": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
PROBE_SHAPES = [(1, 28), (3, 32), (1, 32), (3, 28), (3, 64), (1, 64), (3, 96), (3, 224)]


class ModelFileError(ValueError):
    """The upload is not a model we can load safely; the message says why and what to do."""


def load_model_file(data: bytes, filename: str) -> tuple[nn.Module, ModelCard]:
    """(eval-mode model, model card) for an uploaded file's bytes; raises ModelFileError with advice."""
    if not data:
        raise ModelFileError("the file is empty.")
    if len(data) > MAX_BYTES:
        raise ModelFileError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
    suffix = Path(filename).suffix.lower()
    if data.startswith(HDF5_MAGIC):
        return _load_keras(data, ".h5", filename)
    if data[:1] == b"\x80" or suffix in (".pkl", ".pickle"):
        raise ModelFileError("this is a Python pickle. Pickles can run any code when loaded, so uploads are never "
                             "unpickled. Save the model as TorchScript (torch.jit.script(model).save('m.pt')), "
                             "Keras .keras/.h5, or a CNN Studio checkpoint.")
    if not data.startswith(b"PK"):
        if suffix in (".h5", ".hdf5", ".keras", ".pt", ".pth", ".zip"):
            raise ModelFileError(f"the file ends in {suffix} but its content is not that format: it is truncated, "
                                 "corrupt, or not a model.")
        raise ModelFileError("not a model file this page knows. Upload a zipped CNN Studio checkpoint, a TorchScript "
                             "file (.pt), or a Keras model (.keras or .h5).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        unpacked = sum(i.file_size for i in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"the archive cannot be read ({exc}): the file is truncated or corrupt.") from None
    if unpacked > 4 * MAX_BYTES:
        raise ModelFileError(f"the archive unpacks to {unpacked / 2**20:.0f} MB, which is more than any model here needs.")
    if "config.json" in names and "model.weights.h5" in names:
        return _load_keras(data, ".keras", filename)
    cards = [n for n in names if n == CARD or n.endswith("/" + CARD)]
    if cards:
        return _load_checkpoint_zip(archive, cards[0])
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if any("/code/" in n for n in names) or any(n.endswith("/constants.pkl") for n in names):
            return _load_torchscript(data, filename)
        raise ModelFileError("this is a torch.save() file: it stores pickled Python objects, which could run code, "
                             "and for a state_dict no architecture. Export the model with "
                             "torch.jit.script(model).save('model.pt') (or trace it) and upload that.")
    raise ModelFileError("a zip archive, but not a CNN Studio checkpoint (card.json + model.safetensors), a Keras "
                         ".keras file, or a TorchScript file.")


def _card(kind: str, filename: str, channels: int, size: int, num_classes: int, layers: list[str]) -> ModelCard:
    if (channels, size, num_classes) == (1, 28, 10):
        dataset, names = "mnist", [str(i) for i in range(10)]
    elif (channels, size, num_classes) == (3, 32, 10):
        dataset, names = "cifar10", list(CIFAR10)
    else:
        dataset, names = "uploaded", [f"class {i}" for i in range(num_classes)]
    card = ModelCard(
        task="classification",
        model=ModelSpec(name=kind, kwargs={"in_channels": channels, "image_size": size, "num_classes": num_classes}),
        dataset=DatasetInfo(name=dataset, class_names=names, channels=channels, image_size=size,
                            mean=[0.0] * channels, std=[1.0] * channels),
        upload={"file": filename, "format": kind, "layers": layers, "class_names_guessed": True})
    return with_normalisation(card, "[0, 1] (pixels / 255)")


def with_normalisation(card: ModelCard, name: str) -> ModelCard:
    """A copy of an uploaded model's card whose input normalisation is NORMALISATIONS[name]."""
    mean, std = NORMALISATIONS[name]
    channels = card.dataset.channels
    as_list = lambda v: list(v) if isinstance(v, list) else [v] * channels  # noqa: E731
    if len(as_list(mean)) != channels:
        raise ValueError(f"{name} needs 3 input channels; the model has {channels}.")
    dataset = dataclasses.replace(card.dataset, mean=as_list(mean), std=as_list(std), normalisation=name)
    return dataclasses.replace(card, dataset=dataset)


def with_class_names(card: ModelCard, names: list[str]) -> ModelCard:
    """A copy of the card with the user's class names (one per model output)."""
    if len(names) != len(card.dataset.class_names):
        raise ValueError(f"the model has {len(card.dataset.class_names)} outputs; {len(names)} names given.")
    return dataclasses.replace(card, dataset=dataclasses.replace(card.dataset, class_names=list(names)),
                               upload={**(card.upload or {}), "class_names_guessed": False})


# --- CNN Studio checkpoint zip ----------------------------------------------------------------------------

def _load_checkpoint_zip(archive: zipfile.ZipFile, card_name: str) -> tuple[nn.Module, ModelCard]:
    prefix = card_name[: -len(CARD)]
    folder = Path(tempfile.mkdtemp(prefix="cnn_studio_upload_"))
    for name in archive.namelist():
        rel = name[len(prefix):] if name.startswith(prefix) else None
        if rel in (CARD, WEIGHTS) or (rel and rel.startswith("snapshots/") and rel.endswith(".safetensors")
                                      and "/" not in rel[len("snapshots/"):]):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(archive.read(name))  # only these fixed names: no path traversal
    try:
        model, card = load_checkpoint(folder)
    except CheckpointError as exc:
        raise ModelFileError(str(exc).replace(str(folder) + os.sep, "")) from None
    card = dataclasses.replace(card, upload={"file": "checkpoint zip", "format": "CNN Studio checkpoint",
                                             "folder": str(folder)})
    return model.eval(), card


# --- TorchScript ------------------------------------------------------------------------------------------

class ScriptStage(nn.Module):
    """One child of a TorchScript module, as a plain module that forward hooks can attach to.

    The scripted child is held outside the module tree (scripted modules refuse hooks), and `kind` names
    its original class, so a scripted Conv2d still counts as a conv layer for filters and Grad-CAM.
    """

    def __init__(self, inner: torch.jit.ScriptModule, kind: str):
        super().__init__()
        object.__setattr__(self, "inner", inner)
        self.kind = kind

    def forward(self, x):
        return self.inner(x)

    @property
    def weight(self):
        return self.inner.weight

    def extra_repr(self) -> str:
        return f"scripted {self.kind}"


def _expand(module, prefix: str = "") -> list[tuple[str, ScriptStage]]:
    stages = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        kind = getattr(child, "original_name", type(child).__name__)
        if kind == "Sequential":
            stages.extend(_expand(child, full + "."))
        else:
            stages.append((full, ScriptStage(child, kind)))
    return stages


class StagedModel(nn.Module):
    """A chain of ScriptStages; names are the TorchScript module paths with '.' shown as '/'."""

    def __init__(self, stages: list[tuple[str, nn.Module]]):
        super().__init__()
        for name, stage in stages:
            self.add_module(name.replace(".", "/"), stage)

    def forward(self, x):
        for stage in self.children():
            x = stage(x)
        return x


def _load_torchscript(data: bytes, filename: str) -> tuple[nn.Module, ModelCard]:
    try:
        scripted = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad file
        raise ModelFileError(f"not a loadable TorchScript file ({str(exc).splitlines()[0][:200]}).") from None
    shape, out = None, None
    for channels, size in PROBE_SHAPES:
        try:
            with torch.no_grad():
                out = scripted(torch.rand(2, channels, size, size))
        except Exception:  # noqa: BLE001 - wrong shape: try the next
            continue
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == 2:
            shape = (channels, size)
            break
    if shape is None:
        raise ModelFileError("the TorchScript model did not accept any image shape tried "
                             f"({', '.join(f'{c}x{s}x{s}' for c, s in PROBE_SHAPES)}) or did not return "
                             "one row of class scores per image.")
    channels, size = shape
    probe = torch.rand(3, channels, size, size)
    with torch.no_grad():
        want = scripted(probe)
        whole = StagedModel([("model", ScriptStage(scripted, getattr(scripted, "original_name", "model")))])
        model = whole  # one opaque stage (prediction, saliency), unless a chain of its children reproduces it
        for stages in (_expand(scripted), [(n, ScriptStage(c, getattr(c, "original_name", "?")))
                                           for n, c in scripted.named_children()]):
            if not stages:
                continue
            candidate = StagedModel(stages).eval()
            try:
                if torch.allclose(candidate(probe), want, atol=1e-5, rtol=1e-4):
                    model = candidate
                    break
            except Exception:  # noqa: BLE001 - children do not chain: try coarser
                continue
    layers = [f"{n}: {m.kind}" for n, m in model.named_children()] if model is not whole else []
    card = _card("TorchScript", filename, channels, size, int(want.shape[1]), layers)
    card.upload["layers_visible"] = model is not whole
    return model, card


# --- Keras ------------------------------------------------------------------------------------------------

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


def _load_keras(data: bytes, suffix: str, filename: str) -> tuple[nn.Module, ModelCard]:
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 needs no TensorFlow to read the file
    try:
        import keras
    except ImportError:
        raise ModelFileError("reading Keras files needs the `keras` and `h5py` packages "
                             "(pip install -r requirements.txt).") from None
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
    layers = [f"{n}: {type(m).__name__}" for n, m in modules]
    return model, _card(f"Keras {suffix}", filename, channels, height, int(num_classes), layers)


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


def _convert_layers(kmodel, in_shape: tuple[int, ...]) -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    shape = in_shape  # (C, H, W) or (F,), channels first, as the torch modules see it
    layers = [layer for layer in kmodel.layers if type(layer).__name__ != "InputLayer"]
    for i, layer in enumerate(layers):
        kind, cfg, w = type(layer).__name__, layer.get_config(), layer.get_weights()
        name = layer.name.replace(".", "_")
        last = i == len(layers) - 1
        mods: list[tuple[str, nn.Module]] = []
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ModelFileError(f"layer {layer.name} uses {cfg['data_format']}; only channels_last is supported.")
        if kind in ("Conv2D",):
            k, s, d = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
            conv = nn.Conv2d(shape[0], cfg["filters"], tuple(k), tuple(s), dilation=tuple(d), groups=cfg.get("groups", 1),
                             bias=cfg["use_bias"])
            conv.weight.data = torch.from_numpy(np.ascontiguousarray(w[0].transpose(3, 2, 0, 1)))
            if cfg["use_bias"]:
                conv.bias.data = torch.from_numpy(w[1])
            if cfg["padding"] == "same":
                (t, b), (lft, r) = (_same_pad(shape[1], k[0], s[0], d[0]), _same_pad(shape[2], k[1], s[1], d[1]))
                if (t, lft) == (b, r):
                    conv.padding = (t, lft)
                else:
                    mods.append((name + "_pad", nn.ZeroPad2d((lft, r, t, b))))
            mods.append((name, conv))
            mods += _activation(name, cfg.get("activation"), last)
        elif kind == "Dense":
            if len(shape) != 1:
                raise ModelFileError(f"layer {layer.name}: Dense on a {len(shape) + 1}-d tensor is not supported; "
                                     "Flatten first.")
            lin = nn.Linear(shape[0], cfg["units"], bias=cfg["use_bias"])
            lin.weight.data = torch.from_numpy(np.ascontiguousarray(w[0].T))
            if cfg["use_bias"]:
                lin.bias.data = torch.from_numpy(w[1])
            mods = [(name, lin)] + _activation(name, cfg.get("activation"), last, units=cfg["units"])
        elif kind in ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU"):
            act = cfg.get("activation", kind.lower())
            if kind == "ReLU" and (cfg.get("max_value") or cfg.get("negative_slope") or cfg.get("threshold")):
                raise ModelFileError(f"layer {layer.name}: ReLU with max_value/negative_slope is not supported.")
            mods = _activation(name, "leaky_relu" if kind == "LeakyReLU" else act, last, layer_name=name,
                               slope=cfg.get("negative_slope", cfg.get("alpha")))
        elif kind == "BatchNormalization":
            axis = cfg["axis"][0] if isinstance(cfg["axis"], (list, tuple)) else cfg["axis"]
            if axis not in (-1, len(shape)):
                raise ModelFileError(f"layer {layer.name}: BatchNormalization over axis {axis} is not supported.")
            bn = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=cfg["epsilon"])
            values = list(w)
            bn.weight.data = torch.from_numpy(values.pop(0)) if cfg["scale"] else torch.ones(shape[0])
            bn.bias.data = torch.from_numpy(values.pop(0)) if cfg["center"] else torch.zeros(shape[0])
            bn.running_mean.data, bn.running_var.data = torch.from_numpy(values[0]), torch.from_numpy(values[1])
            mods = [(name, bn)]
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            k = tuple(cfg["pool_size"])
            s = tuple(cfg["strides"] or k)
            if cfg["padding"] == "same" and k != s:
                raise ModelFileError(f"layer {layer.name}: 'same' pooling with strides != pool size is not supported.")
            cls = nn.MaxPool2d if kind == "MaxPooling2D" else nn.AvgPool2d
            mods = [(name, cls(k, s, ceil_mode=cfg["padding"] == "same"))]
        elif kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            if cfg.get("keepdims"):
                raise ModelFileError(f"layer {layer.name}: keepdims=True is not supported.")
            pool = nn.AdaptiveAvgPool2d(1) if kind.startswith("GlobalAverage") else nn.AdaptiveMaxPool2d(1)
            mods = [(name, nn.Sequential(pool, nn.Flatten()))]
        elif kind == "Flatten":
            mods = [(name, KerasFlatten())]
        elif kind in ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"):
            mods = [(name, nn.Dropout(0.0))]  # inactive at inference, kept so the layer list matches Keras
        elif kind == "Rescaling":
            mods = [(name, Rescale(cfg["scale"], cfg["offset"]))]
        elif kind == "ZeroPadding2D":
            (t, b), (lft, r) = cfg["padding"]
            mods = [(name, nn.ZeroPad2d((lft, r, t, b)))]
        elif kind in ("Sequential", "Functional") and hasattr(layer, "layers"):
            mods = [(f"{name}_{n}", m) for n, m in _convert_layers(layer, shape)]
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


def describe(card: ModelCard) -> str:
    """One line about an uploaded model for the page."""
    ds, src = card.dataset, (card.upload or {})
    kw = card.model.kwargs
    return (f"{src.get('format', card.model.name)} from {src.get('file', '?')}: input "
            f"{kw['in_channels']}x{kw['image_size']}x{kw['image_size']}, {kw['num_classes']} classes, "
            f"normalisation {ds.normalisation or 'from its card'}")

