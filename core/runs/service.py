"""Background runs whose state lives in a run folder, not in a browser session: start, watch, stop, change the
learning rate, resume, reap. For every model kind; this package imports none.

A run trains in a worker process (`python -m core worker RUN_DIR ...`, its own interpreter, so the web server's
Python work never slows the training loop and a crash in training cannot take the server down), which writes
the run folder (`core.runs.folder`) and takes orders from its control.json. A run whose worker died reads as
"interrupted at epoch k", even after a server restart (status.json keeps the worker's pid), and Resume
continues it. Only one run trains at a time: this machine has two cores. Does not own training itself
(`core.runs.worker`, `core.engine.run`) or any UI.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from core import paths
from core.engine import distributed
from core.engine.recipe import recipe_to_dict
from core.engine.resume import RESUME_FILE
from core.engine.settings import check_settings
from core.errors import ProjectError
from core.runs.folder import (CONTROL, GROUP, SPEC, STATUS, new_run_dir, read_json, read_recipe, read_spec,
                              write_json)

WORKER_NICE = 5  # on a busy machine the app's server (visitors' pages) gets about 3x the worker's CPU; idle, no cost
_workers: dict[str, subprocess.Popen] = {}  # run dir -> its worker process


class Busy(ProjectError, RuntimeError):
    """A run is already training (this machine trains one at a time)."""


def active_run() -> Path | None:
    """The run this process is training now (or the next of a queue about to start), if any."""
    waiting = None
    for run_dir, worker in _workers.items():
        state = read_json(Path(run_dir) / STATUS).get("state")
        if worker.poll() is None and state in ("starting", "running"):  # a finished worker may still be exiting
            return Path(run_dir)
        if worker.poll() is None and state == "queued":
            waiting = waiting or Path(run_dir)
    return waiting


def _refuse_if_busy() -> None:
    busy = active_run()
    if busy is not None:
        raise Busy(f"A run is already training ({busy.name}); stop it or wait for it to finish.")


def create_run(root: Path, spec, name: str = "", position: int | None = None, state: str = "starting") -> Path:
    """A new run folder holding the run's spec.json and status.json: listed, watchable, trainable."""
    run_dir = new_run_dir(Path(root), spec, name, position)
    write_json(run_dir / SPEC, recipe_to_dict(spec))
    write_json(run_dir / STATUS, {"state": state, "started": time.time()})
    return run_dir


def start_run(spec, root: Path | None = None, name: str = "") -> Path:
    """Create a run directory and start training `spec` in a worker process; returns the directory."""
    return start_runs([spec], root=root, names=[name])[0]


def start_runs(specs: list, root: Path | None = None, names: list[str] | None = None, group: str = "") -> list[Path]:
    """Queue runs that one worker process trains one after the other; returns their directories.

    With `group`, each run records it (group.json: the group's name and its runs) for a joint comparison.
    Stopping a run of a queue cancels the runs after it. Settings no run can use are refused (SettingsError)
    before anything is created.
    """
    for spec in specs:
        check_settings(spec)
    _refuse_if_busy()
    root = Path(root or paths.runs_dir())
    dirs = [create_run(root, spec, (names or [""] * len(specs))[i], i if len(specs) > 1 else None,
                       "starting" if i == 0 else "queued") for i, spec in enumerate(specs)]
    for run_dir in dirs:
        if group:
            write_json(run_dir / GROUP, {"name": group, "runs": [d.name for d in dirs]})
    _start_worker(dirs, processes=max(getattr(spec, "processes", 1) for spec in specs))
    return dirs


def _start_worker(dirs: list[Path], resume: bool = False, processes: int = 1) -> subprocess.Popen:
    """The worker process (`python -m core worker DIRS`), or `processes` ranks of it under torchrun."""
    launcher = distributed.torchrun(processes) if processes > 1 else []
    with open(dirs[0] / "worker.log", "ab") as log:  # tracebacks of a crashed worker end up here
        command = [sys.executable, *launcher, "-m", "core", "worker", *(["--resume"] * resume), *map(str, dirs)]
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
    _refuse_if_busy()
    if not can_resume(run_dir):
        raise Busy(f"{Path(run_dir).name} cannot be resumed: it is not interrupted or saved no finished epoch.")
    write_json(Path(run_dir) / STATUS, {**read_json(Path(run_dir) / STATUS), "state": "starting"})
    _start_worker([Path(run_dir)], resume=True, processes=getattr(read_recipe(run_dir), "processes", 1))
    return Path(run_dir)


def request_stop(run_dir: Path) -> None:
    write_json(Path(run_dir) / CONTROL, {**read_json(Path(run_dir) / CONTROL), "stop": True})


def set_learning_rate(run_dir: Path, lr: float) -> None:
    write_json(Path(run_dir) / CONTROL, {**read_json(Path(run_dir) / CONTROL), "lr": float(lr)})


def _worker_alive(run_dir: Path, status: dict) -> bool:
    """Whether the run's worker process still runs: ours, or (after a server restart) the pid it recorded."""
    worker = _workers.get(str(run_dir))
    if worker is not None:
        return worker.poll() is None
    try:
        cmdline = Path(f"/proc/{int(status.get('pid', 0))}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"\0worker\0" in cmdline and str(run_dir).encode() in cmdline


def read_status(run_dir: Path) -> dict:
    """status.json, with 'interrupted' (and the epoch it reached) for a run whose worker died mid-run."""
    status = read_json(Path(run_dir) / STATUS)
    if status.get("state") in ("starting", "running", "queued") and not _worker_alive(Path(run_dir), status):
        epoch = read_json(Path(run_dir) / "card.json").get("run", {}).get("epoch", 0)
        status = {**status, "state": "interrupted", "epoch": epoch, "message": (
            f"Interrupted at epoch {epoch}: the worker stopped before the run ended. The model of epoch {epoch} "
            "is saved (the other pages list it) and Resume continues the run from there." if epoch else
            "Interrupted before its first epoch ended: nothing was saved. Start the run again.")}
    return status


def list_runs(root: Path | None = None) -> list[tuple[Path, dict, dict]]:
    """(run dir, spec, status) for every run under `root`, newest first."""
    root = Path(root or paths.runs_dir())
    runs = [(d, read_spec(d), read_status(d)) for d in root.glob("*") if (d / SPEC).is_file()]
    return sorted(runs, key=lambda r: r[0].name, reverse=True)


def uploads_dir() -> Path:
    """Where image-folder zips uploaded on the trainer page are kept (beside the runs that use them)."""
    return paths.runs_dir() / "_uploads"


def uploaded_datasets() -> list[str]:
    """Registry names (`folder:PATH`) of the uploaded image-folder zips, oldest first."""
    return [f"folder:{p}" for p in sorted(uploads_dir().glob("*.zip"), key=lambda p: p.stat().st_mtime)]


def wait(run_dir: Path, timeout: float = 600.0) -> dict:
    """Block until the run's worker ends (tests and scripts); returns its final status."""
    worker = _workers.get(str(run_dir))
    if worker is not None:
        try:
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            pass  # still training: the status says so
    return read_status(run_dir)


def worker_nice() -> None:
    """Lower the worker's priority, so visitors' pages come first on a busy machine."""
    if hasattr(os, "nice"):
        os.nice(WORKER_NICE)
