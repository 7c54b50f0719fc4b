"""Bring your own model: turn an uploaded file into a plain PyTorch module plus a model card.

Accepted, all as data: a zipped CNN Studio checkpoint (card.json + model.safetensors), an ONNX model (its
graph checked against an allow-list of operators and rebuilt from PyTorch layers, `core.models.onnx_import`),
and Keras 3 `.keras` / legacy `.h5` files (seed 001's `mnist_cnn_best.h5`), read with `safe_mode=True` and
converted layer by layer (`core.models.keras_import`). Every conversion is checked against the original's
output before it is used, and a model whose weights or outputs are not finite is refused.

Refused, with advice: TorchScript files and Python pickles (`torch.save` of a model, `.pkl`). Both are
programs: TorchScript carries code that runs when the model is called (it can read and write files), a
pickle runs code when it is loaded. Zips are opened by the guarded reader (`core.data.archive`): sizes and
member counts checked before anything is unpacked, encrypted or unreadable members refused by name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
from torch import nn

from core import paths
from core.data.archive import ArchiveError, open_zip
from core.data.base import is_registered
from core.engine.checkpoint import (CARD, WEIGHTS, CheckpointError, DatasetInfo, ModelCard, ModelSpec, check_finite,
                                    load_checkpoint)
from core.engine.predict import predict_proba
from core.models.keras_import import ModelFileError, load_keras
from core.models.registry import UPLOAD_BUDGET
from core.upload_card import with_metadata, with_normalisation

MAX_BYTES = 300 * 2**20
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FORMATS = "a zipped CNN Studio checkpoint, an ONNX model (.onnx) or a Keras model (.keras or .h5)"
PROGRAM_ADVICE = (" Export the model to ONNX instead (torch.onnx.export(model, example, 'model.onnx')), or train "
                  "it in CNN Studio and upload the zipped checkpoint folder.")


def load_model_file(data: bytes, filename: str) -> tuple[nn.Module, ModelCard]:
    """(eval-mode model, model card) for an uploaded file's bytes; raises ModelFileError with advice."""
    if not data:
        raise ModelFileError("the file is empty.")
    if len(data) > MAX_BYTES:
        raise ModelFileError(f"the file is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
    suffix = Path(filename).suffix.lower()
    if data.startswith(HDF5_MAGIC):
        return _checked(*_load_keras(data, ".h5", filename))
    if data[:1] == b"\x80" or suffix in (".pkl", ".pickle"):
        raise ModelFileError("this is a Python pickle. Loading a pickle can run any code, so uploads are never "
                             "unpickled." + PROGRAM_ADVICE)
    if not data.startswith(b"PK"):
        if suffix == ".onnx" or data[:1] == b"\x08":  # an ONNX ModelProto starts with its ir_version field
            from core.models.onnx_import import load_onnx

            model, channels, size, classes, layers, meta = load_onnx(data)
            card = _card("ONNX", filename, channels, size, classes, layers)
            return _checked(model, with_metadata(card, meta) if meta else card)
        if suffix in (".h5", ".hdf5", ".keras", ".pt", ".pth", ".zip"):
            raise ModelFileError(f"the file ends in {suffix} but its content is not that format: it is truncated, "
                                 "corrupt, or not a model.")
        raise ModelFileError(f"not a model file this page knows. Upload {FORMATS}.")
    try:
        with open_zip(data, filename, max_total=4 * MAX_BYTES, max_members=10_000) as archive:
            names = archive.names
            if "config.json" in names and "model.weights.h5" in names:
                _check_keras_input(archive.read("config.json"))
                return _checked(*_load_keras(data, ".keras", filename))
            cards = [n for n in names if n == CARD or n.endswith("/" + CARD)]
            if cards:
                return _checked(*_load_checkpoint_zip(archive, cards[0], hashlib.sha256(data).hexdigest()[:16]))
            if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                if any("/code/" in n for n in names) or any(n.endswith("/constants.pkl") for n in names):
                    raise ModelFileError("this is a TorchScript file. TorchScript is a program: calling the model runs "
                                         "its code, which can read and write files on the server, so it is refused."
                                         + PROGRAM_ADVICE)
                raise ModelFileError("this is a torch.save() file: it stores pickled Python objects, which could run "
                                     "code, and for a state_dict no architecture." + PROGRAM_ADVICE)
    except ArchiveError as exc:
        raise ModelFileError(str(exc)) from None
    raise ModelFileError(f"a zip archive, but not a model CNN Studio reads. Upload {FORMATS}.")


def _checked(model: nn.Module, card: ModelCard) -> tuple[nn.Module, ModelCard]:
    """Refuse a model whose weights, or whose class probabilities for black, grey and white images fed the way the
    pages feed it (its card's normalisation), are not finite numbers."""
    try:
        check_finite(model, card.upload.get("file", "the model") if card.upload else "the model")
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    channels, size = card.dataset.channels, card.dataset.image_size
    for level in (0, 128, 255):
        probs = predict_proba(model, card, np.full((channels, size, size), level, np.uint8))
        if not np.isfinite(probs).all():
            raise ModelFileError(f"the model's class probabilities for a plain image (all pixels {level}) are not "
                                 "finite numbers (NaN or infinity), with its input normalisation; every prediction it "
                                 "made would be meaningless.")
    return model, card


KERAS_MAX_SIDE = 1024


MAX_KERAS_DEPTH = 64  # nesting of a Keras config (a real model's is under 15)


def _check_keras_input(config: bytes) -> None:
    """Refuse a Keras model whose config is nested too deep, declares an input too large to build, or would
    allocate more weights than CNN Studio loads, before Keras builds anything."""
    try:
        text = json.loads(config)
    except RecursionError:
        raise ModelFileError(f"the model's config is nested too deeply (over {MAX_KERAS_DEPTH} levels) to be a "
                             "Keras model.") from None
    except ValueError:
        raise ModelFileError("the .keras file's config.json is not valid JSON: the file is damaged.") from None
    shapes, layers, stack = [], [], [(text, 1)]
    while stack:  # iterative, and bounded: a hostile config must not exhaust the interpreter's recursion
        node, depth = stack.pop()
        if depth > MAX_KERAS_DEPTH:
            raise ModelFileError(f"the model's config is nested more than {MAX_KERAS_DEPTH} levels deep; not a "
                                 "Keras model CNN Studio reads.")
        if isinstance(node, dict):
            shapes += [node[k] for k in ("batch_shape", "batch_input_shape") if isinstance(node.get(k), list)]
            if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
                layers.append((node["class_name"], node["config"]))
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node[:10_000]]
    for shape in shapes:
        sides = [d for d in shape[1:3] if isinstance(d, int)]
        if any(d > KERAS_MAX_SIDE for d in sides):
            raise ModelFileError(f"the model's input is {shape}; images up to {KERAS_MAX_SIDE} pixels a side are "
                                 "supported (a larger input would not fit in memory).")
    size = 4 * _keras_parameters(shapes[0] if shapes else [], layers[::-1])
    if size > UPLOAD_BUDGET:
        raise ModelFileError(f"the model's layers would hold about {size / 2**30:,.1f} GB of weights; models up to "
                             f"{UPLOAD_BUDGET / 2**30:g} GB are loaded.")


def _keras_parameters(shape: list, layers: list[tuple[str, dict]]) -> int:
    """An upper estimate of a Keras config's weights, following the image's shape through its layers in order."""
    def number(value, default=1) -> int:
        value = value[0] if isinstance(value, (list, tuple)) and value else value
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default
    h, w, c = (number(d) for d in (list(shape[1:4]) + [1, 1, 1])[:3])
    features, total = h * w * c, 0
    for kind, cfg in layers:
        if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            k, filters, stride = number(cfg.get("kernel_size"), 3), number(cfg.get("filters"), c), number(cfg.get("strides"))
            total += k * k * c * filters + filters
            h, w, c = max(h // stride, 1), max(w // stride, 1), filters
            features = h * w * c
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            pool = number(cfg.get("strides") or cfg.get("pool_size"), 2)
            h, w = max(h // pool, 1), max(w // pool, 1)
            features = h * w * c
        elif kind.startswith("Global"):
            features = c
        elif kind == "Dense":
            units = number(cfg.get("units"))
            total += features * units + units
            features = c = units
    return total


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


# --- CNN Studio checkpoint zip ----------------------------------------------------------------------------

def _load_checkpoint_zip(archive, card_name: str, digest: str) -> tuple[nn.Module, ModelCard]:
    """Unpack only the checkpoint's own files (card, weights, snapshots: fixed names, so no path can escape)
    into the app's upload cache, keyed by the zip's content hash, and load it. Whatever fails, nothing
    half-unpacked stays behind."""
    prefix = card_name[: -len(CARD)]
    wanted = [n for n in archive.names if n.startswith(prefix) and (
        n[len(prefix):] in (CARD, WEIGHTS) or (n[len(prefix):].startswith("snapshots/") and n.endswith(".safetensors")
                                               and len(PurePosixPath(n[len(prefix):]).parts) == 2))]
    folder = paths.cache_dir("uploaded_models") / digest
    if not (folder / CARD).is_file():
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        try:
            for name in wanted:
                target = partial / name[len(prefix):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
            shutil.rmtree(folder, ignore_errors=True)
            partial.replace(folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    try:
        model, card = load_checkpoint(folder)
    except CheckpointError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ModelFileError(str(exc).replace(str(folder) + os.sep, "")) from None
    if card.task != "classification":
        raise ModelFileError(f"a {card.task.replace('_', ' ')} checkpoint; the pages that take uploads read classifiers "
                             "(the other kinds' pages open the checkpoints in checkpoints/ and runs/).")
    return model.eval(), as_upload(card, {"file": "checkpoint zip", "format": "CNN Studio checkpoint",
                                          "folder": str(folder)})


def as_upload(card: ModelCard, upload: dict) -> ModelCard:
    """An uploaded checkpoint's card with everything in it treated as data about the upload: a data set named by
    anything but a registered name (a `folder:` path of this server, say) is dropped with a note, so no page
    reads a file because an upload said so; where its files came from is not shown."""
    ds, notes = card.dataset, []
    if not is_registered(ds.name):
        notes.append(f"its card names the data set {ds.name[:60]!r}, which is not one CNN Studio knows by name; it is "
                     "treated as an uploaded model's own data (no test images are read)")
        ds = dataclasses.replace(ds, name="uploaded")
    ds = dataclasses.replace(ds, source="", sources=[n for n in ds.sources if is_registered(n)])
    return dataclasses.replace(card, dataset=ds, upload={**upload, **({"notes": notes} if notes else {})})


# --- Keras ------------------------------------------------------------------------------------------------

def _load_keras(data: bytes, suffix: str, filename: str) -> tuple[nn.Module, ModelCard]:
    if suffix == ".h5":  # the architecture is a JSON attribute: check its input size before Keras builds it
        import io

        import h5py

        try:
            with h5py.File(io.BytesIO(data), "r") as h5:
                config = h5.attrs.get("model_config")
        except Exception:  # noqa: BLE001 - an unreadable HDF5 file is reported by Keras's own loader below
            config = None
        if config is not None:
            _check_keras_input(config.encode() if isinstance(config, str) else bytes(config))
    model, channels, size, num_classes, layers = load_keras(data, suffix)
    return model, _card(f"Keras {suffix}", filename, channels, size, num_classes, layers)
