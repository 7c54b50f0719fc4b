"""Trainer: pick a recipe of any model kind, set it up, watch it learn live, and inspect the result."""
import copy
import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from core.engine.recipe import all_presets, kind_of_task
from core.errors import ProjectError
from core.plots import efficiency_figure, folds_figure, training_figure
from core.runs import (active_run, can_resume, list_runs, read_group, read_status, report, resume_run, start_run,
                       start_runs)
from pages._models import cached_checkpoint, model_choices, shipped_cards
from pages._training import live_run, recipe_form, results
from pages._ui import PERCENT, page_title, pressed


page_title("Train a model")
busy = active_run()
catalogue, (left, right) = all_presets(), st.columns([1, 2])  # {kind: {recipe name: recipe, or a group's list}}
kind = left.selectbox("Model kind", list(catalogue), key="trainer_kind")
name = right.selectbox("Recipe", list(catalogue[kind]), key="trainer_preset")
group = catalogue[kind][name] if isinstance(catalogue[kind][name], list) else []
grouped = [s.model for s in group]  # a group trains each of these models with the settings below
if grouped:
    st.info(f"Trains {' and '.join(grouped)} one after the other, same settings; Compare runs sets them side by side.")
with st.expander("Settings", expanded=busy is None):  # folded while a run trains: its charts come first
    spec = recipe_form(copy.deepcopy(group[0] if group else catalogue[kind][name]), f"trainer_{name}_", grouped)
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
    except ProjectError as exc:  # a run already training, or a setting no run can use
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
    label = next((lbl for lbl, f in model_choices(card.task).items() if Path(f) == watched), None)
    for column, (page, key, text) in zip(st.columns([1, 1, 2]), kind_of_task(card.task).opens if label else ()):
        if pressed(text, f"open_{key}_{watched.name}", column, icon=":material/arrow_forward:"):
            st.session_state[key] = label
            st.switch_page(page)
members = [watched.parent / n for n in read_group(watched).get("runs", [])]  # a group's runs, in order
group = report.group_report(members) if members else {}
if "rows" in group:  # all of the group's runs finished: the comparison in one sentence
    st.markdown(group["sentence"] + " Curves, times and confusions side by side: **Compare runs**.")
