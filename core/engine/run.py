"""`run`: the one way from a recipe to a trained, evaluated, saved model, for every model kind.

The CLI, the Trainer's worker, k-fold, sweeps, benchmarks and the tests all train through `run`: it checks
the settings, seeds, prepares (the recipe's `prepare`: model, task, loaders, engine config, model card,
evaluation), trains with `core.engine.fit` (writing a complete checkpoint and the state to resume from
after every epoch when it has an output folder), evaluates and saves. Under torchrun only rank 0 reports
and writes. Does not own any recipe (see the kinds' packages) or the registry (`core.engine.recipe`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.engine import distributed
from core.engine.checkpoint import ModelCard, headline_of, save_checkpoint, save_snapshot
from core.engine.events import Event, MonitorEvent, RunControl
from core.engine.device import seed_everything
from core.engine.fit import fit
from core.engine.flags import lr_flags
from core.engine.resume import RESUME_FILE, TrainState, load_state, save_state
from core.engine.settings import check_out_dir, check_settings
from core.engine.tblog import open_log
from core.errors import SettingsError
from core.paths import replace_atomically

SAMPLES_FILE = "samples.npz"  # a run folder's latest live pictures (see Prepared.monitor)


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
        raise SettingsError("resume needs the run's output folder")
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
            replace_atomically(Path(out) / SAMPLES_FILE, lambda tmp: np.savez_compressed(tmp, pictures=pictures))
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
