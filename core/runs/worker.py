"""The worker: trains run folders in this process, as the Trainer and sweeps start it.

    python -m core worker [--resume] RUN_DIR [RUN_DIR ...]     (started by `core.runs.service`)

`train_run` trains one folder's recipe through the recipe's own `execute` (so a kind that trains several models
in one run, such as k-fold, needs nothing here), writing its events, taking the orders of its control.json
(stop, a new learning rate) and ending with its status.json. Queued folders train in order; stopping one
cancels the rest. Kind-agnostic: the kinds are registered by the CLI that runs this verb.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from pathlib import Path

from core.engine import Event, RunControl, StoppedWhilePreparing, distributed
from core.engine.verbs import register_verb
from core.errors import ProjectError
from core.runs.folder import CONTROL, EVENTS, STATUS, read_json, read_recipe, write_json
from core.runs.service import worker_nice

FLUSH_SECONDS = 0.3  # how often step events reach the disk (epoch and end events are written at once)
POLL_SECONDS = 0.2  # how often the worker reads its control.json


class _Orders:
    """The run folder as the run's event sink and order source: events buffered to events.jsonl, orders read from
    control.json into the run's `RunControl`."""

    def __init__(self, run_dir: Path, control: RunControl, observe=None):
        self.run_dir, self.control, self.observe = run_dir, control, observe
        self.buffer: list[str] = []
        self.last = {"flush": 0.0, "poll": 0.0, "lr": None}

    def flush(self) -> None:
        if self.buffer:
            with open(self.run_dir / EVENTS, "a") as fh:
                fh.write("".join(self.buffer))
            self.buffer.clear()
        self.last["flush"] = time.time()

    def __call__(self, event: Event) -> None:
        self.buffer.append(json.dumps(dataclasses.asdict(event)) + "\n")
        now = time.time()
        if event.kind != "step" or now - self.last["flush"] > FLUSH_SECONDS:
            self.flush()
        if now - self.last["poll"] > POLL_SECONDS:  # orders from any tab, through the run directory
            self.last["poll"] = now
            orders = read_json(self.run_dir / CONTROL)
            if orders.get("stop"):
                self.control.stop()
            if orders.get("lr") and orders["lr"] != self.last["lr"]:
                self.last["lr"] = orders["lr"]
                self.control.set_lr(float(orders["lr"]))
        if self.observe is not None:
            self.observe(event, self.control)


def train_run(run_dir: Path, spec, resume: bool = False, observe=None, stopped_message=None):
    """Train `spec` in this process into `run_dir` (events, status, checkpoint), obeying the run folder's stop and
    learning-rate orders; returns the card, or None when the run failed, was stopped before training, or trained
    no single model. `observe(event, control)` sees every event (a sweep's pruner); `stopped_message()` may
    explain a stop."""
    run_dir, control = Path(run_dir), RunControl()
    orders = _Orders(run_dir, control, observe)
    write = write_json if distributed.is_main() else (lambda path, obj: None)  # under torchrun: rank 0 writes
    started = read_json(run_dir / STATUS).get("started", time.time()) if resume else time.time()
    write(run_dir / STATUS, {"state": "running", "started": started, "pid": os.getpid()})
    ended = {"started": started, "ended": 0.0}
    try:
        outcome = spec.execute(orders, control, run_dir, resume=resume)
    except StoppedWhilePreparing as exc:
        orders.flush()
        write(run_dir / STATUS, {**ended, "ended": time.time(), "state": "stopped", "message": str(exc)})
        return None
    except Exception as exc:  # noqa: BLE001  (whatever broke, the page must learn it from status.json)
        orders.flush()
        user = isinstance(exc, ProjectError)  # the user's problem, said in words; anything else is a bug: its trace
        write(run_dir / STATUS, {**ended, "ended": time.time(), "state": "failed",
                                 "message": str(exc) if user else f"{type(exc).__name__}: {exc}",
                                 **({} if user else {"trace": traceback.format_exc()})})
        return None
    orders.flush()
    write(run_dir / STATUS, {**ended, "ended": time.time(), **_status(outcome, stopped_message)})
    return outcome.card


def _status(outcome, stopped_message) -> dict:
    """The status.json fields of a finished run: its state, message, time and headline."""
    card = outcome.card
    if card is None:
        return outcome.status
    training, head = card.training, card.headline
    state = {"diverged": "diverged", "stopped": "stopped"}.get(training["stop_reason"], "finished")
    message = (stopped_message() if stopped_message and state == "stopped" else None) or training["message"]
    return {"state": state, "message": message, "train_seconds": training["train_seconds"],
            "test_accuracy": card.metrics.get("test_accuracy"),
            "headline": {"label": head.label, "value": head.value, "words": head.describe()} if head else None,
            **outcome.status}


def _arguments(parser) -> None:
    parser.add_argument("--resume", action="store_true", help="continue the first folder's interrupted run")
    parser.add_argument("folders", nargs="+", help="run folders made by the Trainer, trained in order")


@register_verb("worker", "(the Trainer's) train queued run folders in this process, in order", _arguments)
def work(args) -> None:
    worker_nice()
    folders = [Path(f) for f in args.folders]
    for i, folder in enumerate(folders):
        if i and read_json(folders[i - 1] / STATUS).get("state") == "stopped":
            for rest in folders[i:]:
                write_json(rest / STATUS, {"state": "cancelled", "message": "Cancelled: an earlier run of the "
                                           "queue was stopped.", "ended": time.time()})
            break
        recipe = read_recipe(folder)
        if recipe is None:
            write_json(folder / STATUS, {"state": "failed", "ended": time.time(),
                                         "message": "Its spec.json is missing, unreadable or names an unknown kind."})
            continue
        train_run(folder, recipe, resume=args.resume and i == 0)
