"""The Trainer's views of a run: live progress, charts and the recipe's pictures while it trains, then its results.

Pure UI over `core.trainer.runs`: a run's recorded events and files drawn as charts and pictures.
"""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import streamlit as st

from core.engine.recipe import SAMPLES_FILE
from core.plots import confusion_figure, line_figure, training_figure
from core.trainer.recipes import KINDS
from core.trainer.runs import read_events, read_spec, read_status, request_stop, set_learning_rate
from pages._common import cached_checkpoint, enlarge


PAGES_OF = {"classification": "Draw and Inside the network", "reconstruction": "Latent space",
            "multi_digit": "Multi-MNIST composer", "digit_string": "Multi-MNIST composer (sequence mode)",
            "captioning": "Caption generator"}  # where a finished run's model is offered


def recipe_class(spec: dict) -> type:
    """The recipe class a run's spec.json describes (a spec without a kind is a classifier's)."""
    return KINDS[spec.get("kind", "classifier")]


def live_pictures(run_dir: Path, monitor: list[dict]) -> None:
    """The recipe's live views: its per-epoch metrics (e.g. BLEU-4) and its latest pictures."""
    last = monitor[-1]
    keys = [key for key in last["metrics"] if isinstance(last["metrics"][key], (int, float))]
    left, right = st.columns([2, 3])
    if keys and len(monitor) > 1:
        names = {key: key.replace("_", " ") for key in keys}
        left.plotly_chart(line_figure({names[key]: [(m["epoch"], m["metrics"][key]) for m in monitor] for key in keys},
                                      "epoch", title="measured after each epoch"), width="stretch", key="trainer_monitor")
    try:
        with np.load(Path(run_dir) / SAMPLES_FILE) as files:
            picture = files["pictures"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return
    right.image(enlarge(picture, 720, square=False), caption=f"After epoch {last['epoch']}: {last.get('caption', '')}")


def live_run(run_dir: Path) -> None:
    """A run's progress bar, live charts and controls (Stop, a new learning rate); reruns the app once it ends."""
    status, events = read_status(run_dir), read_events(run_dir)
    steps, state = events["step"], status.get("state", "?")
    if steps:
        s = steps[-1]
        elapsed = time.time() - status.get("started", time.time())
        eta = elapsed * (1 - s["progress"]) / max(s["progress"], 1e-9)
        speed = sum(x["images_per_s"] for x in steps[-20:]) / len(steps[-20:])
        st.progress(min(s["progress"], 1.0), text=f"{state}: epoch {s['epoch']}, step {s['step']}, loss "
                    f"{s['loss']:.4f}, lr {s['lr']:.2e}, {speed:,.0f} images/s" +
                    (f", about {eta:.0f} s left" if state == "running" else ""))
    else:  # before the first step: loading the data, or extracting a pretrained model's features
        prep = (events.get("prepare") or [{"done": 0, "total": 1, "message": "preparing the data..."}])[-1]
        st.progress(prep["done"] / max(prep["total"], 1), text=f"{state}: {prep['message']}")
    metric, title, proportion = recipe_class(read_spec(run_dir)).live
    st.plotly_chart(training_figure(events, metric, title, proportion), width="stretch", key="trainer_chart")
    monitor = events.get("monitor", [])
    if monitor:
        live_pictures(run_dir, monitor)
    if state == "running":
        left, mid, right = st.columns([2, 2, 1])
        new_lr = left.number_input("Change the learning rate now", 1e-6, 2.0, steps[-1]["lr"] if steps else 1e-3,
                                   format="%.6f", key="trainer_new_lr")
        if mid.button("Apply learning rate", key="trainer_apply_lr"):
            set_learning_rate(run_dir, new_lr)
        if right.button("Stop", icon=":material/stop:", key="trainer_stop"):
            request_stop(run_dir)
    elif st.session_state.get("trainer_shown") != (run_dir.name, state):
        st.session_state["trainer_shown"] = (run_dir.name, state)
        st.rerun(scope="app")  # the run ended: draw the results below once


def run_results(run_dir: Path, status: dict) -> None:
    """The end of a finished run: its headline, then the views of its kind (confusion matrix, metrics)."""
    model, card = cached_checkpoint(str(run_dir))
    head = card.headline
    st.success(f"**{head.describe() if head else 'Trained'}** after {card.training.get('train_seconds', 0):,.1f} s of "
               f"training. {status.get('message', '')} The model is now offered on {PAGES_OF[card.task]}.")
    left, right = st.columns([3, 2])
    if card.task == "classification" and card.metrics.get("test_confusion"):
        left.plotly_chart(confusion_figure(card.metrics["test_confusion"], card.dataset.class_names), width="stretch",
                          key="trainer_confusion")
        right.dataframe({"class": list(card.metrics["test_per_class"]),
                         "test accuracy": [f"{v:.1%}" for v in card.metrics["test_per_class"].values()]},
                        hide_index=True, width="stretch")
    else:
        flat = {k: v for k, v in card.metrics.items() if isinstance(v, (int, float))}
        flat.update({f"{k} {s} {m}": v for k, d in card.metrics.items() if isinstance(d, dict)
                     for s, sub in d.items() if isinstance(sub, dict) for m, v in sub.items() if m != "n"})
        left.dataframe({"test metric": list(flat), "value": [f"{v:.4g}" for v in flat.values()]}, hide_index=True,
                       width="stretch")  # the recipe's pictures are in the run's view above
    right.code(card.command or "", language="bash", wrap_lines=True)
