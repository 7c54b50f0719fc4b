"""Recipes and `run`: the one way from settings to a trained, evaluated, saved model, for every model kind.

A recipe is a settings dataclass (a comment on every default) registered under a kind ("classifier",
"autoencoder", "pair", "crnn", "captioner") whose `prepare()` returns a `Prepared`: the model, its Task,
the loaders, the engine config, the model card to fill in, the evaluation that gives the test metrics
(one of them the task's headline) and, optionally, a `monitor` that makes live views after each epoch
(sample reconstructions, BLEU). `run` is the only caller of `engine.fit` for the CLI, the Trainer's
worker, k-fold and the tests: it seeds, prepares, trains (writing a complete checkpoint and the state
to resume from after every epoch when it has an output folder), evaluates and saves. Owns the recipe
registry and its JSON form (a run folder's spec.json). Does not own any recipe (see the features).
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Protocol

import numpy as np
import torch
from torch import nn

from core.engine import distributed
from core.engine.checkpoint import ModelCard, headline_of, save_checkpoint, save_snapshot
from core.engine.events import Event, RunControl, Task
from core.engine.fit import TrainConfig, fit, seed_everything
from core.engine.resume import RESUME_FILE, TrainState, load_state, save_state
from core.engine.settings import check_out_dir, check_settings
from core.engine.tblog import open_log

SAMPLES_FILE = "samples.npz"  # a run folder's latest live pictures (see Prepared.monitor)


@dataclass
class MonitorEvent:
    """Live views a recipe made after an epoch: metrics (e.g. BLEU-4) and, in samples.npz, pictures."""
    epoch: int
    metrics: dict
    caption: str = ""  # what the pictures show
    kind: str = "monitor"


@dataclass
class Prepared:
    model: nn.Module
    task: Task
    train: Iterable
    val: Iterable | None
    config: TrainConfig
    card: ModelCard  # task, data set and task sections filled in; run() adds training, metrics, command
    evaluate: Callable[[nn.Module], dict]  # test metrics of the trained model, in eval mode
    monitor: Callable[[nn.Module], tuple[dict, np.ndarray | None, str]] | None = None  # (metrics, RGB picture, caption)


class Recipe(Protocol):
    kind: ClassVar[str]  # registry key
    live: ClassVar[tuple[str, str, bool]]  # (metric the live chart shows, its title, whether it is a proportion)

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared: ...

    def command(self, out: str | Path) -> str: ...


RECIPES: dict[str, type] = {}


def register_recipe(cls: type) -> type:
    RECIPES[cls.kind] = cls
    return cls


def recipe_to_dict(recipe) -> dict:
    """JSON-ready form of a recipe (its kind and settings), as stored in a run folder's spec.json."""
    return {"kind": recipe.kind, **dataclasses.asdict(recipe)}


def recipe_from_dict(d: dict):
    """The recipe a `recipe_to_dict` dict describes (a dict without a kind is a classifier, as before)."""
    d = dict(d)
    kind = d.pop("kind", "classifier")
    if kind not in RECIPES:
        raise ValueError(f"unknown recipe kind {kind!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[kind].from_dict(d) if hasattr(RECIPES[kind], "from_dict") else RECIPES[kind](**d)


def _flag(cls, name: str) -> str:
    return getattr(cls, "flags", {}).get(name) or "--" + name.replace("_", "-")


def flag_args(recipe, skip: tuple[str, ...] = ("data_dir",)) -> list[str]:
    """Command-line flags (`--field-name value`, or the recipe's own `flags` spelling) for every setting
    that differs from its default: with the verb, the command that rebuilds the recipe."""
    args = []
    for f in dataclasses.fields(recipe):
        value, default = getattr(recipe, f.name), f.default
        if f.name in skip or value == default:
            continue
        flag = _flag(type(recipe), f.name)
        if isinstance(value, bool):
            args += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            args += [flag, ",".join(str(v) for v in value)]
        else:
            args += [flag, str(value)]
    return args


def add_recipe_flags(parser, cls: type) -> None:
    """One flag per setting of recipe class `cls`, typed from its default (lists as comma-separated)."""
    for f in dataclasses.fields(cls):
        default, flag = f.default, _flag(cls, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, dest=f.name, action="store_true", default=default)
        elif isinstance(default, (list, tuple)):
            kind = type(default[0]) if default else str
            parser.add_argument(flag, dest=f.name, type=lambda s, k=kind: tuple(k(v) for v in s.split(",") if v),
                                default=default, metavar="A,B,...")
        elif default is None or isinstance(default, str):
            parser.add_argument(flag, dest=f.name, default=default)
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=default)


def recipe_from_args(cls: type, args) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def recipe_command(recipe, verb: str, out) -> str:
    """`python -m core VERB --flags --out OUT`: the command recorded in the card, which rebuilds the run."""
    import shlex

    return f"python -m core {verb} " + shlex.join(flag_args(recipe) + ["--out", str(out)])


def lr_flags(changes) -> str:
    """` --lr-at STEP:LR ...`: the learning-rate changes a command must make to replay a run (see RunControl)."""
    return "".join(f" --lr-at {int(step)}:{float(lr)!r}" for step, lr in changes)


@contextlib.contextmanager
def preserved_rng():
    """Run a block without moving torch's, numpy's or Python's global random generators."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        yield
    np.random.set_state(np_state)
    random.setstate(py_state)


def run(recipe, callback: Callable[[Event], None] | None = None, control: RunControl | None = None,
        out: str | Path | None = None, *, resume: bool = False, command: str | None = None) -> ModelCard:
    """Prepare, train, evaluate and (with `out`) save `recipe`; returns the model card.

    With `out`, every finished epoch leaves a complete checkpoint there (its card marked "in_progress")
    and the state to resume from; `resume=True` continues from that state to the result an
    uninterrupted run would have had. `command` is recorded in the card (default: the recipe's own).
    """
    emit, control = callback or (lambda event: None), control or RunControl()
    check_settings(recipe)  # a value no run can use is refused before any work
    if resume and out is None:
        raise ValueError("resume needs the run's output folder")
    distributed.setup()  # under torchrun: join the other ranks (a no-op otherwise)
    main = distributed.is_main()
    if out is not None and main:
        check_out_dir(out)  # an unwritable folder fails now, not after training
    state = load_state(out) if resume else None  # every rank resumes from the same state
    writes = out if main else None  # only rank 0 reports, and writes events, checkpoints and the card
    if not main:
        emit = lambda event: None  # noqa: E731
    if command is None and out is not None:
        command = recipe.command(out)
    log = open_log(writes, recipe)  # TensorBoard event files beside the checkpoint
    try:
        card = _train(recipe, _tee(emit, log), control, writes, state, command, log)
    except BaseException:
        if log is not None:
            log.close({})
        raise
    if log is not None:
        log.close(card.metrics)
    return card


def _tee(emit: Callable[[Event], None], log) -> Callable[[Event], None]:
    if log is None:
        return emit

    def both(event: Event) -> None:
        emit(event)
        log(event)
    return both


def _train(recipe, emit, control, out, state, command, log) -> ModelCard:
    """The body of `run`: prepare, fit with a checkpoint per epoch, evaluate, save."""
    started = time.perf_counter()
    seed_everything(recipe.seed)
    prepared = recipe.prepare(emit, control)
    model, card = prepared.model, prepared.card
    card.command = command
    record = {**card.training,  # what the recipe itself records (e.g. the pair CNN's lambda)
              "kind": recipe.kind, "settings": dataclasses.asdict(recipe), "config": prepared.config.to_dict()}

    def live_views(epoch: int) -> None:
        with preserved_rng():  # looking must not change what the run does next (or a resumed run would differ)
            metrics, pictures, caption = prepared.monitor(model)
        if pictures is not None and out is not None:
            tmp = Path(out) / f".{SAMPLES_FILE}.tmp.npz"
            np.savez_compressed(tmp, pictures=pictures)
            tmp.replace(Path(out) / SAMPLES_FILE)
        if pictures is not None and log is not None:
            log.pictures(pictures, epoch)
        emit(MonitorEvent(epoch=epoch, metrics=metrics, caption=caption))

    def end_of_epoch(progress: TrainState) -> None:
        if prepared.monitor is not None:
            live_views(progress.epoch)
        if out is None:
            return
        if getattr(recipe, "snapshots", False):  # every epoch's weights, to watch training on the Inside page
            save_snapshot(out, model, progress.epoch)
        save_state(out, progress)  # resume state first: a kill after it still has a consistent checkpoint
        card.metrics, card.run = {}, {"state": "in_progress", "epoch": progress.epoch}  # tested once the run ends
        card.training = {**record, "epochs": progress.epoch, "steps": progress.steps, "stop_reason": "interrupted",
                         "best_epoch": progress.best_epoch,
                         "train_seconds": round(progress.train_seconds, 2), "history": progress.history}
        save_checkpoint(out, model, card)

    result = fit(model, prepared.task, prepared.train, prepared.val, prepared.config, callback=emit, control=control,
                 resume=state, on_epoch_end=end_of_epoch)
    model.eval()
    if control.changes:  # learning rates set by hand or by --lr-at: recorded, and replayed by the command
        record["lr_changes"] = [[step, lr] for step, lr in control.changes]
        card.command = command + lr_flags(control.unplanned()) if command else command
    card.metrics = prepared.evaluate(model)
    card.run = {"state": "complete", "epoch": result.epochs}
    card.training = {**record, "epochs": result.epochs, "steps": result.steps, "stop_reason": result.reason,
                     "message": result.message, "best_epoch": result.best_epoch,
                     "train_seconds": round(result.train_seconds, 2),
                     "wall_seconds": round(time.perf_counter() - started, 2), "history": result.history,
                     "resumed_from_epoch": state.epoch if state is not None else 0}
    card.headline = headline_of(card)
    if out is not None:
        save_checkpoint(out, model, card)
        (Path(out) / RESUME_FILE).unlink(missing_ok=True)  # the run is over: nothing left to resume
    return card
