"""Compare runs: every run in one table, overlaid curves, accuracy against time, a grouped recipe's models side by
side, and one run's errors."""
from pathlib import Path

import pandas as pd
import streamlit as st

from core.classifier.evaluate import averaged_report, most_confused
from core.plots import accuracy_time_figure, compare_figure, confusion_figure
from core.runs import list_runs, read_events, read_group, report, summarize
from pages._compare import RUN_COLUMNS, mistakes
from pages._models import cached_checkpoint, cached_report
from pages._ui import cached_dataset, page_title

page_title("Compare runs")
runs = list_runs()
if not runs:
    st.info("No runs yet. Train one on the Trainer page; every run appears here.")
    st.stop()
rows = [summarize(d, spec, status) for d, spec, status in runs]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=RUN_COLUMNS)
names = [r["run"] for r in rows]
usable = [r["run"] for r in rows if r["state"] == "finished"]  # a diverged or pruned run's loss would flatten the rest
chosen = st.multiselect("Overlay runs", names, default=(usable or names)[:4], key="runs_overlay")
left, right = st.columns(2)
left.plotly_chart(compare_figure({n: read_events(runs[names.index(n)][0]) for n in chosen}), width="stretch",
                  key="runs_curves")
right.plotly_chart(accuracy_time_figure([r for r in rows if r["run"] in chosen]), width="stretch", key="runs_time")

groups = {tuple(g["runs"]): g.get("name", "group") for d, _, _ in runs if (g := read_group(d)).get("runs")}
if groups:
    st.subheader("A recipe's models side by side")
    members = st.selectbox("Group", list(groups), format_func=lambda k: f"{groups[k]}: {', '.join(k)}",
                           key="runs_group")
    group = report.group_report([runs[0][0].parent / n for n in members])
    if "rows" not in group:
        (st.info if "waiting" in group else st.warning)(group.get("waiting") or group["failed"])
    else:
        st.markdown(group["sentence"])
        left, right = st.columns(2)
        left.plotly_chart(compare_figure(group["events"]), width="stretch", key="group_curves")
        right.plotly_chart(accuracy_time_figure(group["rows"]), width="stretch", key="group_time")
        for col, row, d in zip(st.columns(len(group["dirs"])), group["rows"], group["dirs"]):
            classes = [str(c) for c in cached_checkpoint(str(d))[1].dataset.class_names]
            confusion = cached_report(str(d))["confusion"]
            col.markdown(f"**{row['model']}**: most common confusions")
            col.caption(", ".join(f"{classes[t]} read as {classes[p]} ({n}x)"
                                  for t, p, n in most_confused(confusion)[:5]) or "none")
            col.plotly_chart(confusion_figure(confusion, classes, title=f"{row['model']}: confusion matrix"),
                             width="stretch", key=f"group_confusion_{d.name}")

finished = [n for n, (d, spec, status) in zip(names, runs)  # classifiers with a model saved: their mistakes
            if (d / "card.json").is_file() and spec.get("kind", "classifier") == "classifier"]
if not finished:
    st.stop()
pools: dict[str, list[str]] = {}  # finished classifiers by data set: an ensemble averages several of one data set
for n, (d, spec, _) in zip(names, runs):
    pools.setdefault(spec.get("dataset", "?"), []).extend([n] if n in finished else [])
if pools := {k: v for k, v in pools.items() if len(v) > 1}:
    st.subheader("Ensemble: several runs' probabilities averaged")
    left, right = st.columns([1, 3])
    pool = left.selectbox("Data set", list(pools), key="runs_ensemble_data")
    picked = right.multiselect("Runs", pools[pool], default=pools[pool][:3], key=f"runs_ensemble_{pool}")
    if len(picked) > 1:
        dirs = [str(runs[names.index(n)][0]) for n in picked]
        ds = cached_checkpoint(dirs[0])[1].dataset  # the members' reports were measured on its test set
        together = averaged_report([cached_report(d)["probs"] for d in dirs], cached_dataset(ds.name).test_y,
                                   ds.class_names)
        st.markdown(f"Together: **{together['accuracy']:.2%}** test accuracy; alone: " + ", ".join(
            f"{n} {a:.2%}" for n, a in zip(picked, together["members"])) + ".")
st.subheader("One run's mistakes")
mistakes(Path(runs[names.index(st.selectbox("Run", finished, key="runs_detail"))][0]))
