"""What the Trainer says about a run, as words, tables and figures: its progress line, its live pictures, the
end-of-run summary of any recipe kind, a k-fold run's folds and a group's comparison.

Pure data shaping over the run folders (`core.runs.folder`), asking each run's recipe class about its kind; the
page only places what these functions return.
"""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np

from core import paths
from core.engine.recipe import kind_of_task
from core.engine.run import SAMPLES_FILE
from core.plots import line_figure
from core.runs.folder import read_events, read_group, read_recipe, read_spec, summarize
from core.runs.service import read_status

# this machine's own `python -m bench.transfer` run if there is one, else the measurement shipped with the project
TRANSFER_BENCH = [paths.PROJECT_ROOT / "bench" / folder / "transfer.json" for folder in ("results", "reference")]
WORKING = ("queued", "starting", "running")


def live_metric(run_dir: Path) -> tuple[str, str, bool]:
    """(event metric, chart title, whether it is a proportion) of the run's recipe kind."""
    recipe = read_recipe(run_dir)
    return recipe.live if recipe is not None else ("accuracy", "accuracy", True)


def progress_line(status: dict, events: dict[str, list[dict]]) -> tuple[float, str]:
    """(fraction done, one line of words) for the run's progress bar, before and after its first step."""
    state, steps = status.get("state", "?"), events["step"]
    if not steps:  # loading the data, or extracting a pretrained model's features
        prep = (events.get("prepare") or [{"done": 0, "total": 1, "message": "preparing the data..."}])[-1]
        return prep["done"] / max(prep["total"], 1), f"{state}: {prep['message']}"
    last, recent = steps[-1], steps[-20:]
    speed = sum(s["images_per_s"] for s in recent) / len(recent)
    text = (f"{state}: epoch {last['epoch']}, step {last['step']}, loss {last['loss']:.4f}, lr {last['lr']:.2e}, "
            f"{speed:,.0f} images/s")
    elapsed = time.time() - status.get("started", time.time())
    if state == "running" and last["progress"] >= 0.05 and elapsed >= 5:  # earlier, an estimate is noise
        text += f", about {elapsed * (1 - last['progress']) / max(last['progress'], 1e-9):,.0f} s left"
    return min(last["progress"], 1.0), text


def current_lr(run_dir: Path, events: dict[str, list[dict]]) -> float:
    """The learning rate the run uses now: the last step's, else (before the first step) the recipe's."""
    if events["step"]:
        return events["step"][-1]["lr"]
    recipe = read_recipe(run_dir)
    return recipe.train_config().lr if recipe is not None else 1e-3


def monitor_figure(monitor: list[dict]):
    """The recipe's numeric per-epoch measurements (e.g. BLEU-4) as one chart, or None before two epochs."""
    last = monitor[-1]["metrics"] if monitor else {}
    keys = [k for k, v in last.items() if isinstance(v, (int, float))]
    if not keys or len(monitor) < 2:
        return None
    return line_figure({k.replace("_", " "): [(m["epoch"], m["metrics"][k]) for m in monitor] for k in keys},
                       "epoch", title="measured after each epoch")


def latest_picture(run_dir: Path) -> np.ndarray | None:
    """The recipe's latest live picture (e.g. reconstructions), or None while there is none."""
    try:
        with np.load(Path(run_dir) / SAMPLES_FILE) as files:
            return files["pictures"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def picture_caption(monitor: list[dict]) -> str:
    """What the latest live picture shows, e.g. 'After epoch 3: top: test images; bottom: reconstructions'."""
    return f"After epoch {monitor[-1]['epoch']}: {monitor[-1].get('caption', '')}"


def result_summary(card, status: dict) -> str:
    """One sentence on a finished run: its headline, training time, and where its model is now offered."""
    head = card.headline.describe() if card.headline else "Trained"
    m, section = card.metrics, card.section("calibration") or {}
    fitted = section.get("fitted_on", "the validation split")
    none = section.get("without_temperature", "hold out a validation share to calibrate")
    calibration = (f" Calibration: ECE {m['ece']:.4f}" + (f", {m['ece_calibrated']:.4f} after temperature scaling "
                                                          f"(T = {m['temperature']:.2f}, fitted on {fitted})"
                                                          if "ece_calibrated" in m else f" ({none})") + ".") \
        if "ece" in m else ""
    return (f"**{head}** after {card.training.get('train_seconds', 0):,.1f} s of training.{calibration} "
            f"{status.get('message', '')} The model is now offered on {kind_of_task(card.task).pages}.")


def metric_table(card) -> dict[str, list]:
    """A card's test metrics as rows: per-class accuracy for a classifier, every number for other kinds."""
    if card.task == "classification" and card.metrics.get("test_per_class"):
        per_class = card.metrics["test_per_class"]
        return {"class": list(per_class), "test accuracy": [f"{v:.1%}" for v in per_class.values()]}
    flat = {k: v for k, v in card.metrics.items() if isinstance(v, (int, float))}
    flat.update({f"{k} {s} {m}": v for k, d in card.metrics.items() if isinstance(d, dict)
                 for s, sub in d.items() if isinstance(sub, dict) for m, v in sub.items() if m != "n"})
    return {"test metric": list(flat), "value": [f"{v:.4g}" for v in flat.values()]}


def cv_summary(cv: dict) -> str:
    """One sentence on a k-fold run: mean held-out accuracy and its spread."""
    spread = f" +/- {cv['std']:.2%} (standard deviation)" if cv["completed"] > 1 else ""
    return (f"**{cv['k']}-fold cross-validation**: held-out accuracy **{cv['mean']:.2%}**{spread} over "
            f"{cv['completed']} fold(s), {cv['train_seconds']:.1f} s of training.")


def group_report(dirs: list[Path]) -> dict:
    """A group of runs trained one after the other: {"waiting": sentence} while any trains, {"failed": sentence}
    when fewer than two finished, else {"rows", "dirs", "sentence", "events"} of the comparison."""
    states = [read_status(d).get("state", "?") for d in dirs]
    if any(s in WORKING for s in states):
        return {"waiting": "Training " + ", then ".join(f"`{d.name}` ({s})" for d, s in zip(dirs, states))
                + ". The comparison appears here when all are done."}
    done = [d for d in dirs if (d / "card.json").is_file()]
    if len(done) < 2:
        return {"failed": "Fewer than two runs of the group finished (" + ", ".join(states) + "): nothing to compare."}
    rows = [summarize(d, read_spec(d), read_status(d)) for d in done]
    best = max(rows, key=lambda r: r["test accuracy"] or 0)
    sentence = " ".join(
        f"**{best['model']}** reaches **{best['test accuracy']:.2%}** test accuracy, "
        f"**{100 * (best['test accuracy'] - r['test accuracy']):.2f} points** above **{r['model']}** "
        f"({r['test accuracy']:.2%}); it trained in {best['train s']:.1f} s against {r['train s']:.1f} s "
        f"({best['train s'] / max(r['train s'], 1e-9):.1f}x the time), with {best['parameters']:,} parameters "
        f"against {r['parameters']:,}." for r in rows if r is not best)
    return {"rows": rows, "dirs": done, "sentence": sentence, "name": read_group(dirs[0]).get("name", "group"),
            "events": {r["model"]: read_events(d) for r, d in zip(rows, done)}}


def transfer_benchmark() -> dict | None:
    """The data-efficiency measurement of `python -m bench.transfer` (this machine's, else the shipped one)."""
    try:
        return json.loads(next(p for p in TRANSFER_BENCH if p.is_file()).read_text())
    except (StopIteration, OSError, ValueError):
        return None


def history_events(card) -> dict[str, list[dict]]:
    """A finished checkpoint's per-epoch history as the events the live chart draws (a point per epoch), so a
    shipped model's training can be shown before the user has a run of their own."""
    training = card.training
    per_epoch = max(1, training.get("steps", 0) // max(training.get("epochs", 1), 1))
    epochs, steps = [], []
    for h in training.get("history", []):
        train = {k[len("train_"):]: v for k, v in h.items() if k.startswith("train_")}
        val = {k[len("val_"):]: v for k, v in h.items() if k.startswith("val_")}
        step = h["epoch"] * per_epoch
        epochs.append({"epoch": h["epoch"], "step": step, "train": train, "val": val})
        steps.append({"step": step, "loss": train.get("loss", 0.0), "lr": h.get("lr", 0.0), "metrics": {}})
    return {"step": steps, "epoch": epochs, "eval": []}


def transfer_caption(bench: dict) -> str:
    return (f"From `python -m bench.transfer` ({bench['threads']} CPU threads, {bench['resolution']} px images). With "
            "few images per class the pretrained features win by far; the from-scratch runs had a CPU time budget "
            "each, so the 'all' point is below what long training reaches.")
