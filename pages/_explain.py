"""Inside the network's tabs: the attribution methods side by side (with the sanity check), occlusion with a box to
draw (a fragment: it reruns on its own) and the model over training."""
from __future__ import annotations

import streamlit as st

from core.engine.checkpoint import list_snapshots
from core.engine.predict import input_spec, predict_proba, to_batch
from core.inside.attribution import METHODS, WHAT, compare, empty_note, randomisation_test, sanity_table
from core.inside.explain import (cam_label, cam_layers, canvas_box, class_target, conv_layer_names, default_cam_layer,
                                 grad_cam, hide_box, occluder_rect, occlusion)
from core.inside.faithfulness import deletion_curve, random_curve
from core.charts import deletion_figure
from core.viz import enlarge, filter_montage, overlay
from pages._models import cached_snapshot
from pages._ui import pressed, remembered


def attribution_tab(model, card, image, probs, label: str) -> None:
    """Every attribution method on the same input and class, each with its cost, a word where a map is empty, and
    the model-randomisation sanity check. The class to explain follows the prediction for each new input, unless
    the user picks one for that input."""
    classes, top, x, (_, size) = card.dataset.class_names, int(probs.argmax()), to_batch(image, card), input_spec(card)
    layers, convs, seen = cam_layers(model), conv_layer_names(model), hash(image.tobytes())
    left, mid = st.columns([1, 1])
    wanted = left.selectbox("Explain class", range(len(classes)), index=top, key=f"inside_cam_class_{label}_{seen}",
                            format_func=lambda i: f"{classes[i]} ({probs[i]:.1%}){' - predicted' if i == top else ''}")
    layer = mid.selectbox("CAM layer", layers, index=layers.index(default_cam_layer(model)), key=f"inside_cam_{label}",
                          format_func=lambda n: cam_label(n, model, convs)) if layers else None
    methods = st.multiselect("Methods", METHODS, METHODS if size <= 64 else METHODS[:4],  # kept per model
                             key=f"inside_methods_{label}", help="\n\n".join(f"**{m}**: {WHAT[m]}" for m in METHODS))
    where = layer and cam_label(layer, model, convs)
    memo = (label, seen, wanted, layer, tuple(methods))
    rows = remembered("inside_compare", memo, lambda: compare(model, x, class_target(wanted), layer, methods, where))
    for cell, row in zip(st.columns(4) + st.columns(4), rows):
        if row["map"] is None:
            cell.info(f"{row['method']} needs a convolution layer; this model has none.")
            continue
        cell.image(enlarge(overlay(image, row["map"], alpha=0.6), 220),
                   caption=f"{row['label']} for {classes[wanted]} ({row['ms']:,.0f} ms)")
        if row["empty"]:
            cell.caption(":material/info: " + empty_note(row["method"], str(classes[wanted]), where))
    faithfulness(model, x, wanted, rows, memo)
    if pressed("Sanity check: re-initialise the layers from the output down", "inside_sanity") or \
            st.session_state.get("inside_sanity_for") == memo:  # asked for this input, class and layer
        st.session_state["inside_sanity_for"] = memo
        test = remembered("inside_sanity_result", memo, lambda: randomisation_test(
            model, x, class_target(wanted), layer, [r["method"] for r in rows if r["map"] is not None]))
        table = sanity_table(test)
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            k: st.column_config.NumberColumn(format="%.2f") for k in table if k != "method"})
        st.caption("Rank correlation with the trained model's map (Adebayo et al., 2018): near 1 = blind to the model.")


def faithfulness(model, x, wanted: int, rows: list[dict], memo) -> None:
    """Each map's deletion curve (remove its most attributed pixels first, 5 % at a time) beside a random order's:
    the lower the area, the more the map points at what the model really uses."""
    curves = remembered("inside_deletion", memo, lambda: {
        **{r["method"]: deletion_curve(model, x, wanted, r["map"]) for r in rows if r["map"] is not None
           and not r["empty"]}, "random order": random_curve(model, x, wanted)})
    left, right = st.columns([3, 2])
    left.plotly_chart(deletion_figure(curves), width="stretch", key="inside_deletion_chart")
    right.dataframe({"method": list(curves), "area under the deletion curve": [c["area"] for c in curves.values()]},
                    hide_index=True, column_config={"area under the deletion curve": st.column_config.NumberColumn(
                        format="%.3f", help="the class's mean probability while the pixels go; lower = more faithful")})
    right.caption("Faithfulness, checkable: remove the pixels a map ranks highest first (5 % at a time, set to the "
                  "data set's mean) and watch the class's probability. A map that points at what the model uses "
                  "makes it fall at once (a low area); one below the random order's is better than guessing.")


def over_training_tab(folder: str, card, image, probs) -> None:
    """The first conv layer's filters and Grad-CAM after each epoch, for runs that kept snapshots."""
    classes, top, x = card.dataset.class_names, int(probs.argmax()), to_batch(image, card)
    epochs = list_snapshots(folder)
    if not epochs:
        st.info("No per-epoch snapshots in this checkpoint: choose `mnist_seed004`, or train with `--snapshots`.")
        return
    epoch = st.select_slider("After epoch", epochs, value=epochs[-1], key="inside_epoch")
    snap = cached_snapshot(folder, epoch)
    if not conv_layer_names(snap):
        st.info("This model has no convolution layer: no filters or Grad-CAM to follow over training.")
        return
    first, p_epoch, layer = conv_layer_names(snap)[0], predict_proba(snap, card, image), default_cam_layer(snap)
    cam = grad_cam(snap, x, class_target(top), layer)[0].numpy()
    a, b = st.columns(2)
    a.image(enlarge(filter_montage(dict(snap.named_modules())[first].weight, cell=28), 280),
            caption=f"first conv layer's filters after epoch {epoch}")
    b.image(enlarge(overlay(image, cam), 280), caption=f"Grad-CAM for {classes[top]} at "
            f"{cam_label(layer, snap, conv_layer_names(snap))} after epoch {epoch}: P({classes[top]}) = "
            f"{p_epoch[top]:.1%}")
    if cam.max() <= 0:
        b.caption(":material/info: " + empty_note("Grad-CAM", str(classes[top]), cam_label(layer, snap,
                                                                                        conv_layer_names(snap))))


@st.fragment  # a square, a stride or a box reruns this tab only, not the whole page
def occlusion_tab(model, card, image, probs, label: str) -> None:
    """How the predicted class's probability drops where a square hides the input, and a box the user draws."""
    (_, size), classes, top, x = input_spec(card), card.dataset.class_names, int(probs.argmax()), to_batch(image, card)
    st.caption("How much the predicted class's probability drops when a square of mean grey hides each spot.")
    left, right = st.columns(2)
    patch = left.slider("Square size", 2, max(3, size // 2), max(2, size // 5), key="inside_patch")
    stride = left.slider("Stride", 1, max(2, size // 4), max(1, size // 14 if size <= 64 else size // 8),
                         key="inside_stride")  # a 224 px photo: 7 x 7 positions, one batch, about a second
    memo = (label, hash(image.tobytes()), top, patch, stride)  # the map only changes with these: reuse it
    drop = remembered("inside_occlusion", memo, lambda: occlusion(model, x, lambda out: out.softmax(1)[:, top],
                                                                   patch=patch, stride=stride)).clamp_min(0).numpy()
    left.image(enlarge(overlay(image, drop / max(drop.max(), 1e-6)), 280), caption="occlusion sensitivity")
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script
    scale, grey = 280 / size, [round(m * 255) for m in card.dataset.mean]  # the grey the map's squares use
    start = occluder_rect(size, patch, scale, grey)
    with right:
        st.caption("Drag out a box on the input to hide that part (the last box drawn counts):")
        moved = st_canvas(background_image=enlarge(image, 280), drawing_mode="rect", fill_color=start["fill"],
                          stroke_color="#e4572e", stroke_width=2, height=280, width=280,
                          initial_drawing={"version": "4.4.0", "objects": [start]},
                          key=f"inside_occluder_{label}_{patch}")
    boxes = ((moved.json_data or {}).get("objects") if moved is not None else None) or [start]
    x0, y0, x1, y1 = box = canvas_box(boxes[-1], scale, size)
    change = (p_hidden := predict_proba(model, card, hide_box(image, box, grey)))[top] - probs[top]
    right.metric(f"P({classes[top]}) with pixels x {x0}-{x1 - 1}, y {y0}-{y1 - 1} hidden", f"{p_hidden[top]:.1%}",
                 f"{change:+.1%}" if abs(change) >= 5e-4 else None)  # under a tenth of a point: no change to show
