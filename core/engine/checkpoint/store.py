"""Checkpoint files: weights as safetensors beside the typed model card, written atomically, read without unpickling.

Owns the on-disk format. A checkpoint is a folder holding `model.safetensors` and `card.json` (a
`ModelCard`, see `core.engine.checkpoint.card`). Every file is written to a temporary name and renamed into
place, weights first, so a process killed at any moment leaves the previous complete checkpoint or
the new one, never half a file. Loading reads JSON and safetensors only, validates the card, rebuilds
the model from the registry, refuses weights that are not finite, and reports any corrupt, truncated
or mismatched file as `CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from core.engine.checkpoint.card import FORMAT, MAX_CARD_BYTES, CheckpointError, ModelCard, ModelSpec, card_from_dict, headline_of
from core.models import build_model
from core.models.registry import RESERVED, UPLOAD_BUDGET, check_options, weights_bytes
from core.paths import replace_atomically

WEIGHTS = "model.safetensors"
CARD = "card.json"
SNAPSHOTS = "snapshots"  # optional per-epoch weights (float16, for watching training), epoch_NNN.safetensors


def invoking_command(module: str) -> str | None:
    """The command line that started this process, when it was CNN Studio's CLI (`python -m core ...`) or
    `module`'s own (recorded in model cards: it replays the run), else None (a page or a test called)."""
    args = shlex.join(sys.argv[1:])
    if Path(sys.argv[0]).as_posix().endswith("core/__main__.py"):
        return f"python -m core {args}"
    script = module.rsplit(".", 1)[-1] + ".py"
    return f"python -m {module} {args}" if sys.argv[0].endswith(script) else None


def spec_of(model: nn.Module) -> ModelSpec:
    """The registry name and constructor arguments of a model made by `core.models.build_model`."""
    if not hasattr(model, "spec"):
        raise ValueError("a checkpoint needs a model made by core.models.build_model (it has no .spec)")
    return ModelSpec(name=model.spec["name"], kwargs=dict(model.spec["kwargs"]))


def write_card(folder: str | os.PathLike, card: ModelCard) -> Path:
    """The one place a card.json is written (atomically), with its headline derived from its metrics."""
    card.headline = headline_of(card)
    text = json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n"
    path = Path(folder) / CARD
    replace_atomically(path, lambda tmp: tmp.write_text(text))
    return path


def save_checkpoint(folder: str | os.PathLike, model: nn.Module, card: ModelCard) -> Path:
    """Write `model`'s weights and `card` (stamped with format, model spec, torch version, time, size)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    packaged = model.package_keys() if hasattr(model, "package_keys") else set()  # e.g. frozen ImageNet weights
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items() if k not in packaged}
    card.model, card.format, card.torch_version = spec_of(model), FORMAT, torch.__version__
    card.created = time.strftime("%Y-%m-%dT%H:%M:%S")
    if packaged:
        card.weights_from_package = f"{len(packaged)} frozen tensors come from the pretrained network's package"
    replace_atomically(folder / WEIGHTS, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT}))
    card.weights_bytes = (folder / WEIGHTS).stat().st_size
    write_card(folder, card)
    return folder


def _not_safetensors(path: Path, exc: Exception) -> str:
    """Why a weights file did not read, in words: what it really is (a pickle, a zip) when its first bytes tell."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:1] == b"\x80":
        return ("this is a Python pickle renamed model.safetensors (torch.save), not safetensors weights; pickles are "
                "never opened, since loading one can run code. Save the weights with safetensors.torch.save_file.")
    if head[:2] == b"PK":
        return "this is a zip file (torch.save's format), not safetensors weights. Save them with safetensors."
    return f"not a readable safetensors file ({str(exc)[:120]}); it is corrupt or truncated."


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a folder, its card or its weights file."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS, CARD):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder (expected a folder with {WEIGHTS} and {CARD}).")
    return path


def read_card(path: str | os.PathLike) -> ModelCard:
    """The validated model card of a checkpoint (older schemas migrated)."""
    card_path = resolve(path) / CARD
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: model card missing.")
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise CheckpointError(f"{card_path}: {card_path.stat().st_size:,} bytes; a model card is at most {MAX_CARD_BYTES:,}.")
    try:
        raw = json.loads(card_path.read_text())
    except UnicodeDecodeError:
        raise CheckpointError(f"{card_path}: not text (UTF-8); the file is not a model card.") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{card_path}: not valid JSON ({exc}); the file is corrupt or truncated.") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits, which Python refuses to convert
        raise CheckpointError(f"{card_path}: holds a value JSON cannot read here ({str(exc)[:80]}).") from None
    except RecursionError:
        raise CheckpointError(f"{card_path}: nested too deeply to be a model card.") from None
    return card_from_dict(raw, str(card_path))


def update_card(folder: str | os.PathLike, **fields) -> ModelCard:
    """Replace some fields of a checkpoint's card, or of its task's sections (e.g. a table measured later), and
    write it back."""
    card = read_card(folder)
    known = {f.name for f in dataclasses.fields(ModelCard)}
    card = dataclasses.replace(card, **{k: v for k, v in fields.items() if k in known},
                               sections={**card.sections, **{k: v for k, v in fields.items() if k not in known}})
    write_card(resolve(folder), card)
    return card


def check_finite(model: nn.Module, where: str) -> None:
    """Refuse a model with a NaN or infinite weight: every prediction it made would be meaningless."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{where}: weight {name!r} holds NaN or infinite values; the model cannot be used "
                                  "(it was probably saved after training diverged).")


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Rebuild the model of a checkpoint, load its weights, and return (model in eval mode, card)."""
    folder = resolve(path)
    card = read_card(folder)
    if card.framework == "keras":  # a Keras run: read model.keras in safe mode, as PyTorch layers
        from core.models.keras_import import ModelFileError, load_keras

        keras_file = folder / "model.keras"
        try:
            model = load_keras(keras_file.read_bytes(), ".keras")[0]
        except (OSError, ModelFileError) as exc:
            raise CheckpointError(f"{keras_file}: {exc}") from None
        check_finite(model, str(keras_file))
        return model.to(device).eval(), card
    weights = folder / WEIGHTS
    spec = card.model
    model = _rebuilt(spec, folder / CARD)
    packaged = model.package_keys() if card.weights_from_package and hasattr(model, "package_keys") else set()
    if not weights.is_file() and set(model.state_dict()) - packaged:
        raise CheckpointError(f"{weights}: weights file missing.")
    try:
        state = load_file(str(weights), device="cpu") if weights.is_file() else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: {_not_safetensors(weights, exc)}") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - packaged:
            raise RuntimeError(f"missing keys {sorted(set(missing) - packaged)[:3]}, unexpected keys {unexpected[:3]}")
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{weights}: weights do not match model {spec.name!r} "
                              f"({'; '.join(line.strip() for line in first[:3])}).")
    check_finite(model, str(weights))
    return model.to(device).eval(), card


def _rebuilt(spec, where: Path) -> nn.Module:
    """The card's model, built from the registry once its options and its size (found on the meta device, nothing
    allocated) are known to be ones CNN Studio builds; CheckpointError naming the card otherwise."""
    kwargs = {k: v for k, v in spec.kwargs.items() if k not in RESERVED}
    try:
        check_options(spec.name, kwargs)
        size = weights_bytes(spec.name, **spec.kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot rebuild model {spec.name!r} ({str(exc)[:200]}).") from None
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: cannot build model {spec.name!r} ({str(exc)[:200]}).") from None
    if size is not None and size > UPLOAD_BUDGET:
        raise CheckpointError(f"{where}: model {spec.name!r} with these options would have {size / 2**30:,.1f} GB of "
                              f"weights; models up to {UPLOAD_BUDGET / 2**30:g} GB are loaded.")
    try:
        return build_model(spec.name, **spec.kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: cannot rebuild model {spec.name!r} ({str(exc)[:200]}).") from None
    except RuntimeError as exc:  # e.g. the package with a pretrained network's weights is missing
        raise CheckpointError(f"{where}: cannot build model {spec.name!r}: {str(exc)[:200]}") from None


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


def list_checkpoints(root: str | os.PathLike) -> list[tuple[Path, ModelCard]]:
    """(folder, card) for every readable checkpoint directly under `root`, sorted by folder name."""
    root = Path(root)
    found = []
    for card_path in sorted(root.glob(f"*/{CARD}")):
        try:
            found.append((card_path.parent, read_card(card_path.parent)))
        except CheckpointError:
            continue
    return found
