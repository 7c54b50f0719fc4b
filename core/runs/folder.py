"""A run folder: what a background run leaves on disk, read and written here only.

A run folder holds `spec.json` (its recipe, any kind), `status.json` (its state, with the worker's pid),
`events.jsonl` (the engine's event stream), `control.json` (orders from any tab: stop, a new learning
rate), `group.json` (for runs started together) and, from the first finished epoch on, a checkpoint.
Owns the names of those files, reading them (a half-written line is skipped), new run folders (named
through `core.paths.safe_name`, the one place a name becomes part of a path), and the comparison table's row. Does not own the worker processes
(`core.runs.service`) or training.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from core import paths
from core.paths import safe_name
from core.engine.recipe import recipe_from_dict
from core.errors import ProjectError, SettingsError

SPEC, EVENTS, STATUS, CONTROL, GROUP = "spec.json", "events.jsonl", "status.json", "control.json", "group.json"


def write_json(path: Path, obj: dict) -> None:
    paths.replace_atomically(Path(path), lambda tmp: tmp.write_text(json.dumps(obj)))  # never half a file


def read_json(path: Path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def new_run_dir(root: Path, spec, name: str = "", position: int | None = None) -> Path:
    """A new run directory named by time (and queue position), so names sort in start order."""
    stem = safe_name(name or str(getattr(spec, "dataset", spec.kind)))
    model = safe_name(str(getattr(spec, "model", spec.kind)))
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("" if position is None else f"-{position}")
    for i in range(100):
        run_dir = Path(root) / (stamp + f"{'' if i == 0 else f'.{i}'}_{stem}_{model}")
        if not run_dir.exists():
            run_dir.mkdir(parents=True)
            return run_dir
    raise SettingsError(f"cannot create a run directory under {root}: 100 runs started this second.")


def read_spec(run_dir: Path) -> dict:
    """The run's spec.json as a dict ({} when unreadable)."""
    return read_json(Path(run_dir) / SPEC)


def read_recipe(run_dir: Path):
    """The run's recipe (None when its spec.json is unreadable or names a kind this CNN Studio lacks)."""
    try:
        return recipe_from_dict(read_spec(run_dir))
    except (ProjectError, TypeError):
        return None


def read_group(run_dir: Path) -> dict:
    """{'name', 'runs': [run dir names]} for a run started as part of a group, else {}."""
    return read_json(Path(run_dir) / GROUP)


def read_events(run_dir: Path) -> dict[str, list[dict]]:
    """The run's events so far, by kind: {'step': [...], 'eval': [...], 'epoch': [...], 'end': [...]}. Steps a
    resumed run did again (after a crash, its worker had written steps past the saved epoch) count once: the
    later ones replace them."""
    out: dict[str, list[dict]] = {"step": [], "eval": [], "epoch": [], "end": []}
    try:
        lines = (Path(run_dir) / EVENTS).read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if not isinstance(event, dict):
            continue
        kind = event.get("kind", "?")
        series = out.setdefault(kind, [])
        if kind in ("step", "eval", "epoch") and series and _at(event) <= _at(series[-1]):
            while series and _at(series[-1]) >= _at(event):  # a resume went back: drop what it redoes
                series.pop()
        series.append(event)
    return out


def _at(event: dict) -> tuple:
    return event.get("step", 0), event.get("epoch", 0)


def summarize(run_dir: Path, spec: dict, status: dict) -> dict:
    """One comparison-table row: the run's data, model, key settings, accuracy and time."""
    card = read_json(Path(run_dir) / "card.json")  # the table shows what is there, even a card from an old version
    recipe = read_recipe(run_dir)
    cfg = recipe.train_config() if recipe is not None else None
    aug = getattr(recipe, "augment", None)
    events = read_events(run_dir)
    augment = ", ".join(f"{k} {v}" for k, v in vars(aug).items() if v) if aug is not None else ""
    steps = events["step"]
    return {"run": Path(run_dir).name, "state": status.get("state", "?"), "data set": spec.get("dataset"),
            "model": spec.get("model", spec.get("kind")), "parameters": card.get("params"),
            "test accuracy": status.get("test_accuracy"), "ECE": card.get("metrics", {}).get("ece"),
            "ECE calibrated": card.get("metrics", {}).get("ece_calibrated"),
            "best val accuracy": max((e["val"].get("accuracy", 0) for e in events["epoch"] if e["val"]), default=None),
            "train s": status.get("train_seconds"), "epochs": len(events["epoch"]),
            "optimizer": cfg and cfg.optimizer, "lr": cfg and cfg.lr,
            "lr at the end": steps[-1]["lr"] if steps else None, "schedule": cfg and cfg.schedule,
            "batch": cfg and cfg.batch_size, "augmentation": augment or "none",
            "k-fold accuracy": (status.get("cv") or {}).get("mean")}
