"""Bring your own model: turn an uploaded file into a plain PyTorch module plus a model card.

Accepted: a zipped CNN Studio checkpoint (card.json + model.safetensors), a TorchScript file, and Keras 3
`.keras` / legacy `.h5` files (seed 001's `mnist_cnn_best.h5`). Nothing in a file is ever run as Python:
checkpoints are safetensors + JSON, TorchScript archives are read by TorchScript's own loader (which only
rebuilds tensors and TorchScript code, never Python objects), and Keras files load with `safe_mode=True`
(a Lambda layer's pickled function is refused) and are then converted layer by layer to torch modules, so
the hooks of `core.inside.explain` (feature maps, Grad-CAM, saliency) work on them as on our own models. Every
conversion is checked against the original's output before it is used. Python pickles (`torch.save` of a
whole model, `.pkl`) are refused with advice, never unpickled.
"""
from __future__ import annotations

import dataclasses
import io
import os
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from core.engine.checkpoint import CARD, WEIGHTS, CheckpointError, DatasetInfo, ModelCard, ModelSpec, load_checkpoint
from core.models.keras_import import ModelFileError, load_keras

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

def _load_keras(data: bytes, suffix: str, filename: str) -> tuple[nn.Module, ModelCard]:
    model, channels, size, num_classes, layers = load_keras(data, suffix)
    return model, _card(f"Keras {suffix}", filename, channels, size, num_classes, layers)


def describe(card: ModelCard) -> str:
    """One line about an uploaded model for the page."""
    ds, src = card.dataset, (card.upload or {})
    kw = card.model.kwargs
    return (f"{src.get('format', card.model.name)} from {src.get('file', '?')}: input "
            f"{kw['in_channels']}x{kw['image_size']}x{kw['image_size']}, {kw['num_classes']} classes, "
            f"normalisation {ds.normalisation or 'from its card'}")

