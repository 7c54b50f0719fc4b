"""End-of-run views too big for the trainer page: a k-fold run's folds, a grouped recipe's comparison, and the
transfer-learning benchmark's data-efficiency chart."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from core.trainer.evaluate import most_confused
from core import paths
from core.plots import accuracy_time_figure, compare_figure, confusion_figure, efficiency_figure
from core.trainer.runs import read_events, read_group, read_spec, read_status, summarize
from pages._common import cached_checkpoint, cached_report, model_choices

# this machine's own `python -m bench.transfer` run if there is one, else the measurement shipped with the project
TRANSFER_BENCH = [paths.PROJECT_ROOT / "bench" / folder / "transfer.json" for folder in ("results", "reference")]


def cv_results(status: dict) -> None:
    """Mean and spread of a k-fold run's held-out accuracies, and each fold."""
    import plotly.graph_objects as go

    cv = status["cv"]
    if not cv["folds"]:
        st.warning("No fold finished.")
        return
    spread = f" +/- {cv['std']:.2%} (standard deviation)" if cv["completed"] > 1 else ""
    st.success(f"**{cv['k']}-fold cross-validation**: held-out accuracy **{cv['mean']:.2%}**{spread} over "
               f"{cv['completed']} fold(s), {cv['train_seconds']:.1f} s of training.")
    left, right = st.columns([2, 3])
    left.dataframe(pd.DataFrame(cv["folds"]), hide_index=True, width="stretch",
                   column_config={"accuracy": st.column_config.NumberColumn(format="percent")})
    fig = go.Figure(go.Bar(x=[f"fold {f['fold']}" for f in cv["folds"]], y=[f["accuracy"] for f in cv["folds"]],
                           text=[f"{f['accuracy']:.2%}" for f in cv["folds"]], textposition="outside"))
    fig.add_hline(y=cv["mean"], line_dash="dash", annotation_text=f"mean {cv['mean']:.2%}")
    lo = min(f["accuracy"] for f in cv["folds"])
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(tickformat=".1%",
                      range=[max(0.0, lo - 0.05), 1.0]), title="held-out accuracy per fold")
    right.plotly_chart(fig, width="stretch", key="trainer_folds")


def group_results(run_dirs: list[str] | None) -> None:
    """Progress of a group while it trains; when every run has a checkpoint, the comparison."""
    if not run_dirs:
        return
    dirs = [Path(d) for d in run_dirs]
    group = read_group(dirs[0]).get("name", "group")
    states = [read_status(d).get("state", "?") for d in dirs]
    st.subheader(f"{group}: the comparison")
    if any(s in ("queued", "starting", "running") for s in states):
        st.info("Training " + ", then ".join(f"`{d.name}` ({s})" for d, s in zip(dirs, states))
                + ". The comparison appears here when all are done.")
        return
    done = [d for d in dirs if (d / "card.json").is_file()]
    if len(done) < 2:
        st.warning("Fewer than two runs of the group finished (" + ", ".join(states) + "): nothing to compare.")
        return
    rows = [summarize(d, read_spec(d), read_status(d)) for d in done]
    best = max(rows, key=lambda r: r["test accuracy"] or 0)
    other = [r for r in rows if r is not best]
    st.markdown(" ".join(
        f"**{best['model']}** reaches **{best['test accuracy']:.2%}** test accuracy, "
        f"**{100 * (best['test accuracy'] - r['test accuracy']):.2f} points** above **{r['model']}** "
        f"({r['test accuracy']:.2%}); it trained in {best['train s']:.1f} s against {r['train s']:.1f} s "
        f"({best['train s'] / max(r['train s'], 1e-9):.1f}x the time), with {best['parameters']:,} parameters "
        f"against {r['parameters']:,}." for r in other))
    st.dataframe(pd.DataFrame(rows)[["run", "model", "parameters", "epochs", "test accuracy", "best val accuracy",
                                     "train s"]], hide_index=True, width="stretch",
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                                "best val accuracy": st.column_config.NumberColumn(format="percent")})
    left, right = st.columns(2)
    left.plotly_chart(compare_figure({r["model"]: read_events(d) for r, d in zip(rows, done)}), width="stretch",
                      key="group_curves")
    right.plotly_chart(accuracy_time_figure(rows), width="stretch", key="group_time")
    for col, row, d in zip(st.columns(len(done)), rows, done):
        _, card = cached_checkpoint(str(d))
        classes = [str(c) for c in card.dataset.class_names]
        report = cached_report(str(d))
        col.markdown(f"**{row['model']}**: most common confusions")
        col.caption(", ".join(f"{classes[t]} read as {classes[p]} ({n}x)" for t, p, n in
                              most_confused(report["confusion"])[:5]) or "none")
        fig = confusion_figure(report["confusion"], classes)
        fig.update_layout(height=360, title=f"{row['model']}: confusion matrix")
        col.plotly_chart(fig, width="stretch", key=f"group_confusion_{d.name}")


def open_elsewhere(run_dir: Path) -> None:
    """Buttons that open a finished run's model on the Draw or Inside page (it is listed there already)."""
    label = next((lbl for lbl, folder in model_choices("classification").items() if Path(folder) == Path(run_dir)), None)
    if label is None:
        return
    left, right, _ = st.columns([1, 1, 2])
    for column, key, page, text in ((left, "draw_model", "pages/draw.py", "Try it on the Draw page"),
                                    (right, "inside_model", "pages/inside.py", "Look inside it")):
        if column.button(text, key=f"open_{key}_{Path(run_dir).name}", icon=":material/arrow_forward:"):
            st.session_state[key] = label
            try:
                st.switch_page(page)
            except st.errors.StreamlitAPIException:  # the page runs on its own, without the app's navigation
                st.info(f"Open {page.split('/')[-1][:-3].title()} from the navigation: {label} is chosen there.")


def transfer_evidence(model: str) -> None:
    """For the pretrained model, why transfer learning exists: the benchmark's data-efficiency chart on CIFAR-10."""
    if model != "efficientnet_lite0":
        return
    try:
        bench = json.loads(next(p for p in TRANSFER_BENCH if p.is_file()).read_text())
    except (StopIteration, OSError, ValueError):
        st.caption("Run `python -m bench.transfer` to see the data-efficiency comparison here.")
        return
    with st.expander("Why transfer learning: test accuracy against training images per class (CIFAR-10)",
                     expanded=True, icon=":material/trending_up:"):
        st.plotly_chart(efficiency_figure(bench["efficiency"]), width="stretch", key="trainer_efficiency")
        st.caption(f"From `python -m bench.transfer` ({bench['threads']} CPU threads, images resized to "
                   f"{bench['resolution']} px). With few images per class the pretrained features win by far; the "
                   "from-scratch runs had a CPU time budget each, so the 'all' point is below what long training reaches.")
