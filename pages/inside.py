"""Inside the network: layer outputs, filters, attribution methods (with a sanity check), occlusion, over training."""
import pandas as pd
import streamlit as st

from core.engine.checkpoint import list_snapshots
from core.inside.attribution import METHODS, WHAT, compare, randomisation_test, sanity_table
from core.inside.explain import (activations, class_target, conv_layer_names, default_cam_layer, grad_cam, layer_label,
                                 layer_table)
from core.engine.predict import input_spec, predict_proba, to_batch
from core.plots import montage_figure, probability_chart
from core.viz import enlarge, filter_montage, montage, overlay
from pages._inputs import choose_image
from pages._explain import occlusion_tab
from pages._models import cached_snapshot, choose_model
from pages._ui import page_title, pressed, remembered

page_title("Inside the network")
folder, model, card = choose_model("classification", "inside_model")
(_, size), label, classes = input_spec(card), folder.rsplit("/", 1)[-1], card.dataset.class_names
image = choose_image(card, "inside")

probs, x, convs = predict_proba(model, card, image), to_batch(image, card), conv_layer_names(model)
top, named = int(probs.argmax()), lambda n: layer_label(n, convs)  # conv layers named for a reader
left, right = st.columns([1, 2])
left.image(enlarge(image, 196), caption="input")
left.metric("Prediction", str(classes[top]), f"{probs[top]:.1%} confident", delta_color="off", delta_arrow="off")
right.plotly_chart(probability_chart(probs, classes), width="stretch", key="inside_probs")

maps_tab, filters_tab, cam_tab, occ_tab, time_tab = st.tabs(
    ["Layer outputs", "Filters", "Attribution methods", "Occlusion", "Over training"])
with maps_tab:
    _, acts = activations(model, x)
    st.dataframe(pd.DataFrame(layer_table(model, acts)), hide_index=True, width="stretch", height=220)
    spatial = [n for n, a in acts.items() if a.dim() == 4]
    if not spatial:
        st.info("No layer of this model has a spatial (channels x height x width) output to show.")
    else:
        first = next((i for i, n in enumerate(spatial) if n in convs), 0)  # open on the first convolution
        layer = st.selectbox("Layer", spatial, index=first, key=f"inside_layer_{label}",
                             format_func=lambda n: f"{named(n)}: {'x'.join(map(str, acts[n].shape[1:]))}")
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
    if not convs:
        st.info("This model has no convolution layer, so there are no filters to show.")
    else:
        conv = st.selectbox("Conv layer", convs, key=f"inside_conv_{label}", format_func=named)
        weight = dict(model.named_modules())[conv].weight
        st.image(enlarge(filter_montage(weight, cell=28), 360), caption=f"{'x'.join(map(str, weight.shape))} weights "
                 "(one tile per filter; mean over input channels unless they are RGB)")
with cam_tab:  # every attribution method on the same input and class, with its cost; then the sanity check
    left, mid, right = st.columns([1, 1, 2])
    wanted = left.selectbox("Explain class", range(len(classes)), index=top, key=f"inside_cam_class_{label}",
                            format_func=lambda i: f"{classes[i]} ({probs[i]:.1%}){' - predicted' if i == top else ''}")
    layer = mid.selectbox("CAM layer", convs, index=convs.index(default_cam_layer(model)), key=f"inside_cam_{label}",
                          format_func=named) if convs else None  # the layer of the CAM methods
    methods = right.multiselect("Methods", METHODS, METHODS if size <= 64 else METHODS[:4],  # kept per model
                                key=f"inside_methods_{label}", help="\n\n".join(f"**{m}**: {WHAT[m]}" for m in METHODS))
    memo, where = (label, hash(image.tobytes()), wanted, layer, tuple(methods)), layer and named(layer)
    rows = remembered("inside_compare", memo, lambda: compare(model, x, class_target(wanted), layer, methods, where))
    for cell, row in zip(st.columns(4) + st.columns(4), rows):
        if row["map"] is None:
            cell.info(f"{row['method']} needs a convolution layer; this model has none.")
        else:
            cell.image(enlarge(overlay(image, row["map"], alpha=0.6), 220),
                       caption=f"{row['label']} for {classes[wanted]} ({row['ms']:,.0f} ms)")
    if pressed("Sanity check: re-initialise the layers from the output down", "inside_sanity") or \
            st.session_state.get("inside_sanity_for") == memo:  # asked for this input, class and layer
        st.session_state["inside_sanity_for"] = memo
        test = remembered("inside_sanity_result", memo, lambda: randomisation_test(
            model, x, class_target(wanted), layer, [r["method"] for r in rows if r["map"] is not None]))
        st.dataframe(sanity_table(test), hide_index=True, width="stretch")
        st.caption("Rank correlation with the trained model's map (Adebayo et al., 2018): near 1 = blind to the model.")

with occ_tab:
    occlusion_tab(model, card, image, probs, label)
with time_tab:
    epochs = list_snapshots(folder)
    if not epochs:
        st.info("No per-epoch snapshots in this checkpoint: choose `mnist_seed004`, or train with `--snapshots`.")
    elif not convs:
        st.info("This model has no convolution layer: no filters or Grad-CAM to follow over training.")
    else:
        epoch = st.select_slider("After epoch", epochs, value=epochs[-1], key="inside_epoch")
        first, p_epoch = conv_layer_names(snap := cached_snapshot(folder, epoch))[0], predict_proba(snap, card, image)
        a, b = st.columns(2)
        a.image(enlarge(filter_montage(dict(snap.named_modules())[first].weight, cell=28), 280),
                caption=f"first conv layer's filters after epoch {epoch}")
        b.image(enlarge(overlay(image, grad_cam(snap, x, class_target(top), default_cam_layer(snap))[0].numpy()), 280),
                caption=f"Grad-CAM for {classes[top]} after epoch {epoch}: P({classes[top]}) = {p_epoch[top]:.1%}")
