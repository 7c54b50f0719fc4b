"""Inside the network: layer outputs, filters, Grad-CAM, saliency and occlusion for one input."""
import pandas as pd
import streamlit as st

from core.engine.checkpoint import list_snapshots
from core.inside.explain import (activations, canvas_box, class_target, conv_layer_names, default_cam_layer, grad_cam,
                                 hide_box, layer_table, occluder_rect, occlusion, saliency)
from core.engine.predict import input_spec, predict_proba, to_batch
from core.plots import montage_figure, probability_chart
from core.viz import enlarge, filter_montage, montage, overlay
from pages._ui import cached_snapshot, choose_image, choose_model

st.title("Inside the network")
folder, model, card = choose_model("classification", "inside_model")
label = folder.rsplit("/", 1)[-1]
channels, size = input_spec(card)
classes = card.dataset.class_names
image = choose_image(card, "inside")

probs = predict_proba(model, card, image)
top = int(probs.argmax())
x = to_batch(image, card)
left, right = st.columns([1, 2])
left.image(enlarge(image, 196), caption="input")
left.metric("Prediction", str(classes[top]), f"{probs[top]:.1%}", delta_color="off")
right.plotly_chart(probability_chart(probs, classes), width="stretch", key="inside_probs")

maps_tab, filters_tab, cam_tab, occ_tab, time_tab = st.tabs(
    ["Layer outputs", "Filters", "Grad-CAM & saliency", "Occlusion", "Over training"])
with maps_tab:
    _, acts = activations(model, x)
    st.dataframe(pd.DataFrame(layer_table(model, acts)), hide_index=True, width="stretch", height=220)
    spatial = [n for n, a in acts.items() if a.dim() == 4]
    if not spatial:
        st.info("No layer of this model has a spatial (channels x height x width) output to show.")
    else:
        layer = st.selectbox("Layer", spatial, index=0, key="inside_layer",
                             format_func=lambda n: f"{n}: {' x '.join(map(str, acts[n].shape[1:]))}")
        act, grid_key = acts[layer][0], f"inside_grid_{label}_{layer}"
        clicked = [p for p in ((st.session_state.get(grid_key) or {}).get("selection") or {}).get("points", [])
                   if p.get("curve_number") == 1]
        channel = int(clicked[0]["point_index"]) if clicked else 0
        grid_col, one_col = st.columns([3, 2])
        grid_col.plotly_chart(montage_figure(act, 24, channel), key=grid_key, on_select="rerun",
                              selection_mode="points", config={"displayModeBar": False})
        grid_col.caption(f"All {act.shape[0]} channels of {layer}: click one to enlarge it.")
        one_col.image(enlarge(montage(act[channel:channel + 1], pad=0), 240), caption=f"channel {channel} of {layer}")
with filters_tab:
    convs = conv_layer_names(model)
    if not convs:
        st.info("This model has no convolution layer, so there are no filters to show.")
    else:
        conv = st.selectbox("Conv layer", convs, key="inside_conv")
        weight = dict(model.named_modules())[conv].weight
        st.image(enlarge(filter_montage(weight, cell=28), 360), caption=f"{conv}: {' x '.join(map(str, weight.shape))} "
                 "weights (one tile per filter; mean over input channels unless they are RGB)")
with cam_tab:
    left, right = st.columns(2)
    wanted = left.selectbox("Explain class", range(len(classes)), index=top, key=f"inside_cam_class_{label}",
                            format_func=lambda i: f"{classes[i]} ({probs[i]:.1%}){' - predicted' if i == top else ''}")
    a, b = st.columns(2)
    if convs:
        cam_layer = right.selectbox("Grad-CAM layer", convs, index=convs.index(default_cam_layer(model)),
                                    key="inside_cam_layer")
        cam = grad_cam(model, x, class_target(wanted), cam_layer)[0].numpy()
        a.image(enlarge(overlay(image, cam), 280), caption=f"Grad-CAM at {cam_layer} for {classes[wanted]}")
    else:
        a.info("Grad-CAM needs a convolution layer; this model has none. The saliency map works on any model.")
    sal = saliency(model, x, class_target(wanted))[0].numpy()
    b.image(enlarge(overlay(image, sal, alpha=0.7), 280), caption=f"gradient saliency for {classes[wanted]}")
with occ_tab:
    st.caption("How much the predicted class's probability drops when a square of the data set's mean grey "
               "hides each spot.")
    left, right = st.columns(2)
    patch = left.slider("Square size", 2, max(3, size // 2), max(2, size // 5), key="inside_patch")
    stride = left.slider("Stride", 1, max(2, size // 4), max(1, size // 14 if size <= 64 else size // 8),
                         key="inside_stride")  # a 224 px photo: 7 x 7 positions, one batch, about a second
    memo = (label, hash(image.tobytes()), top, patch, stride)  # the map only changes with these: reuse it
    if st.session_state.get("inside_occlusion", (None,))[0] != memo:
        softmax_top = lambda out: out.softmax(1)[:, top]  # noqa: E731
        st.session_state["inside_occlusion"] = (memo, occlusion(model, x, softmax_top, patch=patch, stride=stride))
    drop = st.session_state["inside_occlusion"][1].clamp_min(0).numpy()
    left.image(enlarge(overlay(image, drop / max(drop.max(), 1e-6)), 280), caption="occlusion sensitivity")
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script

    scale, grey = 280 / size, [round(m * 255) for m in card.dataset.mean]  # the grey the map's squares use
    start = occluder_rect(size, patch, scale, grey)
    with right:
        st.caption("Drag out a box on the input to hide that part (the last box counts; the toolbar's edit "
                   "toggle moves it):")
        moved = st_canvas(background_image=enlarge(image, 280), drawing_mode="rect", fill_color=start["fill"],
                          stroke_color="#e4572e", stroke_width=2, height=280, width=280,
                          initial_drawing={"version": "4.4.0", "objects": [start]},
                          key=f"inside_occluder_{label}_{patch}")
    boxes = ((moved.json_data or {}).get("objects") if moved is not None else None) or [start]
    x0, y0, x1, y1 = box = canvas_box(boxes[-1], scale, size)
    hidden = hide_box(image, box, grey)
    p_hidden = predict_proba(model, card, hidden)
    right.metric(f"P({classes[top]}) with pixels x {x0}-{x1 - 1}, y {y0}-{y1 - 1} hidden", f"{p_hidden[top]:.1%}",
                 f"{p_hidden[top] - probs[top]:+.1%}")
with time_tab:
    epochs = list_snapshots(folder)
    if not epochs:
        st.info("This checkpoint kept no per-epoch snapshots. Choose the shipped `mnist_seed004`, or train with "
                "`python -m core train ... --snapshots`, to watch filters and Grad-CAM change over training.")
    elif not convs:
        st.info("This model has no convolution layer: no filters or Grad-CAM to follow over training.")
    else:
        epoch = st.select_slider("After epoch", epochs, value=epochs[-1], key="inside_epoch")
        snap = cached_snapshot(folder, epoch)
        p_epoch = predict_proba(snap, card, image)
        first = conv_layer_names(snap)[0]
        a, b = st.columns(2)
        a.image(enlarge(filter_montage(dict(snap.named_modules())[first].weight, cell=28), 280),
                caption=f"{first} filters after epoch {epoch}")
        cam_epoch = grad_cam(snap, x, class_target(top), default_cam_layer(snap))[0].numpy()
        b.image(enlarge(overlay(image, cam_epoch), 280),
                caption=f"Grad-CAM for {classes[top]} after epoch {epoch}: P({classes[top]}) = {p_epoch[top]:.1%}")
