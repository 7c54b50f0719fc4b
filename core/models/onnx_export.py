"""Export a checkpoint to ONNX, checked: the file is run in ONNX Runtime on real inputs and compared with PyTorch.

    python -m core export checkpoints/mnist_fast_cnn --format onnx --out mnist.onnx

Classifiers (shipped, trained or uploaded) export their logits; the composer's pair CNN and CRNN their raw
outputs (digit logits and x-centres; per-column log-probabilities' logits). The graph takes the normalised
image (pixels / 255, minus the card's mean, over its std) of shape (batch, channels, height, width); what a
reader needs to feed it and read its answer travels in the file's metadata under `cnn_studio` (JSON): the task,
input size, mean and std, class names, the data set and the card's headline metric. CNN Studio's own ONNX upload
reads that metadata back (`metadata_card`), so an exported model returns to the app as it left.

After writing, the export is run in ONNX Runtime on test images (the data set's, composed from test digits for
the composer models, the shipped sample sets offline, seeded noise for an uploaded model's unknown data) and
the outputs compared with PyTorch's: a difference above 1e-4 deletes the file and fails the command.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from core.engine.checkpoint import ModelCard, load_checkpoint
from core.engine.tasks import normalize
from core.errors import ProjectError

TOLERANCE = 1e-4  # the largest difference between ONNX Runtime's and PyTorch's outputs an export may show
TASKS = ("classification", "multi_digit", "digit_string")
METADATA = "cnn_studio"
PARITY_N = 64  # test inputs the check runs


class ExportError(ProjectError):
    """An export that cannot be written or that does not match its checkpoint."""


def input_size(card: ModelCard) -> tuple[int, int, int]:
    """(channels, height, width) of one input image."""
    ds = card.dataset
    generator = card.section("generator") if card.task != "classification" else None
    return ds.channels, ds.image_size, generator["width"] if generator else ds.image_size


def metadata(card: ModelCard) -> dict:
    """What a reader of the file needs besides the graph: how to feed it and how to read its answer."""
    ds, (channels, height, width) = card.dataset, input_size(card)
    head = card.headline
    return {"format": "cnn-studio-onnx/1", "task": card.task, "model": card.model.name, "dataset": ds.name,
            "channels": channels, "height": height, "width": width, "mean": list(ds.mean), "std": list(ds.std),
            "class_names": list(ds.class_names),
            "input": "pixels / 255, minus mean, over std (per channel); shape (batch, channels, height, width)",
            "headline": {"name": head.name, "value": head.value, "label": head.label} if head else None}


def onnx_bytes(model: torch.nn.Module, card: ModelCard) -> bytes:
    """The model as ONNX (opset 17, a batch dimension of any size) with the card's metadata."""
    import onnx

    channels, height, width = input_size(card)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter announces its successor on every call
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.zeros(1, channels, height, width), buffer, input_names=["image"],
                          output_names=["output"], dynamic_axes={"image": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=17, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA, json.dumps(metadata(card))
    proto.producer_name = "CNN Studio"
    return proto.SerializeToString()


def parity_inputs(card: ModelCard, data_dir: str | None = None) -> tuple[torch.Tensor, str]:
    """(uint8 images (N, C, H, W), where they come from) for checking an export: real test images when there are."""
    from core.data.base import is_registered
    from core.data.samples import load_or_sample

    base = "mnist" if card.task != "classification" else card.dataset.name.split("@")[0]
    digits = None
    if is_registered(base):
        try:
            data = load_or_sample(base, data_dir)  # never downloads: the whole test set here, else the sample
            digits, labels = data.test_x[:2000], data.test_y[:2000]
            where = f"{base} test images" if len(data.test_y) > 2000 else f"{base} sample test images"
        except (OSError, ValueError, ProjectError):
            digits = None
    if digits is None:
        channels, height, width = input_size(card)
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 256, size=(PARITY_N, channels, height, width), dtype=np.uint8)
        return torch.from_numpy(noise), "seeded random images (the model's data set is not on this machine)"
    if card.task == "multi_digit":
        from core.data.multimnist import compose_pairs

        return compose_pairs(digits, labels, PARITY_N, seed=1, **card.section("generator")).images, \
            f"pairs composed from {where}"
    if card.task == "digit_string":
        from core.data.multimnist import compose_strings

        return compose_strings(digits, labels, PARITY_N, seed=1, **card.section("generator")).images, \
            f"strings composed from {where}"
    return digits[:PARITY_N], where


def check_parity(data: bytes, model: torch.nn.Module, card: ModelCard, images: torch.Tensor) -> float:
    """The largest absolute difference between ONNX Runtime's and PyTorch's outputs on `images` (uint8)."""
    import onnxruntime as ort

    x = normalize(images, card.dataset.mean, card.dataset.std).float()
    with torch.inference_mode():
        expected = model.eval()(x).float().numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})[0]
    if got.shape != expected.shape:
        raise ExportError(f"ONNX Runtime's output has shape {got.shape}, PyTorch's {expected.shape}.")
    return float(np.abs(got - expected).max())


def export_model(model: torch.nn.Module, card: ModelCard, data_dir: str | None = None,
                 where: str = "the model") -> tuple[bytes, dict]:
    """(ONNX bytes, {bytes, max_abs_diff, checked_on}) of a model and its card, run in ONNX Runtime against
    PyTorch; ExportError if it cannot be exported or does not match."""
    if card.task not in TASKS:
        raise ExportError(f"{where}: a {card.task} model; ONNX export is for classifiers, the pair CNN and the CRNN.")
    try:
        data = onnx_bytes(model, card)
    except Exception as exc:  # noqa: BLE001 (the exporter raises many types; the user gets one message)
        raise ExportError(f"{where}: the model could not be exported to ONNX: {str(exc)[:300]}") from None
    images, source = parity_inputs(card, data_dir)
    diff = check_parity(data, model, card, images)
    if not diff <= TOLERANCE:
        raise ExportError(f"{where}: the ONNX export differs from the PyTorch model by up to {diff:.3g} on {source} "
                          f"(at most {TOLERANCE:g} is allowed).")
    return data, {"bytes": len(data), "max_abs_diff": diff, "checked_on": f"{len(images)} {source}"}


def export_checkpoint(folder: str, out: str, data_dir: str | None = None) -> dict:
    """Write `folder`'s model as ONNX to `out` once it matches PyTorch; {file, bytes, max_abs_diff, checked_on}.
    ExportError, and no file, when it does not."""
    model, card = load_checkpoint(folder)
    data, report = export_model(model, card, data_dir, where=str(folder))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"file": str(path), **report}


def metadata_of(proto) -> dict | None:
    """The `cnn_studio` metadata of a parsed ONNX model, or None when it has none (or it is not valid JSON)."""
    for entry in proto.metadata_props:
        if entry.key == METADATA:
            try:
                value = json.loads(entry.value[:1_000_000])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None
