"""Plotly figures of training runs: live loss, accuracy and learning-rate charts, confusion matrices.

Owns turning a run's recorded events (see `core.runs`) and evaluation reports into figures. Plotly only;
the pages decide where figures go.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Exponential moving average, TensorBoard-style (debiased, so it starts at the first value instead of lagging
    behind it), so a noisy loss curve shows its trend. The weight follows the number of points unless given: a
    few points (a history of one mean per epoch) are drawn as they are, hundreds of noisy steps smoothed."""
    weight = (0.0 if len(values) <= 20 else 0.6 if len(values) <= 100 else 0.9) if weight is None else weight
    out, last = [], 0.0
    for t, v in enumerate(values, 1):
        last = weight * last + (1 - weight) * v
        out.append(last / (1 - weight ** t))
    return out


def training_figure(events: dict[str, list[dict]], metric: str = "accuracy", title: str = "accuracy",
                    proportion: bool = True, max_points: int = 300) -> go.Figure:
    """Three panels against the step: loss and the task's metric (train per step, smoothed; train and validation
    per epoch; validation at each mid-epoch evaluation) and the learning rate. Per-step curves keep at most
    `max_points` points (every k-th step, the raw loss averaged over each k), so a live redraw stays light."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", title, "learning rate"))
    steps, epochs, evals = events.get("step", []), events.get("epoch", []), events.get("eval", [])
    if steps:
        every = -(-len(steps) // max_points)  # a long run is drawn from every k-th step: the browser redraws it live
        at = range((len(steps) - 1) % every, len(steps), every)  # ... ending on the latest step
        x = [steps[i]["step"] for i in at]
        loss = [s["loss"] for s in steps]
        trend = smooth(loss)
        fig.add_scatter(x=x, y=[sum(loss[max(0, i - every + 1):i + 1]) / len(loss[max(0, i - every + 1):i + 1])
                                for i in at], name="loss per step" if every == 1 else f"loss (mean of {every} steps)",
                        line=dict(color="#c9d6df", width=1), row=1, col=1)
        fig.add_scatter(x=x, y=[trend[i] for i in at], name="smoothed", line=dict(color="#1f77b4"), row=1, col=1)
        acc = [s.get("metrics", {}).get(metric) for s in steps]
        if any(a is not None for a in acc):
            trend = smooth([a or 0.0 for a in acc])
            fig.add_scatter(x=x, y=[trend[i] for i in at], name=f"train {title} (per step, smoothed)",
                            line=dict(color="#1f77b4"), showlegend=False, row=1, col=2)
        fig.add_scatter(x=x, y=[steps[i]["lr"] for i in at], name="lr", line=dict(color="#9467bd"),
                        showlegend=False, row=1, col=3)
    if evals:
        ev = [e["step"] for e in evals]
        fig.add_scatter(x=ev, y=[e["metrics"].get("loss") for e in evals], name="validation (every N steps)",
                        mode="markers", marker=dict(color="#2ca02c", size=5), row=1, col=1)
        fig.add_scatter(x=ev, y=[e["metrics"].get(metric) for e in evals], mode="markers", showlegend=False,
                        marker=dict(color="#2ca02c", size=5), row=1, col=2)
    if epochs:
        per_epoch = max(1, round(steps[-1]["step"] / max(epochs[-1]["epoch"], 1))) if steps else 1
        ex = [e.get("step") or e["epoch"] * per_epoch for e in epochs]
        for key, name, colour in (("train", "train (epoch)", "#ff7f0e"), ("val", "validation (epoch)", "#2ca02c")):
            if epochs[0][key]:
                fig.add_scatter(x=ex, y=[e[key]["loss"] for e in epochs], name=name, mode="lines+markers",
                                line=dict(color=colour), row=1, col=1)
                fig.add_scatter(x=ex, y=[e[key].get(metric) for e in epochs], name=name, mode="lines+markers",
                                line=dict(color=colour), showlegend=False, row=1, col=2)
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="step", row=1, col=col)
    if proportion:
        fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_yaxes(tickformat=".2~g", row=1, col=3)  # learning rates as numbers (0.00035), never "350µ"
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=64, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def line_figure(series: dict[str, list[tuple[float, float]]], x_title: str, title: str = "") -> go.Figure:
    """One line per named series of (x, y) points, e.g. a recipe's live metrics per epoch."""
    fig = go.Figure()
    for i, (name, points) in enumerate(series.items()):
        fig.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name, mode="lines+markers",
                        line=dict(color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), xaxis_title=x_title, title=title,
                      showlegend=True, legend=dict(orientation="h", y=-0.3), xaxis=dict(dtick=1))
    return fig


def confusion_figure(confusion: list[list[int]], class_names: list[str], title: str = "") -> go.Figure:
    """Row-normalised confusion matrix heat map with counts; rows are the true class."""
    counts = np.asarray(confusion)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(z=share, x=names, y=names, colorscale="Blues", zmin=0, zmax=1,
                               text=counts, texttemplate="%{text}", hoverinfo="skip"))
    cells = [(t, p) for t in range(len(names)) for p in range(len(names))]  # one clickable point per cell (a
    fig.add_scatter(x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",  # heat map
                    marker=dict(size=max(12, 300 // max(len(names), 1)), symbol="square", opacity=0.01,  # takes no
                                color="#000"), customdata=[[t, p, int(counts[t, p])] for t, p in cells],  # click)
                    hovertemplate="true %{y}, predicted %{x}: %{customdata[2]}<extra></extra>", showlegend=False)
    span = [-0.5, len(names) - 0.5]  # fixed: the big invisible click markers must not widen the axes in a narrow column
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="predicted", title=title,
                      yaxis=dict(title="true", range=span[::-1], type="category"),
                      xaxis=dict(type="category", range=span), clickmode="event+select")
    return fig


def compare_figure(curves: dict[str, dict[str, list[dict]]]) -> go.Figure:
    """Overlay runs: validation (else train) accuracy per epoch, and train loss per epoch."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy per epoch", "train loss per epoch"))
    for i, (name, events) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        epochs = events.get("epoch", [])
        x = [e["epoch"] for e in epochs]
        acc = [(e["val"] or e["train"]).get("accuracy") for e in epochs]
        fig.add_scatter(x=x, y=acc, name=name, mode="lines+markers", line=dict(color=colour), row=1, col=1)
        fig.add_scatter(x=x, y=[e["train"]["loss"] for e in epochs], name=name, mode="lines+markers",
                        line=dict(color=colour), showlegend=False, row=1, col=2)
    losses = sorted(e["train"]["loss"] for ev in curves.values() for e in ev.get("epoch", []))
    if losses and losses[-1] > 3 * losses[int(0.9 * (len(losses) - 1))]:  # one run's huge loss would flatten the rest
        fig.update_yaxes(range=[0, 1.3 * losses[int(0.9 * (len(losses) - 1))]], row=1, col=2)
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=64, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def accuracy_time_figure(rows: list[dict]) -> go.Figure:
    """Test accuracy against training seconds, one labelled point per finished run."""
    done = [r for r in rows if r.get("test accuracy") is not None]

    def label(r: dict) -> str:  # the model and the time the run started (runs are named YYYYMMDD-HHMMSS_...)
        stamp = str(r.get("run", ""))[9:15]
        return r["model"] + (f" {stamp[:2]}:{stamp[2:4]}:{stamp[4:]}" if stamp.isdigit() and len(stamp) == 6 else "")

    fig = go.Figure(go.Scatter(x=[r["train s"] for r in done], y=[r["test accuracy"] for r in done],
                               mode="markers+text", text=[label(r) for r in done], textposition="bottom right",
                               cliponaxis=False,
                               hovertext=[f"{r.get('run', '')}: {r['model']} on {r['data set']}" for r in done],
                               marker=dict(size=12, color="#e4572e")))
    low = min((r["test accuracy"] for r in done), default=0.9)
    fig.update_layout(height=340, margin=dict(l=10, r=60, t=30, b=10), xaxis_title="training seconds",
                      yaxis=dict(title="test accuracy", tickformat=".1%", range=[max(0.0, low - 0.05), 1.005]),
                      title="accuracy against training time")
    return fig


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def latent_map_figure(xy, labels, class_names: list[str], *, thumbs=None, marks=None, title: str = "",
                      layout: str = "PCA") -> go.Figure:
    """Latent codes in 2-d, one colour per class; every point carries its map position as customdata.

    thumbs: optional [(position, uint8 image)] drawn as small pictures at their points (a sprite view);
    marks: optional {name: (x, y)} drawn as labelled stars (the user's image, a chosen point).
    """
    import base64
    import io

    from PIL import Image

    from plotly.colors import qualitative

    colours = qualitative.T10 + qualitative.Alphabet
    xy, labels = np.asarray(xy), np.asarray(labels)
    fig = go.Figure()
    for c, name in enumerate(class_names):
        pos = np.nonzero(labels == c)[0]
        if len(pos):
            fig.add_scattergl(x=xy[pos, 0], y=xy[pos, 1], mode="markers", name=str(name), customdata=pos,
                              marker=dict(size=5, color=colours[c % len(colours)], opacity=0.75),
                              hovertemplate=f"{name}<br>map point %{{customdata}}<extra></extra>")
    span = float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1e-6))
    for pos, img in thumbs or []:
        buf = io.BytesIO()
        Image.fromarray(np.asarray(img)).save(buf, format="PNG")
        fig.add_layout_image(source="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
                             x=float(xy[pos, 0]), y=float(xy[pos, 1]), xref="x", yref="y", sizex=span / 25,
                             sizey=span / 25, xanchor="center", yanchor="middle", layer="above")
    for name, (x, y) in (marks or {}).items():
        fig.add_scatter(x=[x], y=[y], mode="markers+text", text=[name], textposition="top center", name=name,
                        marker=dict(symbol="star", size=18, color="#111", line=dict(color="white", width=1)))
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=30 if title else 10, b=10), title=title,
                      legend=dict(itemsizing="constant"), clickmode="event+select", dragmode="pan",
                      xaxis_title="first principal direction" if layout == "PCA" else f"{layout} axis 1",
                      yaxis_title="second principal direction" if layout == "PCA" else f"{layout} axis 2")
    return fig


def composition_figure(image, true_x, pred_x, *, labels=None) -> go.Figure:
    """A composed Multi-MNIST image with the true x-centres (dashed green) and the predicted ones (orange),
    each predicted marker labelled with the predicted digit when `labels` are given."""
    from core.viz import to_rgb

    h, w = np.asarray(image).shape[:2]
    fig = go.Figure(go.Image(z=to_rgb(image), hovertemplate="x %{x}, y %{y}<extra></extra>"))
    for i, x in enumerate(pred_x):
        fig.add_shape(type="line", x0=x, x1=x, y0=-0.5, y1=h - 0.5, line=dict(color="#ff7f0e", width=5), opacity=0.8)
        text = f"{labels[i]} @ {x:.1f}" if labels is not None else f"{x:.1f}"
        fig.add_annotation(x=x, y=-0.5, text=text, showarrow=False, yanchor="bottom", font=dict(color="#ff7f0e", size=14))
    for x in true_x:  # drawn over the predictions, so both show when they coincide
        fig.add_shape(type="line", x0=x, x1=x, y0=-0.5, y1=h - 0.5, line=dict(color="#2ca02c", width=2, dash="dash"))
    fig.add_scatter(x=[None], y=[None], mode="lines", name="true x-centre", line=dict(color="#2ca02c", dash="dash"))
    fig.add_scatter(x=[None], y=[None], mode="lines", name="predicted x-centre", line=dict(color="#ff7f0e"))
    fig.update_layout(height=int(60 + 560 * h / w), margin=dict(l=0, r=0, t=30, b=0), dragmode=False,
                      legend=dict(orientation="h", y=-0.05, yanchor="top"))
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5])
    return fig


def ctc_figure(image, probs, alignment, *, column_px: float) -> go.Figure:
    """A digit string above the CRNN's per-column class probabilities (blank, 0..9) on the same x axis;
    the CTC alignment is drawn as the path of boxes it takes and each emitted digit is written on top."""
    from plotly.subplots import make_subplots

    from core.viz import to_rgb

    probs = np.asarray(probs)
    t_len, n_cls = probs.shape
    h, w = np.asarray(image).shape[:2]
    names = ["blank"] + [str(d) for d in range(n_cls - 1)]
    centres = (np.arange(t_len) + 0.5) * column_px - 0.5
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.04)
    fig.add_trace(go.Image(z=to_rgb(image), hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=probs.T, x=centres, y=names, colorscale="Viridis", zmin=0, zmax=1,
                             colorbar=dict(title="p", len=0.6, y=0.3), customdata=np.tile(np.arange(t_len), (n_cls, 1)),
                             hovertemplate="column %{customdata}<br>%{y}: %{z:.3f}<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=centres, y=[names[c] for c in alignment], mode="lines+markers", name="CTC alignment",
                             line=dict(color="#e4572e", width=2), marker=dict(symbol="square-open", size=12,
                             color="#e4572e")), row=2, col=1)
    prev = 0
    for t, c in enumerate(alignment):
        if c != 0 and c != prev:
            fig.add_annotation(x=centres[t], y=-0.5, text=f"<b>{names[c]}</b>", showarrow=False, yanchor="bottom",
                               font=dict(color="#e4572e", size=18), row=1, col=1)
        prev = c
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10), showlegend=False, dragmode=False)
    fig.update_xaxes(range=[-0.5, w - 0.5], showticklabels=False, row=1, col=1)
    fig.update_xaxes(range=[-0.5, w - 0.5], title="x (pixels)", row=2, col=1)
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], row=1, col=1)
    fig.update_yaxes(autorange="reversed", type="category", row=2, col=1)
    return fig


def efficiency_figure(rows: list[dict]) -> go.Figure:
    """Test accuracy against training images per class (log axis): pretrained features + linear head vs a CNN
    trained from scratch, from `bench/transfer.py`'s `efficiency` rows."""
    x = [r["per_class"] for r in rows]
    fig = go.Figure()
    for key, name, colour in (("transfer_accuracy", "pretrained EfficientNet-Lite0 + linear head", "#e4572e"),
                              ("scratch_accuracy", "small ResNet from scratch", "#4c78a8")):
        fig.add_scatter(x=x, y=[100 * r[key] for r in rows], mode="lines+markers+text", name=name,
                        text=[f"{100 * r[key]:.1f}" for r in rows], textposition="top center",
                        line=dict(color=colour, width=3), marker=dict(size=9))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12),
                      xaxis=dict(type="log", title="training images per class", tickvals=x),
                      yaxis=dict(title="CIFAR-10 test accuracy (%)", range=[0, 100]))
    return fig


def folds_figure(folds: list[dict], mean: float) -> go.Figure:
    """Held-out accuracy of each fold of a k-fold run as bars, with the mean as a dashed line."""
    fig = go.Figure(go.Bar(x=[f"fold {f['fold']}" for f in folds], y=[f["accuracy"] for f in folds],
                           text=[f"{f['accuracy']:.2%}" for f in folds], textposition="outside"))
    fig.add_hline(y=mean, line_dash="dash", annotation_text=f"mean {mean:.2%}")
    low = min(f["accuracy"] for f in folds)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title="held-out accuracy per fold",
                      yaxis=dict(tickformat=".1%", range=[max(0.0, low - 0.05), 1.0]))
    return fig
