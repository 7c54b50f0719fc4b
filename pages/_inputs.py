"""Choosing the image a classifier page explains: the Draw page's drawing, a test image, a sample photo
(scikit-image's bundled photos, for colour models) or an upload. Returns uint8 (C, H, W) at the model's size."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.data import DataError
from core.engine.predict import input_spec, is_digit_model
from core.draw.preprocess import SAMPLE_PHOTOS, example_digit, has_dark_background, preprocess_photo, read_image, sample_photo
from pages._common import SHARED_INPUT, cached_dataset

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]


def upload_image(key: str, label: str = "Image", camera: bool = False) -> tuple[np.ndarray, str] | None:
    """The one way a page takes an image file (or a camera shot): (decoded image, its name), read by core's
    guarded decoder; a file that is not an image gets one message saying what to upload, and None."""
    file = st.camera_input(label, key=key) if camera else st.file_uploader(label, type=IMAGE_TYPES, key=key)
    if file is None:
        return None
    try:
        return read_image(file.getvalue()), getattr(file, "name", "camera")
    except ValueError as exc:
        st.error(f"Cannot use this file: {exc}.")  # the reader says what it expected
        return None


def has_test_set(card: dict) -> bool:
    """Whether the model's data set can be loaded here (ImageNet, a pretrained model's, cannot)."""
    return card.dataset.name != "imagenet"


def choose_input(card: dict, key: str) -> np.ndarray:
    channels, size = input_spec(card)
    classes, photo = card.dataset.class_names, {"channels": channels, "dark_background": has_dark_background(card)}
    shared = st.session_state.get(SHARED_INPUT)
    sources = ((["Drawing from the Draw page"] if shared is not None else []) + (["Test image"] if has_test_set(card) else [])
               + (["Sample photo"] if channels == 3 else []) + ["Upload"])
    if not has_test_set(card):  # a pretrained model opens on a real photo
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
        try:
            data = cached_dataset(card.dataset.name)
            left, right = st.columns(2)
            wanted = left.selectbox("Class", range(len(classes)), format_func=lambda i: str(classes[i]), key=f"{key}_class")
            pool = np.nonzero(data.test_y.numpy() == wanted)[0]
            index = right.number_input(f"Index among {len(pool)} test images", 0, len(pool) - 1, 0, key=f"{key}_index")
            image = data.test_x[pool[index]].numpy()
        except DataError as exc:
            st.warning(f"The test set is not available here ({exc}) Showing the example drawing instead.")
    else:
        upload = upload_image(f"{key}_upload")
        if upload is not None:
            image = preprocess_photo(upload[0], size=size, **photo)
    if image is None:
        image = example_digit(size) if is_digit_model(card) else np.zeros((channels, size, size), np.uint8)
    return image if image.ndim == 3 else image[None]
