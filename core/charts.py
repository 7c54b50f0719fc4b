"""Plotly figures of a classifier's answers and of what is inside it: the probability bars of one answer, the
reliability diagram of its calibration, the deletion curves that test an attribution map, the clickable grids of a
layer's channel maps and of its feature visualisations, and the numbered matrices of one output's arithmetic."""
from __future__ import annotations

import math

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


def _tiles_figure(grid: np.ndarray, n: int, cols: int, side: int, selected: int | None, label: str) -> go.Figure:
    """A grid picture of n tiles (side px, 1 px apart, 1 px border), each tile a clickable point carrying its index."""
    centres = [(1 + c * (side + 1) + side / 2, 1 + r * (side + 1) + side / 2) for r, c in (divmod(i, cols) for i in range(n))]
    fig = go.Figure(go.Image(z=grid, hoverinfo="skip"))
    fig.add_scatter(x=[x for x, _ in centres], y=[y for _, y in centres], mode="markers", customdata=list(range(n)),
                    marker=dict(symbol="square", size=max(8, min(40, side)), opacity=0.0),
                    hovertemplate=label + " %{customdata}<extra></extra>", showlegend=False)
    if selected is not None and 0 <= selected < n:
        x, y = centres[selected]
        fig.add_shape(type="rect", x0=x - side / 2 - 1, x1=x + side / 2, y0=y - side / 2 - 1, y1=y + side / 2,
                      line=dict(color="#e4572e", width=3))
    fig.update_layout(height=min(560, 60 + grid.shape[0] * 2), margin=dict(l=0, r=0, t=0, b=0), dragmode=False,
                      clickmode="event+select")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def montage_figure(maps, cell: int, selected: int | None = None) -> go.Figure:
    """All channel maps (N, H, W) tiled as one image; each tile is a clickable point carrying its channel index."""
    from core.viz import montage

    n = int(maps.shape[0])
    cols, side = math.ceil(math.sqrt(n)), max(cell, int(maps.shape[-1]))
    return _tiles_figure(montage(maps, cols=cols, cell=side), n, cols, side, selected, "channel")


def atlas_figure(images: np.ndarray, selected: int | None = None) -> go.Figure:
    """A layer's feature visualisations, uint8 (N, C, H, W), tiled; each tile a clickable point (its channel)."""
    from core.viz import image_grid

    n, side = len(images), int(images.shape[-1])
    cols = math.ceil(math.sqrt(n))
    grid = np.pad(image_grid(images, cols, pad=1), ((1, 1), (1, 1), (0, 0)), constant_values=255)
    fig = _tiles_figure(grid, n, cols, side, selected, "channel")
    fig.update_layout(height=min(640, max(240, 60 + grid.shape[0] * 3)))
    return fig


def numbers_figure(values: np.ndarray, title: str, text: bool = True) -> go.Figure:
    """A small matrix (H, W) as a diverging heat map (blue negative, red positive), each number written in its cell
    when `text` (CNN Explainer's style)."""
    peak = float(np.abs(values).max()) or 1.0
    labels = np.vectorize(lambda v: f"{v:.2f}")(values[::-1]) if text else None
    fig = go.Figure(go.Heatmap(z=values[::-1], text=labels, texttemplate="%{text}" if text else None,
                               colorscale="RdBu_r", zmid=0, zmin=-peak, zmax=peak, showscale=False, hoverinfo="skip",
                               xgap=1, ygap=1))
    side = 46 if text else 14
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=min(420, 50 + side * values.shape[0]),
                      margin=dict(l=4, r=4, t=30, b=4))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    return fig


def map_figure(values: np.ndarray, selected: tuple[int, int] | None = None) -> go.Figure:
    """One channel's output map (H, W) as a heat map whose every unit is a clickable point (index row * W + col),
    the `selected` unit framed."""
    h, w = values.shape
    rows, cols = np.divmod(np.arange(h * w), w)
    fig = go.Figure(go.Heatmap(z=values, colorscale="Viridis", showscale=True, hoverinfo="skip"))
    fig.add_scatter(x=cols, y=rows, mode="markers", customdata=np.stack([rows, cols, values.ravel()], 1),
                    marker=dict(symbol="square", size=max(4, min(24, 320 // max(h, w))), opacity=0.0),
                    hovertemplate="row %{customdata[0]}, column %{customdata[1]}: %{customdata[2]:.4f}<extra></extra>",
                    showlegend=False)
    if selected is not None:
        r, c = selected
        fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=dict(color="#e4572e", width=3))
    fig.update_layout(height=360, margin=dict(l=0, r=0, t=0, b=0), dragmode=False, clickmode="event+select")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return fig
