"""Inside the network: layer outputs, filters, what a neuron looks for, one output's arithmetic, attribution methods
(with a sanity check), occlusion, over training."""
import pandas as pd
import streamlit as st

from core.engine.predict import input_spec, to_batch
from core.inside.explain import activations, conv_layer_names, layer_label, layer_table
from core.classifier.ood import answer
from core.charts import montage_figure
from core.viz import enlarge, filter_montage, montage
from pages._explain import attribution_tab, occlusion_tab, over_training_tab
from pages._inputs import choose_image
from pages._neurons import arithmetic_tab, neurons_tab
from pages._models import choose_model
from pages._web import onnx_button
from pages._ui import page_title, show_answer

page_title("Inside the network")
folder, model, card = choose_model("classification", "inside_model")
onnx_button(folder, model, card, "inside")
(_, size), label, classes = input_spec(card), folder.rsplit("/", 1)[-1], card.dataset.class_names
image = choose_image(card, "inside")

said, x, convs = answer(model, card, image), to_batch(image, card), conv_layer_names(model)
probs = said.raw  # the model's own softmax, which the explanations follow (one forward pass for both)
top, named = int(probs.argmax()), lambda n: layer_label(n, convs)  # conv layers named for a reader
left, right = st.columns([1, 2])
left.image(enlarge(image, 196), caption="input")
show_answer(said, classes, "inside", right)

maps_tab, filters_tab, neuron_tab, sum_tab, cam_tab, occ_tab, time_tab = st.tabs(  # the tab open is known (rerun)
    ["Layer outputs", "Filters", "Neurons", "Arithmetic", "Attribution methods", "Occlusion", "Over training"],
    key="inside_tab", on_change="rerun")
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
with neuron_tab:  # what a channel or class looks for: optimisation starts only when the tab is open
    if neuron_tab.open:
        neurons_tab(folder, model, card, label)
with sum_tab:
    arithmetic_tab(model, card, image, label)
with cam_tab:  # every attribution method on the same input and class, with its cost; then the sanity check
    attribution_tab(model, card, image, probs, label)
with occ_tab:
    occlusion_tab(model, card, image, probs, label)
with time_tab:
    over_training_tab(folder, card, image, probs)
