"""Inside the network: layer outputs, filters, Grad-CAM, saliency and occlusion for one input."""
import numpy as np
import pandas as pd
import streamlit as st

from core.data import DataError
from core.explain import (activations, class_target, conv_layer_names, default_cam_layer, grad_cam, layer_table,
                          occlusion, saliency)
from core.inference import input_spec, is_digit_model, predict_proba, to_batch
from core.preprocess import example_digit, preprocess_photo, read_image
from core.viz import filter_montage, montage, overlay
from pages._common import (SHARED_INPUT, cached_dataset, choose_checkpoint, enlarge,
                           probability_chart)

st.title("Inside the network")
model, card = choose_checkpoint("inside_model")
channels, size = input_spec(card)
classes = card["dataset"]["class_names"]

shared = st.session_state.get(SHARED_INPUT)
sources = (["Drawing from the Draw page"] if shared is not None else []) + ["Test image", "Upload"]
source = st.radio("Input", sources, horizontal=True, key="inside_source")
image = None
if source == "Drawing from the Draw page":
    raw = shared["image"]
    image = raw if raw.shape == (size, size) and channels == 1 else preprocess_photo(raw, size=size, channels=channels)
elif source == "Test image":
    try:
        data = cached_dataset(card["dataset"]["name"])
        left, right = st.columns(2)
        wanted = left.selectbox("Class", range(len(classes)), format_func=lambda i: str(classes[i]), key="inside_class")
        pool = np.nonzero(data.test_y.numpy() == wanted)[0]
        index = right.number_input(f"Index among {len(pool)} test images", 0, len(pool) - 1, 0, key="inside_index")
        image = data.test_x[pool[index]].numpy()
    except DataError as exc:
        st.warning(f"The test set is not available here ({exc}) Showing the example drawing instead.")
else:
    file = st.file_uploader("Image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="inside_upload")
    if file is not None:
        try:
            image = preprocess_photo(read_image(file.getvalue()), size=size, channels=channels)
        except ValueError as exc:
            st.error(f"Cannot use this file: {exc}.")
if image is None:
    image = example_digit(size) if is_digit_model(card) else np.zeros((channels, size, size), np.uint8)
image = image if image.ndim == 3 else image[None]

probs = predict_proba(model, card, image)
top = int(probs.argmax())
x = to_batch(image, card)
left, right = st.columns([1, 2])
left.image(enlarge(image[0] if channels == 1 else image.transpose(1, 2, 0), 196), caption="input")
left.metric("Prediction", str(classes[top]), f"{probs[top]:.1%}", delta_color="off")
right.plotly_chart(probability_chart(probs, classes), width="stretch", key="inside_probs")

maps_tab, filters_tab, cam_tab, occ_tab = st.tabs(["Layer outputs", "Filters", "Grad-CAM & saliency", "Occlusion"])
with maps_tab:
    _, acts = activations(model, x)
    st.dataframe(pd.DataFrame(layer_table(model, acts)), hide_index=True, width="stretch", height=220)
    spatial = [n for n, a in acts.items() if a.dim() == 4]
    layer = st.selectbox("Layer", spatial, index=0, key="inside_layer",
                         format_func=lambda n: f"{n}: {' x '.join(map(str, acts[n].shape[1:]))}")
    act = acts[layer][0]
    grid_col, one_col = st.columns([3, 2])
    grid_col.image(montage(act, cell=max(24, act.shape[-1])), caption=f"all {act.shape[0]} channels of {layer}")
    channel = one_col.slider("Enlarge channel", 0, act.shape[0] - 1, 0, key="inside_channel")
    one_col.image(enlarge(montage(act[channel:channel + 1], pad=0), 240), caption=f"channel {channel}")
with filters_tab:
    conv = st.selectbox("Conv layer", conv_layer_names(model), key="inside_conv")
    weight = dict(model.named_modules())[conv].weight
    st.image(filter_montage(weight, cell=28), caption=f"{conv}: {' x '.join(map(str, weight.shape))} weights "
             "(one tile per filter; mean over input channels unless they are RGB)")
with cam_tab:
    left, right = st.columns(2)
    wanted = left.selectbox("Explain class", range(len(classes)), index=top, key="inside_cam_class",
                            format_func=lambda i: f"{classes[i]} ({probs[i]:.1%})" + (" - predicted" if i == top else ""))
    convs = conv_layer_names(model)
    cam_layer = right.selectbox("Grad-CAM layer", convs, index=convs.index(default_cam_layer(model)), key="inside_cam_layer")
    cam = grad_cam(model, x, class_target(wanted), cam_layer)[0].numpy()
    sal = saliency(model, x, class_target(wanted))[0].numpy()
    a, b = st.columns(2)
    a.image(enlarge(overlay(image, cam), 280), caption=f"Grad-CAM at {cam_layer} for {classes[wanted]}")
    b.image(enlarge(overlay(image, sal, alpha=0.7), 280), caption=f"gradient saliency for {classes[wanted]}")
with occ_tab:
    st.caption("How much the predicted class's probability drops when a grey square hides each spot.")
    left, right = st.columns(2)
    patch = left.slider("Square size", 2, max(3, size // 2), max(2, size // 5), key="inside_patch")
    stride = left.slider("Stride", 1, max(2, size // 4), max(1, size // 14), key="inside_stride")
    softmax_top = lambda out: out.softmax(1)[:, top]  # noqa: E731
    drop = occlusion(model, x, softmax_top, patch=patch, stride=stride).clamp_min(0).numpy()
    left.image(enlarge(overlay(image, drop / max(drop.max(), 1e-6)), 280), caption="occlusion sensitivity")
    cx = right.slider("Occluder x", 0, size - patch, (size - patch) // 2, key="inside_occ_x")
    cy = right.slider("Occluder y", 0, size - patch, (size - patch) // 2, key="inside_occ_y")
    hidden = image.copy()
    hidden[:, cy:cy + patch, cx:cx + patch] = 0
    p_hidden = predict_proba(model, card, hidden)
    right.image(enlarge(hidden[0] if channels == 1 else hidden.transpose(1, 2, 0), 196), caption="occluded input")
    right.metric(f"P({classes[top]})", f"{p_hidden[top]:.1%}", f"{p_hidden[top] - probs[top]:+.1%}")
