"""Draw: a canvas whose prediction updates after every stroke, with each MNIST preprocessing step shown.

Models of photo data sets (Fashion-MNIST, CIFAR-10, ...) take an upload or the camera instead.
"""
import numpy as np
import streamlit as st

from core.data import readable_name
from core.classifier.ood import answer
from core.engine.predict import digit_box, input_spec, is_digit_model
from core.draw.preprocess import (EXAMPLE_STROKES, SAMPLE_PHOTOS, has_dark_background, preprocess_digit,
                                  preprocess_photo, sample_photo, shows_a_class)
from core.viz import enlarge
from pages._inputs import sketchpad, test_image, upload_image
from pages._models import choose_model
from pages._web import live_pad, onnx_button
from pages._ui import SHARED_INPUT, page_title, pressed, show_answer

CANVAS = 280

title = page_title()
folder, model, card = choose_model("classification", "draw_model")
label = folder.rsplit("/", 1)[-1]
title.title("Draw a digit" if is_digit_model(card) else f"Classify a photo ({readable_name(card.dataset.name)})")
classes = card.dataset.class_names
onnx_button(folder, model, card, "draw")


def show_prediction(image: np.ndarray) -> None:
    show_answer(answer(model, card, image), classes, "draw")


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
        live, why = live_pad(folder, model, card) if centre else (None, "the browser follows the centred input only")
        with canvas_slot:
            drawing = sketchpad(f"draw_canvas_{st.session_state.draw_canvas_id}", size=CANVAS, width=brush,
                                strokes=EXAMPLE_STROKES if with_example else (), live=live)
        st.caption("The bars under the pad follow the pen: the model runs in your browser (ONNX Runtime Web, the "
                   "same preprocessing). The answer on the right and the rest of the page follow each stroke as "
                   "the pen lifts." if live else f"The prediction updates as the pen lifts after each stroke ({why}).")
    prep = preprocess_digit(drawing, size=size, box=digit_box(size), centre=centre)  # the model's own input size
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


def photo_board(channels: int, size: int) -> None:
    """A photo model's input: a sample photo (colour models), a test image, an upload or the camera."""
    sources = (["Sample photo"] if channels == 3 else []) + (["Test image"] if card.dataset.has_test_set else [])
    source = st.radio("Input", sources + ["Upload", "Camera"], horizontal=True, key=f"draw_source_{label}")
    if source == "Sample photo":
        name = st.selectbox("Photo (bundled with scikit-image)", list(SAMPLE_PHOTOS), key="draw_photo")
        raw, origin = sample_photo(name), f"sample photo: {name}"
        if not shows_a_class(name, classes):
            st.info(f"This photo shows no {readable_name(card.dataset.name)} class: the model must still answer one of "
                    f"its {len(classes)}, so read its answer as the nearest of those, not as a recognition.")
    elif source == "Test image":
        raw, origin = test_image(card, f"draw_{label}"), "test image"
        if raw is None:
            st.stop()
        raw = raw.transpose(1, 2, 0).squeeze(-1) if raw.shape[0] == 1 else raw.transpose(1, 2, 0)  # (H, W[, 3])
    else:
        upload = upload_image(f"draw_{'camera' if source == 'Camera' else 'upload'}", source, camera=source == "Camera")
        if upload is None:
            st.info("Choose an image to classify.")
            st.stop()
        raw, origin = upload
    image = preprocess_photo(raw, size=size, channels=channels, dark_background=has_dark_background(card))
    st.session_state[SHARED_INPUT] = {"image": raw, "source": origin}
    left, right = st.columns(2)
    left.image(enlarge(raw, 240) if max(raw.shape[:2]) < 64 else raw, width=240, caption=origin)
    left.image(enlarge(image, 240), caption=f"model input {size}x{size}")
    with right:
        show_prediction(image)


channels, size = input_spec(card)
if is_digit_model(card):
    drawing_board()
else:
    st.caption(f"This model reads {size}x{size} {'grey' if channels == 1 else 'colour'} images of "
               f"{readable_name(card.dataset.name)}: choose an input below; it is centre-cropped and resized.")
    photo_board(channels, size)
