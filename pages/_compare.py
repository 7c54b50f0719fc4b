"""Compare runs' parts: the run table's columns, and one classifier run's mistakes (its confusion matrix, whose cells
show their test images when clicked, and galleries of right and wrong answers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.classifier.evaluate import most_confused
from core.charts import reliability_figure
from core.plots import confusion_figure
from core.viz import enlarge
from pages._models import cached_checkpoint, cached_report
from pages._ui import PERCENT, cached_dataset, sample_note

RUN_COLUMNS = {  # labels short enough that the table's first screen holds what matters
    "run": st.column_config.TextColumn(width="medium"),
    "test accuracy": st.column_config.NumberColumn("test acc.", format="percent", help="on the test split"),
    "best val accuracy": st.column_config.NumberColumn("best val.", format="percent",
                                                       help="the best validation accuracy of any epoch"),
    "parameters": st.column_config.NumberColumn(format="localized"),
    "train s": st.column_config.NumberColumn("train s", format="%.1f"),
    "lr": st.column_config.NumberColumn("lr (start)", format="%.3g"),
    "lr at the end": st.column_config.NumberColumn(
        "lr (end)", format="%.3g", help="differs from the start when the schedule or a user changed it"),
    "k-fold accuracy": PERCENT,
    "ECE": st.column_config.NumberColumn(format="%.4f", help="expected calibration error on the test set (15 bins): "
                                         "how far confidence is from accuracy; lower is better (sort by it)"),
    "ECE calibrated": st.column_config.NumberColumn(format="%.4f", help="the same after temperature scaling")}


def mistakes(run_dir: Path) -> None:
    """A finished classifier's confusion matrix (click a cell: its test images), its most common confusions, and
    galleries of its most confidently wrong and least confident right answers."""
    _, card = cached_checkpoint(str(run_dir))
    report = cached_report(str(run_dir))
    classes = [str(c) for c in card.dataset.class_names]
    data = cached_dataset(card.dataset.name)
    sample_note(data)
    confusions = most_confused(report["confusion"])
    st.caption("Most common confusions: " + (", ".join(f"{classes[t]} read as {classes[p]} ({n}x)"
                                                       for t, p, n in confusions) or "none"))
    if section := card.section("calibration"):
        st.plotly_chart(reliability_figure(section), width="stretch", key="runs_reliability")
    left, right = st.columns([3, 2])
    event = left.plotly_chart(confusion_figure(report["confusion"], classes), width="stretch", key="runs_confusion",
                              on_select="rerun", selection_mode="points")
    points = [p for p in (event["selection"]["points"] if event and "selection" in event else []) if "customdata" in p]
    default_true, default_pred = (confusions[0][:2] if confusions else (0, 0))
    if points:  # a clicked cell (each cell is a point carrying its true and predicted class)
        default_true, default_pred = int(points[0]["customdata"][0]), int(points[0]["customdata"][1])
    true_c = right.selectbox("True class", range(len(classes)), index=int(default_true),
                             format_func=classes.__getitem__, key=f"runs_true_{default_true}")
    pred_c = right.selectbox("Predicted class", range(len(classes)), index=int(default_pred),
                             format_func=classes.__getitem__, key=f"runs_pred_{default_pred}")
    probs = report["probs"]
    preds, labels = probs.argmax(1), data.test_y.numpy()
    cell = np.nonzero((labels == true_c) & (preds == pred_c))[0]
    right.markdown(f"**{len(cell)}** test images of **{classes[true_c]}** predicted as **{classes[pred_c]}**:")
    shown = {"images": data.test_x, "labels": labels, "probs": probs, "classes": classes}
    gallery(right, cell, shown)
    st.subheader("Right and wrong")
    left, right = st.columns(2)
    left.markdown("Most confidently **wrong** answers:")
    wrong = np.nonzero(preds != labels)[0]
    gallery(left, wrong[np.argsort(-probs[wrong].max(1))], shown)
    right.markdown("Least confident **right** answers:")
    right_idx = np.nonzero(preds == labels)[0]
    gallery(right, right_idx[np.argsort(probs[right_idx].max(1))], shown)


def gallery(column, indices, shown: dict, per_row: int = 4) -> None:
    """Up to three rows of test images, each captioned with its true class and the model's two likeliest answers."""
    classes, probs = shown["classes"], shown["probs"]
    cols = column.columns(per_row)
    for i, idx in enumerate(indices[: per_row * 3]):
        top2 = np.argsort(probs[idx])[::-1][:2]
        cols[i % per_row].image(enlarge(shown["images"][idx].numpy(), 96), caption=(
            f"true {classes[shown['labels'][idx]]} · read " + ", ".join(f"{classes[k]} ({probs[idx][k]:.0%})"
                                                                        for k in top2)))
