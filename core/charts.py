"""Plotly figures of a classifier's answers and how far to trust them: the probability bars of one answer, the
reliability diagram of its calibration, the deletion curves that test an attribution map."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.plots import PALETTE


def probability_chart(probs, class_names: list[str], top_k: int = 5):
    """Horizontal bars of every class probability, the top class highlighted; with more than 20 classes
    (ImageNet's 1000) only the `top_k` most probable, best first."""
    probs = np.asarray(probs)
    shown = list(range(len(probs))) if len(probs) <= 20 else [int(i) for i in np.argsort(-probs)[:top_k]]
    top = int(probs.argmax())
    colours = ["#e4572e" if i == top else "#7f9cb0" for i in shown]
    fig = go.Figure(go.Bar(x=probs[shown], y=[str(class_names[i]) for i in shown], orientation="h",
                           marker_color=colours, text=[f"{probs[i]:.1%}" for i in shown], textposition="outside",
                           cliponaxis=False))
    probs = probs[shown]
    fig.update_layout(height=40 + 26 * len(probs), margin=dict(l=10, r=40, t=10, b=10),
                      xaxis=dict(range=[0, 1.1], tickformat=".0%"),
                      yaxis=dict(autorange="reversed", type="category"))
    return fig


def deletion_figure(curves: dict[str, dict]) -> go.Figure:
    """Deletion curves: the class's probability as each map's most attributed pixels are removed first; the
    random order dashed. Lower and earlier = the map points at what the model uses."""
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        dashed = name == "random order"
        fig.add_scatter(x=curve["removed"], y=curve["probability"], mode="lines", name=f"{name} ({curve['area']:.3f})",
                        line=dict(color="#888" if dashed else PALETTE[i % len(PALETTE)], dash="dash" if dashed else None))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), title="deletion curves (area in brackets)",
                      xaxis=dict(title="share of pixels removed, most attributed first", tickformat=".0%"),
                      yaxis=dict(title="probability of the class", tickformat=".0%", range=[0, 1.02]),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def reliability_figure(section: dict) -> go.Figure:
    """A reliability diagram: per confidence bin, the accuracy against the mean confidence (the diagonal is perfect
    calibration), before and after temperature scaling, with each bin's count on hover."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dot"), name="perfectly calibrated")
    for key, name, colour in (("reliability", "raw", "#e4572e"), ("reliability_calibrated", "calibrated", "#1f77b4")):
        rows = [r for r in section.get(key, []) if r["count"]]
        if rows:
            fig.add_scatter(x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows], mode="lines+markers",
                            name=name, line=dict(color=colour), customdata=[r["count"] for r in rows],
                            hovertemplate="confidence %{x:.1%}: right %{y:.1%} of %{customdata:,} images<extra></extra>")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), title="reliability (test set)",
                      xaxis=dict(title="confidence", tickformat=".0%", range=[0, 1.01]),
                      yaxis=dict(title="accuracy", tickformat=".0%", range=[0, 1.01]), legend=dict(orientation="h", y=-0.3))
    return fig
