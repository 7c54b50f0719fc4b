"""A sweep's search space in words, and the trial's values (set on the recipe by `core.engine.settings.with_settings`).

One parameter per `PATH=KIND:ARGS`, PATH a setting of the recipe (`config.lr`, `label_smoothing`,
`augment.translate`, `model_options.width`, ...):

    config.lr=loguniform:1e-4:1e-1      a float, log-uniform between the bounds
    mixup_alpha=uniform:0:0.4           a float, uniform
    augment.translate=int:0:3           a whole number, both bounds included
    config.optimizer=choice:adam,sgd    one of the listed values (numbers where they parse as numbers)

`seed004` reproduces seed 004's tuning question (filters 32 or 64, kernel 3 or 5, dropout 0 or 0.5, learning
rate 1e-3 or 1e-4): a 16-point grid.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import SettingsError

KINDS = ("loguniform", "uniform", "int", "choice")
PRESETS = {  # name -> (base recipe flags, search space)
    "seed004-mnist": (["--dataset", "mnist", "--model", "seed004_cnn", "--epochs", "3", "--val-split", "0.1"],
                      ["model_options.width=choice:32,64", "model_options.kernel=choice:3,5",
                       "model_options.dropout=choice:0,0.5", "config.lr=choice:0.001,0.0001"]),
    "seed004-fashion": (["--dataset", "fashion_mnist", "--model", "seed004_cnn", "--epochs", "3", "--val-split", "0.1"],
                        ["model_options.width=choice:32,64", "model_options.kernel=choice:3,5",
                         "model_options.dropout=choice:0,0.5", "config.lr=choice:0.001,0.0001"]),
}


@dataclass(frozen=True)
class Param:
    path: str
    kind: str
    args: tuple


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def parse_space(items: list[str]) -> dict[str, Param]:
    """`["config.lr=loguniform:1e-4:1e-1", ...]` -> {path: Param}; SettingsError saying what is wrong."""
    space = {}
    for item in items:
        path, sep, spec = item.partition("=")
        kind, _, rest = spec.partition(":")
        if not sep or not path or kind not in KINDS or not rest:
            raise SettingsError(f"search space item {item!r}: expected PATH=KIND:ARGS with KIND one of "
                             f"{', '.join(KINDS)}, e.g. config.lr=loguniform:1e-4:1e-1 or config.optimizer=choice:adam")
        if kind == "choice":
            args = tuple(_number(v.strip()) for v in rest.split(",") if v.strip())
            if len(args) < 2:
                raise SettingsError(f"search space item {item!r}: a choice needs at least two values")
        else:
            try:
                low, high = (float(v) for v in rest.split(":"))
            except ValueError:
                raise SettingsError(f"search space item {item!r}: {kind} needs LOW:HIGH") from None
            if not low < high or (kind == "loguniform" and low <= 0):
                raise SettingsError(f"search space item {item!r}: needs LOW < HIGH"
                                 + (" and LOW > 0" if kind == "loguniform" else ""))
            args = (int(low), int(high)) if kind == "int" else (low, high)
        space[path.strip()] = Param(path.strip(), kind, args)
    if not space:
        raise SettingsError("the search space is empty: give at least one --space PATH=KIND:ARGS")
    return space


def suggest(trial, space: dict[str, Param]) -> dict:
    """The trial's value of every parameter (Optuna's suggest_* API)."""
    values = {}
    for path, p in space.items():
        if p.kind == "choice":
            values[path] = trial.suggest_categorical(path, list(p.args))
        elif p.kind == "int":
            values[path] = trial.suggest_int(path, *p.args)
        else:
            values[path] = trial.suggest_float(path, *p.args, log=p.kind == "loguniform")
    return values


def grid(space: dict[str, Param]) -> dict[str, list]:
    """The grid of a space of choices and whole-number ranges (Optuna's GridSampler); SettingsError otherwise."""
    points = {}
    for path, p in space.items():
        if p.kind == "choice":
            points[path] = list(p.args)
        elif p.kind == "int":
            points[path] = list(range(p.args[0], p.args[1] + 1))
        else:
            raise SettingsError(f"a grid sweep takes choices and whole-number ranges; {path} is {p.kind}")
    return points
