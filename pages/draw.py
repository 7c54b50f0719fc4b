"""Draw: a canvas whose prediction updates after every stroke, with each MNIST preprocessing step shown.

Models of photo data sets (Fashion-MNIST, CIFAR-10, ...) take an upload or the camera instead.
"""
import numpy as np
import streamlit as st

from core.data import readable_name
from core.engine.predict import input_spec, is_digit_model, predict_proba
from core.draw.preprocess import (EXAMPLE_STROKES, SAMPLE_PHOTOS, has_dark_background, preprocess_digit,
                                  preprocess_photo, sample_photo)
from core.plots import probability_chart
from core.viz import enlarge
from pages._inputs import sketchpad, upload_image
from pages._models import choose_model
from pages._ui import SHARED_INPUT, page_title, pressed

CANVAS = 280

title = page_title()
_, model, card = choose_model("classification", "draw_model")
title.title("Draw a digit" if is_digit_model(card) else f"Classify a photo ({readable_name(card.dataset.name)})")
classes = card.dataset.class_names


def show_prediction(image: np.ndarray) -> None:
    probs = predict_proba(model, card, image)
    top = int(probs.argmax())
    st.metric("Prediction", str(classes[top]), f"{probs[top]:.1%} confident", delta_color="off", delta_arrow="off")
    st.plotly_chart(probability_chart(probs, classes), width="stretch", key="draw_probs")


@st.fragment  # a stroke reruns only the canvas and what depends on it, not the page
def drawing_board() -> None:
    st.session_state.setdefault("draw_canvas_id", 0)  # a new id gives a new, empty canvas
    st.session_state.setdefault("draw_with_example", True)
    left, right = st.columns([5, 6], gap="large")
    with left:
        brush = st.slider("Brush size", 8, 40, 20, key="draw_brush")
        centre = st.toggle("Centre by centre of mass (how MNIST was made)", value=True, key="draw_centre",
                           help="Switch off to feed the whole canvas, shrunk: off-centre or small digits then fail.")
        canvas_slot = st.container()  # drawn above the buttons, created after them (they pick its key)
        clear, example = st.columns(2)
        for button, with_example in ((pressed("Clear", "draw_clear", clear, icon=":material/delete:", width="stretch"),
                                      False), (pressed("Example", "draw_example", example, icon=":material/draw:",
                                                       width="stretch"), True)):
            if button:
                st.session_state.draw_canvas_id += 1
                st.session_state.draw_with_example = with_example
        with_example = st.session_state.draw_with_example
        with canvas_slot:
            drawing = sketchpad(f"draw_canvas_{st.session_state.draw_canvas_id}", size=CANVAS, width=brush,
                                strokes=EXAMPLE_STROKES if with_example else ())
        st.caption("The prediction updates as the pen lifts after each stroke.")
    prep = preprocess_digit(drawing, centre=centre)
    st.session_state[SHARED_INPUT] = {"image": prep.image, "source": "drawing"}
    with right:
        if prep.empty:
            st.info("The canvas is empty: draw a digit.")
        else:
            show_prediction(prep.image)
    st.subheader("What the model sees")
    cols = st.columns(len(prep.steps))
    for col, (caption, img) in zip(cols, prep.steps):
        col.image(enlarge(img, 168), caption=caption, width=168)


if is_digit_model(card):
    drawing_board()
else:
    channels, size = input_spec(card)
    st.caption(f"This model reads {size}x{size} {'grey' if channels == 1 else 'colour'} images of "
               f"{card.dataset.name}: upload a picture{', take a sample photo' if channels == 3 else ''} "
               "or use the camera; it is centre-cropped and resized.")
    sources = ["Upload", "Camera"] + (["Sample photo"] if channels == 3 else [])
    if not card.dataset.has_test_set and channels == 3:  # a pretrained ImageNet model opens on a real photo
        sources.insert(0, sources.pop())
    source = st.radio("Input", sources, horizontal=True, key="draw_source")
    if source == "Sample photo":
        name = st.selectbox("Photo (bundled with scikit-image)", list(SAMPLE_PHOTOS), key="draw_photo")
        raw, origin = sample_photo(name), name
    else:
        camera = source != "Upload"
        upload = upload_image(f"draw_{'camera' if camera else 'upload'}", source, camera=camera)
        if upload is None:
            st.info("Choose an image to classify.")
            st.stop()
        raw, origin = upload
    image = preprocess_photo(raw, size=size, channels=channels, dark_background=has_dark_background(card))
    st.session_state[SHARED_INPUT] = {"image": raw, "source": origin}
    left, right = st.columns(2)
    left.image(raw, caption="your image", width=240)
    left.image(enlarge(image, 240), caption=f"model input {size}x{size}")
    with right:
        show_prediction(image)
