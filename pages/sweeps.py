"""Sweeps: tune a classifier recipe with Optuna. Every trial is a run: the Trainer shows it live, Compare runs
lists it, and the best trial's model is offered on Draw and Inside like any run."""
import pandas as pd
import streamlit as st

from core import paths
from core.sweep.space import PRESETS
from core.sweep.study import start_sweep, studies, load, trials_table
from pages._ui import PERCENT, page_title, pressed

page_title("Hyperparameter sweeps")
st.caption("A sweep is a recipe, a search space, a sampler (grid, random or TPE) and a pruner that stops a trial "
           "whose validation accuracy falls below the median of earlier trials at the same epoch. Trials are scored "
           "on the validation share, never on the test set. The study is kept in `sweeps.db` in the runs folder; "
           "`python -m core sweep --storage URL` lets workers on several machines share one study.")
root = paths.runs_dir()
MIN_FOR_IMPORTANCE = 4  # fewer completed trials give importances that are noise
preset = st.selectbox("Sweep", [*PRESETS, "Custom"], key="sweep_preset",
                      help="seed004-*: seed 004's tuning question (filters, kernel, dropout, learning rate), a grid.")
if preset == "Custom":
    flags = st.text_input("Recipe flags (as for python -m core train)", "--dataset digits --model fast_cnn --epochs 3",
                          key="sweep_flags").split()
    text = st.text_area("Search space, one PATH=KIND:ARGS per line",
                        "config.lr=loguniform:1e-4:1e-1\nconfig.batch_size=choice:32,64,128", key="sweep_space")
    space = [line.strip() for line in text.splitlines() if line.strip()]
else:
    flags, space = [], []
    st.code("\n".join(PRESETS[preset][1]), language="text")
left, mid, right = st.columns(3)
trials = left.number_input("Trials", 1, 200, 16 if preset != "Custom" else 8, key="sweep_trials")
sampler = mid.selectbox("Sampler", ["grid", "random", "tpe"] if preset != "Custom" else ["tpe", "random", "grid"],
                        key=f"sweep_sampler_{preset}")
pruner = right.selectbox("Pruner", ["median", "none"], key="sweep_pruner")
running = st.session_state.get("sweep_process")
busy = running is not None and running.poll() is None
if pressed("Start the sweep", "sweep_start", type="primary", disabled=busy, icon=":material/tune:"):
    st.session_state["sweep_process"], st.session_state["sweep_study"] = start_sweep(
        root, int(trials), None if preset == "Custom" else preset, flags, space, sampler, pruner)
    st.session_state["sweep_watched"] = "running"
    busy = True


def number(value) -> str:
    """A parameter's value as a reader takes it in: 0.00187, not 0.0018662266976517971."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@st.fragment(run_every=2.0 if busy else None)  # a running sweep is watched live, like a Trainer run
def results() -> None:
    import optuna.visualization as vis

    process = st.session_state.get("sweep_process")
    running = process is not None and process.poll() is None
    if not running and st.session_state.get("sweep_watched") == "running":
        st.session_state["sweep_watched"] = "done"
        st.rerun(scope="app")  # it ended: the page stops polling
    st.session_state["sweep_watched"] = "running" if running else "done"
    names = studies(root)
    if not names:
        st.info("Starting the sweep..." if running else "No sweeps yet. Start one above: its trials appear on the "
                "Trainer page as they train.")
        return
    current = st.session_state.get("sweep_study")
    name = st.selectbox("Study", names[::-1], index=names[::-1].index(current) if current in names else 0,
                        key="sweep_show")
    study = load(root, name)
    rows = trials_table(study)
    if running and name == current:
        st.caption(f"Running: {len(rows)} trial(s) so far. Watch the current one on the Trainer page.")
    floats = {k: st.column_config.NumberColumn(format="%.3g") for t in study.trials for k, v in t.params.items()
              if isinstance(v, float)}
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={**floats, "val accuracy": PERCENT, "test accuracy": PERCENT})
    complete = [t for t in study.trials if t.value is not None]
    if complete:
        best = study.best_trial
        st.success(f"Best: trial {best.number}, validation accuracy **{best.value:.2%}** (test "
                   f"{best.user_attrs.get('test_accuracy') or 0:.2%}), run `{best.user_attrs.get('run')}`: "
                   + ", ".join(f"{k} = {number(v)}" for k, v in best.params.items())
                   + ". Its model is offered on Draw and Inside the network.")
    if len(complete) >= 2:
        left, right = st.columns(2)
        left.plotly_chart(vis.plot_parallel_coordinate(study), width="stretch", key="sweep_parallel")
        if len(complete) < MIN_FOR_IMPORTANCE:
            right.caption(f"Parameter importances need at least {MIN_FOR_IMPORTANCE} completed trials to mean "
                          f"anything; this study has {len(complete)}.")
            return
        try:
            right.plotly_chart(vis.plot_param_importances(study), width="stretch", key="sweep_importance")
        except (RuntimeError, ValueError) as exc:  # e.g. every trial had the same value of a parameter
            right.caption(f"No parameter importances yet: {exc}")


results()
