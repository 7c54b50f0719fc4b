"""Checkpoints: weights as safetensors plus a JSON model card, saved and loaded without unpickling.

Owns the on-disk format. A checkpoint is a folder holding `model.safetensors` and `card.json`; the card
records the model's registry name and constructor arguments, the data set (name, class names,
normalisation, input shape), metrics, training settings, epochs, wall time, torch version and the
command that produced it. Loading reads JSON and safetensors only, rebuilds the model from the registry
and reports any corrupt, truncated or mismatched file as `CheckpointError` naming the file and problem.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.models import build_model

FORMAT = "cnn-studio-checkpoint/1"
WEIGHTS = "model.safetensors"
CARD = "card.json"
SNAPSHOTS = "snapshots"  # optional per-epoch weights (float16, for watching training), epoch_NNN.safetensors


def invoking_command(module: str) -> str | None:
    """`python -m <module> <args>` when this process was started as that module's CLI (recorded in model
    cards as the command that made a checkpoint), else None (a page or a test called the function)."""
    script = module.rsplit(".", 1)[-1] + ".py"
    return f"python -m {module} " + " ".join(sys.argv[1:]) if sys.argv[0].endswith(script) else None


class CheckpointError(Exception):
    """A checkpoint cannot be loaded; the message names the file and what is wrong with it."""


def save_checkpoint(folder: str | os.PathLike, model: nn.Module, card: dict) -> Path:
    """Write `model`'s weights and `card` (plus format, model spec, torch version, time) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not hasattr(model, "spec"):
        raise ValueError("save_checkpoint needs a model made by core.models.build_model (it has no .spec)")
    packaged = model.package_keys() if hasattr(model, "package_keys") else set()  # e.g. frozen ImageNet weights
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items() if k not in packaged}
    full_card = {"format": FORMAT, "model": model.spec, "torch_version": torch.__version__,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **card}
    if packaged:
        full_card["weights_from_package"] = f"{len(packaged)} frozen tensors come from the pretrained network's package"
    save_file(state, str(folder / WEIGHTS), metadata={"format": FORMAT})
    full_card["weights_bytes"] = (folder / WEIGHTS).stat().st_size
    (folder / CARD).write_text(json.dumps(full_card, indent=2) + "\n")
    return folder


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a folder, its card or its weights file."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CARD):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder (expected a folder with {WEIGHTS} and {CARD}).")
    return path


def read_card(path: str | os.PathLike) -> dict:
    """The model card of a checkpoint, validated enough to rebuild the model."""
    card_path = resolve(path) / CARD
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: model card missing.")
    try:
        card = json.loads(card_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{card_path}: not valid JSON ({exc}); the file is corrupt or truncated.")
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise CheckpointError(f"{card_path}: not a CNN Studio model card (format {card.get('format') if isinstance(card, dict) else None!r}, expected {FORMAT!r}).")
    spec = card.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("kwargs"), dict):
        raise CheckpointError(f"{card_path}: the 'model' section must name the model and its constructor arguments.")
    return card


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint, load its weights, and return (model in eval mode, card)."""
    folder = resolve(path)
    card = read_card(folder)
    if card.get("framework") == "keras":  # a Keras run: read model.keras in safe mode, as PyTorch layers
        from core.byo import ModelFileError, load_model_file

        keras_file = folder / "model.keras"
        try:
            model, _ = load_model_file(keras_file.read_bytes(), keras_file.name)
        except (OSError, ModelFileError) as exc:
            raise CheckpointError(f"{keras_file}: {exc}") from None
        return model.to(device).eval(), card
    weights = folder / WEIGHTS
    spec = card["model"]
    try:
        model = build_model(spec["name"], **spec["kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / CARD}: cannot rebuild model {spec['name']!r} ({exc}).")
    except RuntimeError as exc:  # e.g. the package with a pretrained network's weights is missing
        raise CheckpointError(f"{folder / CARD}: cannot build model {spec['name']!r}: {exc}")
    packaged = model.package_keys() if card.get("weights_from_package") and hasattr(model, "package_keys") else set()
    if not weights.is_file() and set(model.state_dict()) - packaged:
        raise CheckpointError(f"{weights}: weights file missing.")
    try:
        state = load_file(str(weights), device="cpu") if weights.is_file() else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc}); it is corrupt or truncated.")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - packaged:
            raise RuntimeError(f"missing keys {sorted(set(missing) - packaged)[:3]}, unexpected keys {unexpected[:3]}")
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{weights}: weights do not match model {spec['name']!r} "
                              f"({'; '.join(line.strip() for line in first[:3])}).")
    return model.to(device).eval(), card


def save_snapshot(folder: str | os.PathLike, model: nn.Module, epoch: int) -> Path:
    """Store this epoch's weights (floats as float16 to stay small) under `folder`/snapshots."""
    target = Path(folder) / SNAPSHOTS
    target.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().to("cpu").half() if v.is_floating_point() else v.detach().to("cpu")).contiguous()
             for k, v in model.state_dict().items()}
    path = target / f"epoch_{epoch:03d}.safetensors"
    save_file(state, str(path), metadata={"format": FORMAT, "epoch": str(epoch)})
    return path


def list_snapshots(folder: str | os.PathLike) -> list[int]:
    """Epochs with a stored snapshot, ascending (empty when the run kept none)."""
    epochs = []
    for path in (Path(folder) / SNAPSHOTS).glob("epoch_*.safetensors"):
        try:
            epochs.append(int(path.stem.split("_")[1]))
        except (IndexError, ValueError):
            continue
    return sorted(epochs)


def load_snapshot(folder: str | os.PathLike, epoch: int) -> nn.Module:
    """The checkpoint's model with the weights it had after `epoch`, in float32 and eval mode."""
    model, _ = load_checkpoint(folder)
    path = resolve(folder) / SNAPSHOTS / f"epoch_{epoch:03d}.safetensors"
    try:
        state = load_file(str(path), device="cpu")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: cannot load this snapshot ({exc}).")
    return model.eval()


def list_checkpoints(root: str | os.PathLike) -> list[tuple[Path, dict]]:
    """(folder, card) for every readable checkpoint directly under `root`, sorted by folder name."""
    root = Path(root)
    found = []
    for card_path in sorted(root.glob(f"*/{CARD}")):
        try:
            found.append((card_path.parent, read_card(card_path.parent)))
        except CheckpointError:
            continue
    return found
