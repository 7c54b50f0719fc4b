"""Background training runs whose state lives in a run directory, not in a browser session.

Owns starting a run of any recipe kind in a worker process (its own interpreter, so the web server's
Python work never slows the training loop and a crash in training cannot take the server down),
recording its event stream to `events.jsonl` and its state to `status.json` (with the worker's pid, so
a run whose worker died reads as "interrupted at epoch k" even after a server restart), taking orders
(stop, new learning rate) from `control.json`, and resuming an interrupted run. The run directory is a
checkpoint folder from the first finished epoch on. Only one run trains at a time: this machine has two
cores. Does not own training itself (`core.engine.recipe.run`) or any UI.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
import sys
import time
import traceback
from pathlib import Path

from core.engine.settings import check_settings
from core import paths

from core.engine import Event, RunControl, distributed
from core.engine.resume import RESUME_FILE
from core.engine.recipe import recipe_from_dict, recipe_to_dict, run
from core.trainer.classify import StoppedWhilePreparing, torchrun
from core.trainer import recipes  # noqa: F401  (registers every recipe kind, so any spec.json can be read)

SPEC, EVENTS, STATUS, CONTROL, GROUP = "spec.json", "events.jsonl", "status.json", "control.json", "group.json"
FLUSH_SECONDS = 0.3  # how often step events reach the disk (epoch and end events are written at once)
_workers: dict[str, subprocess.Popen] = {}  # run dir -> worker process (python -m core.trainer.runs RUN_DIR)


def spec_to_dict(spec) -> dict:
    return recipe_to_dict(spec)


def spec_from_dict(d: dict):
    """The recipe of a spec.json (any kind; the first version's classifier specs have no kind)."""
    return recipe_from_dict(d)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)  # readers never see half a file


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def active_run() -> Path | None:
    """The run this process is training now (or the next of a queue about to start), if any."""
    waiting = None
    for run_dir, worker in _workers.items():
        state = _read_json(Path(run_dir) / STATUS).get("state")
        if worker.poll() is None and state in ("starting", "running"):  # a finished worker may still be exiting
            return Path(run_dir)
        if worker.poll() is None and state == "queued":
            waiting = waiting or Path(run_dir)
    return waiting


def new_run_dir(root: Path, spec, name: str = "", position: int | None = None) -> Path:
    """A new run directory named by time (and queue position), so names sort in start order."""
    stem = name or str(getattr(spec, "dataset", spec.kind)).replace(":", "_").replace("/", "_")
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("" if position is None else f"-{position}")
    for i in range(100):
        run_dir = root / (stamp + f"{'' if i == 0 else f'.{i}'}_{stem}_{getattr(spec, 'model', spec.kind)}")
        if not run_dir.exists():
            run_dir.mkdir(parents=True)
            return run_dir
    raise RuntimeError(f"cannot create a run directory under {root}")


def create_run(root: Path, spec, name: str = "", position: int | None = None, state: str = "starting") -> Path:
    """A new run folder holding the run's spec.json and status.json: listed, watchable, trainable."""
    run_dir = new_run_dir(Path(root), spec, name, position)
    _write_json(run_dir / SPEC, spec_to_dict(spec))
    _write_json(run_dir / STATUS, {"state": state, "started": time.time()})
    return run_dir


def start_run(spec, root: Path | None = None, name: str = "") -> Path:
    """Create a run directory and start training `spec` in a worker process; returns the directory."""
    busy = active_run()
    if busy is not None:
        raise RuntimeError(f"A run is already training ({busy.name}); stop it or wait for it to finish.")
    return start_runs([spec], root=root, names=[name])[0]


def start_runs(specs: list, root: Path | None = None, names: list[str] | None = None,
               group: str = "") -> list[Path]:
    """Queue runs that one worker process trains one after the other; returns their directories.

    With `group`, each run records it (group.json: the group's name and its runs) for a joint comparison.
    Stopping a run of a queue cancels the runs after it. Settings no run can use are refused (ValueError)
    before anything is created.
    """
    for spec in specs:
        check_settings(spec)
    busy = active_run()
    if busy is not None:
        raise RuntimeError(f"A run is already training ({busy.name}); stop it or wait for it to finish.")
    root = Path(root or paths.runs_dir())
    dirs = [create_run(root, spec, (names or [""] * len(specs))[i], i if len(specs) > 1 else None,
                       "starting" if i == 0 else "queued") for i, spec in enumerate(specs)]
    for run_dir in dirs:
        if group:
            _write_json(run_dir / GROUP, {"name": group, "runs": [d.name for d in dirs]})
    _start_worker(dirs, processes=max(getattr(spec, "processes", 1) for spec in specs))
    return dirs


WORKER_NICE = 5  # on a busy machine the app's server (visitors' pages) gets about 3x the worker's CPU; idle, no cost


def _start_worker(dirs: list[Path], resume: bool = False, processes: int = 1) -> subprocess.Popen:
    """The worker process (`python -m core.trainer.runs DIRS`), or `processes` ranks of it under torchrun."""
    launcher = torchrun(processes) if processes > 1 else []
    with open(dirs[0] / "worker.log", "ab") as log:  # tracebacks of a crashed worker end up here
        command = [sys.executable, *launcher, "-m", "core.trainer.runs", *(["--resume"] * resume), *map(str, dirs)]
        worker = subprocess.Popen(command, cwd=paths.PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    threading.Thread(target=worker.wait, daemon=True, name=f"reap {dirs[0].name}").start()  # no zombie once it ends
    for run_dir in dirs:
        _workers[str(run_dir)] = worker
    return worker


def can_resume(run_dir: Path) -> bool:
    """Whether an interrupted run left the state to continue from (see `core.engine.resume`)."""
    return (Path(run_dir) / RESUME_FILE).is_file() and read_status(run_dir).get("state") == "interrupted"


def resume_run(run_dir: Path) -> Path:
    """Continue an interrupted run in a new worker, from the end of its last finished epoch."""
    busy = active_run()
    if busy is not None:
        raise RuntimeError(f"A run is already training ({busy.name}); stop it or wait for it to finish.")
    if not can_resume(run_dir):
        raise RuntimeError(f"{Path(run_dir).name} cannot be resumed: it is not interrupted or saved no finished epoch.")
    _write_json(Path(run_dir) / STATUS, {**_read_json(Path(run_dir) / STATUS), "state": "starting"})
    _start_worker([Path(run_dir)], resume=True, processes=read_spec(run_dir).get("processes", 1))
    return Path(run_dir)


def read_spec(run_dir: Path) -> dict:
    """The run's spec.json as a dict ({} when unreadable)."""
    return _read_json(Path(run_dir) / SPEC)


def read_group(run_dir: Path) -> dict:
    """{'name', 'runs': [run dir names]} for a run started as part of a group, else {}."""
    return _read_json(Path(run_dir) / GROUP)


def train_run(run_dir: Path, spec, resume: bool = False, observe=None, stopped_message=None):
    """Train `spec` in this process into `run_dir` (events, status, checkpoint), obeying the run folder's stop and
    learning-rate orders; returns the card, or None when the run failed or was stopped before training.
    `observe(event, control)` sees every event (a sweep's pruner); `stopped_message()` may explain a stop."""
    control, buffer, last = RunControl(), [], {"flush": 0.0, "poll": 0.0, "lr": None}
    write_json = _write_json if distributed.is_main() else (lambda path, obj: None)  # under torchrun: rank 0 writes
    started = _read_json(run_dir / STATUS).get("started", time.time()) if resume else time.time()

    def flush() -> None:
        if buffer:
            with open(run_dir / EVENTS, "a") as fh:
                fh.write("".join(buffer))
            buffer.clear()
        last["flush"] = time.time()

    def on_event(event: Event) -> None:
        buffer.append(json.dumps(dataclasses.asdict(event)) + "\n")
        now = time.time()
        if event.kind != "step" or now - last["flush"] > FLUSH_SECONDS:
            flush()
        if now - last["poll"] > 0.2:  # orders from any tab, through the run directory
            last["poll"] = now
            orders = _read_json(run_dir / CONTROL)
            if orders.get("stop"):
                control.stop()
            if orders.get("lr") and orders["lr"] != last["lr"]:
                last["lr"] = orders["lr"]
                control.set_lr(float(orders["lr"]))
        if observe is not None:
            observe(event, control)

    write_json(run_dir / STATUS, {"state": "running", "started": started, "pid": os.getpid()})
    try:
        if getattr(spec, "folds", 0) > 1:
            from core.trainer.crossval import cross_validate

            cv = cross_validate(spec, spec.folds, on_event, control)
            flush()
            write_json(run_dir / STATUS, {
                "state": "stopped" if control.stop_requested else "finished", "started": started, "ended": time.time(),
                "message": f"{cv['k']}-fold cross-validation: {cv['completed']} fold(s) done.", "cv": cv,
                "test_accuracy": None, "train_seconds": cv["train_seconds"]})
            return
        card = run(spec, on_event, control, out=run_dir, resume=resume)
        flush()
        training = card.training
        state = {"diverged": "diverged", "stopped": "stopped"}.get(training["stop_reason"], "finished")
        head = card.headline
        message = (stopped_message() if stopped_message and state == "stopped" else None) or training["message"]
        write_json(run_dir / STATUS, {"state": state, "started": started, "ended": time.time(),
                                       "message": message, "train_seconds": training["train_seconds"],
                                       "test_accuracy": card.metrics.get("test_accuracy"),
                                       "headline": {"label": head.label, "value": head.value,
                                                    "words": head.describe()} if head else None})
        return card
    except StoppedWhilePreparing as exc:
        flush()
        write_json(run_dir / STATUS, {"state": "stopped", "started": started, "ended": time.time(),
                                      "message": str(exc)})
    except Exception as exc:  # noqa: BLE001  (whatever broke, the page must learn it from status.json)
        flush()
        write_json(run_dir / STATUS, {"state": "failed", "started": started, "ended": time.time(),
                                       "message": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
    return None


def request_stop(run_dir: Path) -> None:
    _write_json(Path(run_dir) / CONTROL, {**_read_json(Path(run_dir) / CONTROL), "stop": True})


def set_learning_rate(run_dir: Path, lr: float) -> None:
    _write_json(Path(run_dir) / CONTROL, {**_read_json(Path(run_dir) / CONTROL), "lr": float(lr)})


def _worker_alive(run_dir: Path, status: dict) -> bool:
    """Whether the run's worker process still runs: ours, or (after a server restart) the pid it recorded."""
    worker = _workers.get(str(run_dir))
    if worker is not None:
        return worker.poll() is None
    try:
        cmdline = Path(f"/proc/{int(status.get('pid', 0))}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"core.trainer.runs" in cmdline and str(run_dir).encode() in cmdline


def read_status(run_dir: Path) -> dict:
    """status.json, with 'interrupted' (and the epoch it reached) for a run whose worker died mid-run."""
    status = _read_json(Path(run_dir) / STATUS)
    if status.get("state") in ("starting", "running", "queued") and not _worker_alive(Path(run_dir), status):
        epoch = _read_json(Path(run_dir) / "card.json").get("run", {}).get("epoch", 0)
        status = {**status, "state": "interrupted", "epoch": epoch, "message": (
            f"Interrupted at epoch {epoch}: the worker stopped before the run ended. The model of epoch {epoch} "
            "is saved (the other pages list it) and Resume continues the run from there." if epoch else
            "Interrupted before its first epoch ended: nothing was saved. Start the run again.")}
    return status


def read_events(run_dir: Path) -> dict[str, list[dict]]:
    """The run's events so far, by kind: {'step': [...], 'eval': [...], 'epoch': [...], 'end': [...]}."""
    out: dict[str, list[dict]] = {"step": [], "eval": [], "epoch": [], "end": []}
    try:
        lines = (Path(run_dir) / EVENTS).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        out.setdefault(event.get("kind", "?"), []).append(event)
    return out


def uploads_dir() -> Path:
    """Where image-folder zips uploaded on the trainer page are kept (beside the runs that use them)."""
    return paths.runs_dir() / "_uploads"


def uploaded_datasets() -> list[str]:
    """Registry names (`folder:PATH`) of the uploaded image-folder zips, oldest first."""
    return [f"folder:{p}" for p in sorted(uploads_dir().glob("*.zip"), key=lambda p: p.stat().st_mtime)]


def list_runs(root: Path | None = None) -> list[tuple[Path, dict, dict]]:
    """(run dir, spec, status) for every run under `root`, newest first."""
    root = Path(root or paths.runs_dir())
    runs = [(d, _read_json(d / SPEC), read_status(d)) for d in root.glob("*") if (d / SPEC).is_file()]
    return sorted(runs, key=lambda r: r[0].name, reverse=True)


def summarize(run_dir: Path, spec: dict, status: dict) -> dict:
    """One comparison-table row: the run's data, model, key settings, accuracy and time."""
    card = _read_json(Path(run_dir) / "card.json")  # the table shows what is there, even a card from an old version
    cfg, aug = spec.get("config", {}), spec.get("augment", {})
    epochs = read_events(run_dir)["epoch"]
    augment = ", ".join(f"{k} {v}" for k, v in aug.items() if v) or "none"
    return {"run": Path(run_dir).name, "state": status.get("state", "?"), "data set": spec.get("dataset"),
            "model": spec.get("model", spec.get("kind")), "parameters": card.get("params"),
            "epochs": len(epochs),
            "optimizer": cfg.get("optimizer"), "lr": cfg.get("lr"), "schedule": cfg.get("schedule"),
            "batch": cfg.get("batch_size"), "augmentation": augment,
            "best val accuracy": max((e["val"].get("accuracy", 0) for e in epochs if e["val"]), default=None),
            "test accuracy": status.get("test_accuracy"), "train s": status.get("train_seconds"),
            "k-fold accuracy": (status.get("cv") or {}).get("mean")}


def wait(run_dir: Path, timeout: float = 600.0) -> dict:
    """Block until the run's worker ends (tests and scripts); returns its final status."""
    worker = _workers.get(str(run_dir))
    if worker is not None:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            pass  # still training: the status says so
    return read_status(run_dir)


if __name__ == "__main__":  # the worker: python -m core.trainer.runs [--resume] RUN_DIR [RUN_DIR ...], trained in order
    os.nice(WORKER_NICE)
    resuming = sys.argv[1:2] == ["--resume"]
    folders = [Path(a) for a in sys.argv[1 + resuming:]]
    for i, folder in enumerate(folders):
        if i and _read_json(folders[i - 1] / STATUS).get("state") == "stopped":
            for rest in folders[i:]:
                _write_json(rest / STATUS, {"state": "cancelled", "message": "Cancelled: an earlier run of the "
                                            "queue was stopped.", "ended": time.time()})
            break
        train_run(folder, spec_from_dict(_read_json(folder / SPEC)), resume=resuming and i == 0)
