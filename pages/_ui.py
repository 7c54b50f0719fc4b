"""The UI helpers every page uses: the page's title, action buttons, session memos, background jobs (threads
whose progress a fragment watches), number formats, the data-set cache and the sample note. Pure UI: every
computation is a call into `core`.

The other helper modules hold one concern each: `_models` (choosing a model, the caches of models and what is
computed from them, uploads), `_inputs` (choosing an image: the drawing pad, uploads, test images, sample
photos) and `_training` (the Trainer's settings form and live view). Importing this module registers every model kind
(`core.kinds`), so any card a page meets can be read.
"""
from __future__ import annotations

import atexit
import threading

import numpy as np
import streamlit as st

import core.kinds  # noqa: F401  (every model kind and its card rules)
from core import paths
from core.data import readable_name
from core.data.samples import load_or_sample
from pages import old_style_run

SHARED_INPUT = "shared_input"  # session key: the latest drawing or upload, the default input of other pages
PERCENT = st.column_config.NumberColumn(format="percent")  # a proportion shown as a percentage
PLAIN = {"delta_color": "off", "delta_arrow": "off"}  # a metric whose second line is words, not a change


def page_title(text: str | None = None):
    """The page's first element: its title (or an empty slot for it), once this run is a normal one: an old-style
    run is rerun once per session through the entry script's navigation (pages/__init__)."""
    if old_style_run() and not st.session_state.get("_old_style_rerun"):
        st.session_state["_old_style_rerun"] = True
        st.rerun()
    return st.title(text) if text else st.empty()


def remembered(key: str, memo, compute):
    """`compute()` once per `memo` in this session (e.g. an attribution that takes a second), then reused."""
    if st.session_state.get(key, (None,))[0] != memo:
        st.session_state[key] = (memo, compute())
    return st.session_state[key][1]


def pressed(label: str, key: str, where=st, **options) -> bool:
    """An action button whose press is never lost (a component's message can cut short the run a click starts):
    the click's callback leaves a flag that the next run to reach the button takes."""
    where.button(label, key=key, on_click=st.session_state.__setitem__, args=(f"{key}__pressed", True), **options)
    return bool(st.session_state.pop(f"{key}__pressed", False))


class _Stopped(Exception):
    """Raised in a job's progress report once the server is shutting down."""


_STOP, _THREADS = threading.Event(), []


@atexit.register
def _stop_jobs() -> None:
    """At exit, jobs stop at their next progress report and are waited for: a thread killed inside a torch call
    would abort the process."""
    _STOP.set()
    for thread in _THREADS:
        thread.join(timeout=30)


@st.cache_resource(show_spinner=False)
def jobs() -> dict:
    """This server's background jobs by key: {"progress", "result", "error"}; shared by sessions, so a second visit
    (or a second visitor) finds the result."""
    return {}


def job(key: tuple, work) -> dict:
    """Start `work(report)` in a thread as job `key` (a failed or new key), and return its entry of `jobs()`;
    `report(fraction)` moves its progress. At most 256 are kept: the oldest finished goes first."""
    table = jobs()
    while len(table) >= 256:
        table.pop(next((k for k, j in table.items() if j["result"] is not None), next(iter(table))))
    entry = table[key] = {"progress": 0.0, "result": None, "error": None}

    def report(fraction: float) -> None:
        if _STOP.is_set():
            raise _Stopped
        entry["progress"] = fraction

    def run():
        try:
            entry["result"] = work(report)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the job starts again on the next visit
            entry["error"] = f"{type(exc).__name__}: {exc}"
    _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [threading.Thread(target=run, daemon=True)]
    _THREADS[-1].start()
    return entry


def pending(*entries) -> bool:
    """Whether any of these jobs is still running."""
    return any(e["result"] is None and not e["error"] for e in entries)


@st.cache_resource(show_spinner="Loading the data set...")
def cached_dataset(name: str):
    """A data set from the data directory, else its shipped sample (`Dataset.sample`); shared, never downloaded."""
    return load_or_sample(name)


def sample_note(ds, where=st) -> None:
    if ds.sample:  # say so when a page shows the shipped sample of a data set rather than the whole set
        where.caption(f"Showing the {len(ds.test_y):,} {readable_name(ds.name)} test images shipped with CNN Studio: "
                      f"the data set is not in {paths.data_dir()} (the README's Data section says where to put it).")


def warn_if_unfamiliar(model, card, image, trained_noise: float, noise: float, where=st) -> bool:
    """A composer model's "this does not look like what it was trained on" (its familiarity against the card's
    threshold, with both numbers), or where the card has no threshold, a warning when the noise exceeds training's.
    True when it warned: its answers are then shown but not to be trusted."""
    import torch

    from core.composer.multidigit import familiarity

    section = card.section("familiarity")
    if isinstance(section, dict) and {"low", "high"} <= set(section):
        score = float(familiarity(model, card, torch.from_numpy(np.asarray(image))[None, None])[0])
        if section["low"] <= score <= section["high"]:
            return False
        where.warning(f"This does not look like the images it was trained on: its familiarity (energy) {score:.2f} "
                      f"is {'below' if score < section['low'] else 'above'} the range {section['low']:.2f} to "
                      f"{section['high']:.2f} that holds 95 % of freshly composed held-out images, so the answer "
                      "below is what it would say if it had to, not one to trust.", icon=":material/help:")
        return True
    if noise > trained_noise:
        where.warning(f"Trained with noise {trained_noise:g}: at {noise:g} it sees images unlike any it was trained "
                      "on, and its answers and their confidence are not to be trusted.", icon=":material/warning:")
        return True
    return False


def show_answer(ans, classes: list[str], key: str, where=st) -> None:
    """A classifier's answer for one image (`core.classifier.ood.answer`): the prediction with its confidence, or
    "this does not look like any class it knows" (with the score and the threshold) while the ranked classes stay
    visible; calibrated probabilities, with a toggle to see the raw ones."""
    from core.charts import probability_chart

    raw = ans.temperature is not None and not where.toggle(
        f"Calibrated probabilities (temperature {ans.temperature:.2f})", True, key=f"{key}_calibrated",
        help="Temperature scaling, fitted on held-out training images: the confidence matches how often answers "
             "like it are right. Off: the model's raw softmax.")
    probs = ans.raw if raw else ans.probs
    top = int(probs.argmax())
    if ans.known:
        where.metric("Prediction", str(classes[top]), f"{probs[top]:.1%} confident", **PLAIN)
    else:
        where.metric("Prediction", "none of these", f"nearest: {classes[top]} ({probs[top]:.1%})", **PLAIN)
        where.warning(f"This does not look like any class it knows: its energy score {ans.score:.2f} is below the "
                      f"threshold {ans.threshold:.2f} that 95 % of its test images pass. The ranked classes below are "
                      "what it would answer if it had to.", icon=":material/help:")
    where.plotly_chart(probability_chart(probs, classes), width="stretch", key=f"{key}_probs")
