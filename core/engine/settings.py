"""Settings checked before any work starts, the same way for the CLI, the Trainer and `run`.

`check_settings(recipe)` walks a recipe's dataclass (and the dataclasses inside it, such as the engine's
`TrainConfig` and the augmentation) and refuses, in plain words naming the setting, any value no run can
use: counts that must be positive (epochs, batch size), sizes beyond what fits in memory, negative or
non-finite numbers, shares outside [0, 1). Then the recipe's own `check()` (if it has one) tests the
combinations only it understands. `check_out_dir(out)` proves the output folder can be written, by writing.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

# name -> (lowest, highest) allowed; a field not named here only needs to be finite and not negative
LIMITS = {
    "epochs": (1, 10_000), "batch_size": (1, 65_536), "lr": (1e-12, 100), "latent_dim": (1, 4096),
    "width": (28, 4096), "max_len": (1, 64), "n_train": (1, 10_000_000), "eval_n": (1, 1_000_000),
    "max_train": (0, 10_000_000), "per_class": (0, 1_000_000), "hidden": (0, 4096), "embed": (0, 4096),
    "attention": (0, 4096), "folds": (0, 100), "max_overlap": (0, 28), "translate": (0, 64), "rotate": (0, 180),
    "threads": (0, 1024), "max_steps": (0, 100_000_000), "min_count": (1, 1_000_000), "seed": (0, 2**32 - 1),
    "plateau_patience": (0, 10_000), "early_stopping": (0, 10_000), "eval_every_steps": (0, 100_000_000),
    "warmup_epochs": (0, 10_000), "noise": (0, 10), "kl_weight": (0, 1e6), "x_weight": (0, 1e6),
    "plateau_factor": (1e-6, 1), "fold": (-1, 100), "processes": (1, 64), "norm_lr_scale": (1e-3, 1000),
}
SHARES = {"val_split", "test_share", "label_smoothing", "momentum", "ema_decay", "scale", "test_curve"}  # in [0, 1)
WIDTHS = {"widths", "channels"}  # tuples of layer widths, each 1 to 4096
SIGNED = {"gap"}  # ranges that may be negative (overlapping digits)


def _words(name: str) -> str:
    return name.replace("_", " ")


def _check_value(name: str, value) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, (str, dict)):
        return
    if isinstance(value, (tuple, list)):
        if name in WIDTHS:
            if len(value) > 12 or any(not isinstance(v, int) or not 1 <= v <= 4096 for v in value):
                raise ValueError(f"{_words(name)} must be up to 12 whole numbers from 1 to 4096; got {list(value)}.")
        elif name in SIGNED:
            if any(not isinstance(v, (int, float)) or abs(v) > 1000 for v in value):
                raise ValueError(f"{_words(name)} must be numbers between -1000 and 1000; got {list(value)}.")
            if len(value) == 2 and value[0] > value[1]:
                raise ValueError(f"{_words(name)} is a range (low, high); got {list(value)}.")
        return
    if not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise ValueError(f"{_words(name)} must be a finite number; got {value}.")
    if name in SHARES:
        if not 0 <= value < 1:
            raise ValueError(f"{_words(name)} must be from 0 to just below 1; got {value}.")
        return
    low, high = LIMITS.get(name, (0, math.inf))
    if not low <= value <= high:
        bound = f"at least {low:g}" if high == math.inf else f"from {low:g} to {high:,.12g}"
        if name == "lr":
            bound = f"positive and at most {high:g}"
        raise ValueError(f"{_words(name)} must be {bound}; got {value}.")


def check_settings(recipe) -> None:
    """Refuse (ValueError naming the setting) any value of `recipe` no run can use; see the module docstring."""
    def walk(obj) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)
            else:
                _check_value(f.name, value)
    walk(recipe)
    if hasattr(recipe, "check"):
        recipe.check()


def check_out_dir(out: str | os.PathLike) -> Path:
    """The output folder, created if needed and proven writable by writing a file into it; ValueError saying
    why not (a file in the way, no permission, a read-only disk) before any training starts."""
    folder = Path(out).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"  # one per process: ranks of one run check it together
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write the output folder {folder}: {exc.strerror or exc}. Choose another --out.") from None
    return folder
