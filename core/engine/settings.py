"""Settings checked before any work starts, the same way for the CLI, the Trainer, sweeps and `run`.

Each settings dataclass says what its values may be, as class attributes read here: `limits` (field ->
(lowest, highest), `SHARE` for a proportion in [0, 1), `WIDTHS` for a tuple of layer widths, or a
`Signed` range that may be negative) and `choices` (field -> the allowed words). The engine's own
dataclasses (`TrainConfig`, `AugmentConfig`) and every recipe class carry their own, so this module
names no feature's field. `check_settings(recipe)` walks a recipe (and the dataclasses inside it) and
refuses, in plain words naming the setting, any value no run can use; a field a class does not limit
only needs to be a finite number that is not negative. Then each dataclass's own `check()` (if it
has one) tests the combinations only it understands. `check_out_dir(out)` proves the output folder can
be written, by writing. `with_settings` sets settings by dotted path (`config.lr`), for the Trainer's form,
the command line and sweeps.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import SettingsError

SHARE = "share"  # a proportion: from 0 to just below 1
MAX_WIDTH = 4096  # the widest layer any recipe may ask for


@dataclass(frozen=True)
class Widths:
    """A tuple of layer widths: up to `count` whole numbers from 1 to `high`."""
    count: int = 12
    high: int = MAX_WIDTH


@dataclass(frozen=True)
class Signed:
    """A range (low, high) of numbers that may be negative, each within +/- `bound`."""
    bound: float = 1000


WIDTHS = Widths()


def words(name: str) -> str:
    return name.replace("_", " ")


def _check_sequence(name: str, value, rule) -> None:
    if isinstance(rule, Widths):
        if len(value) > rule.count or any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= rule.high
                                          for v in value):
            raise SettingsError(f"{words(name)} must be up to {rule.count} whole numbers from 1 to {rule.high}; "
                                f"got {list(value)[:20]}.")
    elif isinstance(rule, Signed):
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= rule.bound for v in value):
            raise SettingsError(f"{words(name)} must be numbers between -{rule.bound:g} and {rule.bound:g}; "
                                f"got {list(value)[:20]}.")
        if len(value) == 2 and value[0] > value[1]:
            raise SettingsError(f"{words(name)} is a range (low, high); got {list(value)}.")


def _check_number(name: str, value, rule) -> None:
    if not math.isfinite(value):
        raise SettingsError(f"{words(name)} must be a finite number; got {value}.")
    if rule == SHARE:
        if not 0 <= value < 1:
            raise SettingsError(f"{words(name)} must be from 0 to just below 1; got {value}.")
        return
    low, high = rule if isinstance(rule, tuple) else (0, math.inf)
    if not low <= value <= high:
        bound = f"at least {low:g}" if high == math.inf else f"from {low:g} to {high:,.12g}"
        if name == "lr":
            bound = f"positive and at most {high:g}"
        raise SettingsError(f"{words(name)} must be {bound}; got {value}.")


def check_value(owner: type, name: str, value) -> None:
    """Refuse `value` of setting `name` of dataclass `owner` if its class's limits or choices exclude it."""
    rule = getattr(owner, "limits", {}).get(name)
    allowed = getattr(owner, "choices", {}).get(name)
    allowed = allowed() if callable(allowed) else allowed  # e.g. the registered models, asked when needed
    if allowed is not None and value not in allowed:
        raise SettingsError(f"{words(name)} must be one of {', '.join(map(str, allowed))}; got {value!r}.")
    if isinstance(value, bool) or value is None or isinstance(value, (str, dict)):
        return
    if isinstance(value, (tuple, list)):
        _check_sequence(name, value, rule)
    elif isinstance(value, (int, float)):
        _check_number(name, value, rule)


def check_settings(recipe) -> None:
    """Refuse (SettingsError naming the setting) any value of `recipe` no run can use; see the module docstring."""
    def walk(obj) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value)
            else:
                check_value(type(obj), f.name, value)
        if hasattr(obj, "check"):  # what only the class understands: combinations of its values
            obj.check()
    walk(recipe)


def check_memory(needed: int | None, what: str, budget: int, advice: str) -> None:
    """Refuse a run whose estimated memory (`needed` bytes, None when unknown) is over `budget`, before it allocates
    anything: SettingsError saying how much, the limit, and what to lower."""
    if needed is not None and needed > budget:
        raise SettingsError(f"{what} would need about {needed / 2**30:,.1f} GB of memory; the limit is "
                            f"{budget / 2**30:g} GB. {advice}")


def check_dataset(name: str) -> None:
    """Refuse a data set name no run can read (an unknown name, a folder that is not there), without reading it."""
    from core.data.base import dataset_problem

    problem = dataset_problem(name)
    if problem:
        raise SettingsError(f"data set: {problem}.")


def check_out_dir(out: str | os.PathLike) -> Path:
    """The output folder, created if needed and proven writable by writing a file into it; SettingsError saying
    why not (a file in the way, no permission, a read-only disk) before any training starts."""
    folder = Path(out).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"  # one per process: ranks of one run check it together
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SettingsError(f"cannot write the output folder {folder}: {exc.strerror or exc}. "
                            "Choose another --out.") from None
    return folder


def with_settings(recipe, values: dict):
    """A copy of `recipe` with every setting in `values` set; keys are dotted paths (`config.lr`,
    `augment.translate`; `model_options.X` adds an entry to a dict setting). SettingsError for a path that
    names no setting."""
    for path, value in values.items():
        head, _, tail = path.partition(".")
        if not dataclasses.is_dataclass(recipe) or head not in {f.name for f in dataclasses.fields(recipe)}:
            raise SettingsError(f"{type(recipe).__name__} has no setting {head!r} (in {path!r})")
        current = getattr(recipe, head)
        if not tail:
            recipe = dataclasses.replace(recipe, **{head: value})
        elif isinstance(current, dict):
            recipe = dataclasses.replace(recipe, **{head: {**current, tail: value}})
        elif dataclasses.is_dataclass(current):
            recipe = dataclasses.replace(recipe, **{head: with_settings(current, {tail: value})})
        else:
            raise SettingsError(f"{path!r} is not a setting of {type(recipe).__name__}")
    return recipe
