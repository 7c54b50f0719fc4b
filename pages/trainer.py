"""Trainer: pick a recipe of any model kind, set it up, watch it learn live, and inspect the result."""
import dataclasses
from pathlib import Path

import streamlit as st

from core.trainer.presets import GROUPS, PRESETS, preset
from core.trainer.runs import (active_run, can_resume, list_runs, read_group, read_status, resume_run, start_run,
                               start_runs)
from pages._results import cv_results, group_results, open_elsewhere, transfer_evidence
from pages._live import live_run, run_results
from pages._train import classifier_settings, recipe_settings

st.title("Train a model")
busy = active_run()
name = st.selectbox("Recipe", [*PRESETS, *GROUPS], key="trainer_preset")
grouped = [s.model for s in GROUPS.get(name, [])]  # a group trains each of these models with the settings below
if grouped:
    st.info(f"This recipe trains {' and '.join(grouped)} one after the other with the same settings, then compares "
            "them on one screen: accuracy, training time and each one's most common confusions.")
base, k = preset(name), f"trainer_{name}_"  # widget keys per recipe: choosing a recipe resets the settings
with st.expander("Settings", expanded=busy is None):  # folded while a run trains: its charts come first
    if base.kind == "classifier":
        spec = classifier_settings(base, k, grouped)
    else:
        st.caption(f"{'An' if base.kind[0] in 'aeiou' else 'A'} {base.kind} recipe: each setting is a field of its dataclass; the defaults made the shipped "
                   "checkpoint (or train in seconds, for the quick recipes).")
        spec = recipe_settings(base, k)
if base.kind == "classifier":
    transfer_evidence(spec.model)
if st.button("Start training", type="primary", disabled=busy is not None, icon=":material/play_arrow:"):
    try:
        st.session_state["trainer_run"] = str(start_runs([dataclasses.replace(spec, model=m)
                                                          for m in grouped], group=name)[0]
                                               if grouped else start_run(spec))
        st.session_state["trainer_watch"] = Path(st.session_state["trainer_run"]).name  # watch the new run
        busy = active_run()
    except RuntimeError as exc:
        st.error(str(exc))
if busy is not None:
    st.caption(f"Training now: `{busy.name}`. Runs keep going when you leave the page; any tab can watch them.")

runs = list_runs()
if not runs:
    st.info("No runs yet: pick a recipe and press Start. The quick recipes train on small data in seconds.")
    st.stop()
names = [r[0].name for r in runs]
if busy is not None and read_group(busy) and busy.name in names:
    st.session_state["trainer_watch"] = busy.name  # follow the group's runs as they take turns
current = Path(st.session_state.get("trainer_run") or busy or runs[0][0]).name
watched = runs[names.index(st.selectbox("Watch run", names, index=names.index(current) if current in names else 0,
                                        key="trainer_watch"))][0]

status = read_status(watched)  # only a run in progress refreshes itself, every second, without rerunning the page
st.fragment(live_run, run_every=1.0 if status.get("state") in ("starting", "running", "queued") else None)(watched)
if status.get("state") in ("failed", "diverged", "interrupted") or (
        status.get("state") == "stopped" and not (watched / "card.json").is_file()):  # stopped before training
    (st.warning if status["state"] in ("stopped", "interrupted") else st.error)(status.get("message", "The run failed."))
if busy is None and can_resume(watched) and st.button("Resume the run", icon=":material/play_arrow:",
                                                      key="trainer_resume"):
    resume_run(watched)
    st.rerun()
if status.get("cv"):
    cv_results(status)
if status.get("state") in ("finished", "stopped", "diverged") and (watched / "card.json").is_file():
    run_results(watched, status)
    open_elsewhere(watched)
group_results([str(watched.parent / n) for n in read_group(watched).get("runs", [])])
