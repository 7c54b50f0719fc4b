"""Trainer: pick a recipe of any model kind, set it up, watch it learn live, and inspect the result."""
import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from core.plots import confusion_figure, efficiency_figure, folds_figure, training_figure
from core.trainer import report
from core.trainer.presets import GROUPS, PRESETS, preset
from core.trainer.runs import (active_run, can_resume, list_runs, read_events, read_group, read_status, request_stop,
                               resume_run, set_learning_rate, start_run, start_runs)
from core.viz import enlarge
from pages._ui import cached_checkpoint, model_choices, page_title, pressed, recipe_form, shipped_cards

PERCENT = st.column_config.NumberColumn(format="percent")


def live_run(run_dir: Path) -> None:
    """The run's progress, live charts, the recipe's pictures and controls; reruns the app once it ends."""
    status, events = read_status(run_dir), read_events(run_dir)
    st.progress(*report.progress_line(status, events))
    for warning in events.get("warning", []):  # e.g. a class missing from the test split: said, not hidden
        st.warning(warning["message"], icon=":material/warning:")
    if events.get("step") or status.get("state") not in report.WORKING:  # no empty axes while the data loads
        st.plotly_chart(training_figure(events, *report.live_metric(run_dir)), width="stretch", key="trainer_chart")
    left, right = st.columns([2, 3])
    if (figure := report.monitor_figure(events.get("monitor", []))) is not None:
        left.plotly_chart(figure, width="stretch", key="trainer_monitor")
    if events.get("monitor") and (picture := report.latest_picture(run_dir)) is not None:
        right.image(enlarge(picture, 720, square=False), caption=report.picture_caption(events["monitor"]))
    if status.get("state") == "running":
        left, mid, right = st.columns([2, 2, 1])
        new_lr = left.number_input("Change the learning rate now", 1e-6, 2.0, report.current_lr(run_dir, events),
                                   format="%.6g", key="trainer_new_lr", help="The run continues at this constant rate "
                                   "(the schedule stops). The card records it: its command replays it with --lr-at.")
        if pressed("Apply learning rate", "trainer_apply_lr", mid):
            set_learning_rate(run_dir, new_lr)
        if pressed("Stop", "trainer_stop", right, icon=":material/stop:"):
            request_stop(run_dir)
    elif st.session_state.get("trainer_shown") != (run_dir.name, status.get("state")):
        st.session_state["trainer_shown"] = (run_dir.name, status.get("state"))
        st.rerun(scope="app")  # the run ended: draw the results below once


def results(card, summary: str) -> None:
    """A finished model: its headline, confusion matrix (classifiers) or metrics, and the command that made it."""
    st.success(summary)
    left, right = st.columns([3, 2])
    if confusion := card.metrics.get("test_confusion"):
        left.plotly_chart(confusion_figure(confusion, card.dataset.class_names), width="stretch", key="confusion")
    (right if confusion else left).dataframe(report.metric_table(card), hide_index=True)
    right.code(card.command or "", language="bash", wrap_lines=True)


page_title("Train a model")
busy = active_run()
name = st.selectbox("Recipe", [*PRESETS, *GROUPS], key="trainer_preset")
grouped = [s.model for s in GROUPS.get(name, [])]  # a group trains each of these models with the settings below
if grouped:
    st.info(f"Trains {' and '.join(grouped)} one after the other, same settings; Compare runs sets them side by side.")
with st.expander("Settings", expanded=busy is None):  # folded while a run trains: its charts come first
    spec = recipe_form(preset(name), f"trainer_{name}_", grouped)  # keys per recipe: a new recipe resets them
if getattr(spec, "model", "") == "efficientnet_lite0" and (bench := report.transfer_benchmark()):
    with st.expander("Why transfer learning: test accuracy against training images per class (CIFAR-10)",
                     expanded=True, icon=":material/trending_up:"):
        st.plotly_chart(efficiency_figure(bench["efficiency"]), width="stretch", key="trainer_efficiency")
        st.caption(report.transfer_caption(bench))
if pressed("Start training", "trainer_start", type="primary", disabled=busy is not None, icon=":material/play_arrow:"):
    try:
        started = (start_runs([dataclasses.replace(spec, model=m) for m in grouped], group=name)[0] if grouped
                   else start_run(spec))
        st.session_state["trainer_watch"] = started.name  # watch the new run
        busy = active_run()
    except (RuntimeError, ValueError) as exc:  # a run already training, or a setting no run can use
        st.error(f"Not started: {exc}")
if busy is not None:
    st.caption(f"Training now: `{busy.name}`. Runs keep going when you leave the page; any tab can watch them.")

runs = list_runs()
if not runs:  # something to look at before the first run: how a shipped model trained
    folder, card = next((f, c) for f, c in shipped_cards() if c.task == "classification" and c.training.get("history"))
    st.info(f"No runs yet: pick a recipe and press Start. Until then, how the shipped `{Path(folder).name}` trained:")
    st.plotly_chart(training_figure(report.history_events(card)), width="stretch", key="trainer_example")
    results(card, report.result_summary(card, {}))
    st.stop()
names = [r[0].name for r in runs]
if busy is not None and read_group(busy) and busy.name in names:
    st.session_state["trainer_watch"] = busy.name  # follow the group's runs as they take turns
current = Path(busy or runs[0][0]).name
chosen = st.selectbox("Watch run", names, index=names.index(current) if current in names else 0, key="trainer_watch")
watched = runs[names.index(chosen)][0]

status = read_status(watched)  # only a run in progress refreshes itself, every 2 s, without rerunning the page
state, saved = status.get("state"), (watched / "card.json").is_file()
st.fragment(live_run, run_every=2.0 if state in report.WORKING else None)(watched)
if state in ("failed", "diverged", "interrupted") or (state == "stopped" and not saved):  # stopped before training
    (st.warning if state in ("stopped", "interrupted") else st.error)(status.get("message", "The run failed."))
if busy is None and can_resume(watched) and pressed("Resume the run", "trainer_resume", icon=":material/play_arrow:"):
    resume_run(watched)
    st.rerun()
if status.get("cv", {}).get("folds"):
    st.success(report.cv_summary(status["cv"]))
    left, right = st.columns([2, 3])
    left.dataframe(pd.DataFrame(status["cv"]["folds"]), hide_index=True, column_config={"accuracy": PERCENT})
    right.plotly_chart(folds_figure(status["cv"]["folds"], status["cv"]["mean"]), width="stretch", key="trainer_folds")
if state in ("finished", "stopped", "diverged") and saved:
    _, card = cached_checkpoint(str(watched))
    results(card, report.result_summary(card, status))
    label = next((lbl for lbl, f in model_choices("classification").items() if Path(f) == watched), None)
    targets = (("draw_model", "pages/draw.py", "Try it on the Draw page"),
               ("inside_model", "pages/inside.py", "Look inside it"))
    for column, (key, page, text) in zip(st.columns([1, 1, 2]), targets):
        if label and pressed(text, f"open_{key}_{watched.name}", column, icon=":material/arrow_forward:"):
            st.session_state[key] = label
            st.switch_page(page)
members = [watched.parent / n for n in read_group(watched).get("runs", [])]  # a group's runs, in order
group = report.group_report(members) if members else {}
if "rows" in group:  # all of the group's runs finished: the comparison in one sentence
    st.markdown(group["sentence"] + " Curves, times and confusions side by side: **Compare runs**.")
