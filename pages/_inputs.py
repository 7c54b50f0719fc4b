"""Choosing an image: the drawing pad, an upload or the camera, a test image, a sample photo; each read by core's
guarded decoder and preprocessed to the model's input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.data import DataError
from core.data.images import ImageError
from core.draw.preprocess import (SAMPLE_PHOTOS, example_digit, has_dark_background, pad_strokes, preprocess_photo,
                                  read_photo, render_strokes, sample_photo)
from core.engine.predict import input_spec, is_digit_model
from pages._ui import SHARED_INPUT, cached_dataset, sample_note


IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
SKETCHPAD = st.components.v2.component("cnn_studio_sketchpad", **{  # the same definition each import: no warning
    kind: (Path(__file__).parent / "assets" / f"sketchpad.{kind}").read_text() for kind in ("js", "css")})


def sketchpad(key: str, *, size: int, width: int, strokes=(), stroke_width: int = 20,
              live: dict | None = None) -> np.ndarray:
    """A drawing pad (pages/assets/sketchpad.js, with undo and redo) that sends each stroke as the pen lifts, opened
    on `strokes` (polylines); returns the grey image (size x size, ink bright) of what it shows now. With `live`
    (`core.web.live.live_spec`), the pad also runs the model in the browser on every pointer move."""
    start = [{"w": stroke_width, "p": [list(point) for point in stroke]} for stroke in strokes]
    data = {"size": size, "width": width, "strokes": start, **({"live": live} if live else {})}
    sent = SKETCHPAD(key=key, data=data, default={"strokes": None}, on_strokes_change=lambda: None,
                     width="content").get("strokes")
    lines, widths = pad_strokes(start if sent is None else sent, size=size)
    return render_strokes(lines, size=size, width=widths)


def upload_image(key: str, label: str = "Image", camera: bool = False) -> tuple[np.ndarray, str] | None:
    """The one way a page takes an image file (or a camera shot): (decoded image, its name), read by core's
    guarded decoder; a file that is not an image gets one message saying what to upload, and None."""
    file = st.camera_input(label, key=key) if camera else st.file_uploader(label, type=IMAGE_TYPES, key=key)
    if file is None:
        return None
    try:
        return read_photo(file.getvalue()), getattr(file, "name", "camera")
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}.")  # the reader says what it expected
        return None


def test_image(card, key: str) -> np.ndarray | None:
    """A test image of the model's data set (the shipped sample when the set is not here), chosen by class and index,
    as uint8 (C, H, W); None, with a word, when there is none."""
    classes = card.dataset.class_names
    try:
        data = cached_dataset(card.dataset.name)
    except DataError as exc:
        st.warning(f"The test set is not available here ({exc}) Showing an example instead.")
        return None
    sample_note(data)
    left, right = st.columns(2)
    wanted = left.selectbox("Class", range(len(classes)), format_func=lambda i: str(classes[i]), key=f"{key}_class")
    pool = np.nonzero(data.test_y.numpy() == wanted)[0]
    if not len(pool):
        st.warning(f"No test image of {classes[wanted]} here.")
        return None
    index = right.number_input(f"Index among {len(pool)} test images", 0, len(pool) - 1, 0, key=f"{key}_index")
    return data.test_x[pool[index]].numpy()


def choose_image(card, key: str) -> np.ndarray:
    """The input a classifier page explains, as uint8 (C, H, W) at the model's size: the Draw page's drawing, a
    test image, a sample photo (scikit-image's bundled photos, for colour models) or an upload."""
    channels, size = input_spec(card)
    photo = {"channels": channels, "dark_background": has_dark_background(card)}
    shared, tests = st.session_state.get(SHARED_INPUT), card.dataset.has_test_set
    sources = ((["Drawing from the Draw page"] if shared is not None else []) + (["Test image"] if tests else [])
               + (["Sample photo"] if channels == 3 else []) + ["Upload"])
    if not tests and "Sample photo" in sources:  # a pretrained model opens on a real photo
        sources.insert(0, sources.pop(sources.index("Sample photo")))
    source = st.radio("Input", sources, horizontal=True, key=f"{key}_source")
    image = None
    if source == "Drawing from the Draw page":
        raw = shared["image"]
        image = raw if raw.shape == (size, size) and channels == 1 else preprocess_photo(raw, size=size, **photo)
    elif source == "Sample photo":
        name = st.selectbox("Photo (bundled with scikit-image)", list(SAMPLE_PHOTOS), key=f"{key}_photo")
        image = preprocess_photo(sample_photo(name), size=size, **photo)
    elif source == "Test image":
        image = test_image(card, key)
    else:
        upload = upload_image(f"{key}_upload")
        if upload is not None:
            image = preprocess_photo(upload[0], size=size, **photo)
    if image is None:
        image = example_digit(size) if is_digit_model(card) else np.zeros((channels, size, size), np.uint8)
    return image if image.ndim == 3 else image[None]
