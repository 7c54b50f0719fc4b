"""Resumable training state: everything `engine.fit` needs to go on exactly where an epoch ended.

Owns `TrainState` (the weights, the optimizer's moments, the schedule's position, every random number
generator the run draws from, the history and the early-stopping bookkeeping at the end of one epoch),
how it is captured from and restored into live objects, and its file: one safetensors file whose
tensors hold the arrays and whose metadata holds the rest as JSON, written atomically. Nothing is
unpickled on the way back. A run resumed from epoch k reaches the same weights as a run that never
stopped, because it continues from the same numbers. Does not own the loop (`core.engine`) or the run
folder (`core.runs`).
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from core.paths import replace_atomically

RESUME_FILE = "resume.safetensors"
FORMAT = "cnn-studio-resume/1"


@dataclass
class TrainState:
    epoch: int  # epochs finished
    steps: int  # optimizer steps taken
    train_seconds: float
    history: list[dict]  # one row per finished epoch, as in FitResult
    best_epoch: int = 0
    best_value: float | None = None
    stale: int = 0  # epochs without improvement (early stopping)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # model., best., ema., opt., rng.
    meta: dict = field(default_factory=dict)  # optimizer groups, schedule, numpy/python RNG: JSON-ready


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()  # cloned: safetensors refuses tensors that share memory


def capture(*, model: nn.Module, optimizer: torch.optim.Optimizer, schedule, loader, average, best_state: dict | None,
            epoch: int, steps: int, train_seconds: float, history: list[dict], best_epoch: int,
            best_value: float | None, stale: int) -> TrainState:
    """A copy of the run's state at the end of `epoch` (nothing here aliases the live objects)."""
    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": _cpu(v) for k, v in (best_state or {}).items()})
    if average is not None:
        tensors.update({f"ema.{i}": _cpu(s) for i, s in enumerate(average.shadow)})
    opt = optimizer.state_dict()
    plain: dict[str, dict] = {}
    for pid, slots in opt["state"].items():
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{name}"] = _cpu(value)
            else:
                plain.setdefault(str(pid), {})[name] = value
    tensors["rng.torch"] = torch.get_rng_state()
    if hasattr(loader, "generator"):
        tensors["rng.loader"] = loader.generator.get_state()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {"optimizer": {"param_groups": opt["param_groups"], "plain": plain},
            "schedule": {"manual": schedule.manual,
                         "state": schedule.scheduler.state_dict() if schedule.scheduler is not None else None},
            "numpy": [kind, int(pos), int(has_gauss), float(gauss)],
            "python": [py_version, list(py_state), py_gauss],
            "ema_updates": average.updates if average is not None else 0}
    return TrainState(epoch=epoch, steps=steps, train_seconds=train_seconds, history=[dict(h) for h in history],
                      best_epoch=best_epoch, best_value=best_value, stale=stale, tensors=tensors, meta=meta)


def restore(state: TrainState, *, model: nn.Module, optimizer: torch.optim.Optimizer, schedule, loader,
            average) -> dict | None:
    """Put `state` back into the live objects; returns the best weights kept so far (or None)."""
    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in state.tensors.items() if k.startswith(prefix)}

    device = next(model.parameters()).device
    model.load_state_dict(part("model."))
    slots: dict[int, dict] = {}
    for key, value in part("opt.").items():
        pid, name = key.split(".", 1)
        slots.setdefault(int(pid), {})[name] = value.to(device) if name != "step" else value
    for pid, plain in state.meta["optimizer"]["plain"].items():
        slots.setdefault(int(pid), {}).update(plain)
    optimizer.load_state_dict({"state": slots, "param_groups": state.meta["optimizer"]["param_groups"]})
    schedule.manual = state.meta["schedule"]["manual"]
    if schedule.scheduler is not None and state.meta["schedule"]["state"] is not None:
        schedule.scheduler.load_state_dict(state.meta["schedule"]["state"])
    if average is not None:
        for i, shadow in enumerate(average.shadow):
            shadow.copy_(state.tensors[f"ema.{i}"])
        average.updates = state.meta["ema_updates"]
    torch.set_rng_state(state.tensors["rng.torch"])
    if hasattr(loader, "generator") and "rng.loader" in state.tensors:
        loader.generator.set_state(state.tensors["rng.loader"])
    kind, pos, has_gauss, gauss = state.meta["numpy"]
    np.random.set_state((kind, state.tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, py_gauss = state.meta["python"]
    random.setstate((version, tuple(py_state), py_gauss))
    best = part("best.")
    return best or None


def save_state(folder: str | os.PathLike, state: TrainState) -> Path:
    """Write `state` to folder/resume.safetensors atomically (a kill leaves the previous epoch's file)."""
    path = Path(folder) / RESUME_FILE
    header = {"epoch": state.epoch, "steps": state.steps, "train_seconds": state.train_seconds,
              "history": state.history, "best_epoch": state.best_epoch, "best_value": state.best_value,
              "stale": state.stale, "meta": state.meta}
    replace_atomically(path, lambda tmp: save_file(state.tensors, str(tmp),
                                                    metadata={"format": FORMAT, "state": json.dumps(header)}))
    return path


def load_state(folder: str | os.PathLike) -> TrainState:
    """The state saved in folder/resume.safetensors; ValueError naming the file when it is unusable."""
    path = Path(folder) / RESUME_FILE
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"not a CNN Studio resume file (format {metadata.get('format')!r})")
        header = json.loads(metadata["state"])
        tensors = load_file(str(path))
    except (OSError, SafetensorError, KeyError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot resume from this file ({exc}).") from None
    return TrainState(epoch=header["epoch"], steps=header["steps"], train_seconds=header["train_seconds"],
                      history=header["history"], best_epoch=header["best_epoch"], best_value=header["best_value"],
                      stale=header["stale"], tensors=tensors, meta=header["meta"])
