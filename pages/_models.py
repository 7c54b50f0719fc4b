"""Choosing a model (the shipped checkpoints, the user's runs, models uploaded in this session) and uploading
a data set.

Uploaded models live in this browser session only (`st.session_state[UPLOADED]`), never in the shared
caches, and every page that chooses a classifier with `choose_model` lists them beside the checkpoints.
"""
from __future__ import annotations

import streamlit as st

from core.byo import NORMALISATIONS, ModelFileError, describe, load_model_file, with_class_names, with_normalisation
from core.engine.checkpoint import CheckpointError
from pages._common import cached_checkpoint, model_choices

UPLOADED = "uploaded_models"  # session key: label -> (model, card)
UPLOAD_TYPES = ["zip", "pt", "pth", "ts", "torchscript", "keras", "h5", "hdf5", "pkl", "safetensors", "onnx", "bin"]


def uploaded_models() -> dict:
    return st.session_state.setdefault(UPLOADED, {})


def upload_panel(select_key: str) -> None:
    """An expander to upload a model; a good upload becomes the selected model of `select_key`'s selectbox."""
    models = uploaded_models()
    with st.expander("Bring your own model", icon=":material/upload_file:", expanded=False):
        st.caption("A zipped CNN Studio checkpoint (card.json + model.safetensors), a TorchScript file, or a Keras "
                   "`.keras` / `.h5` model (e.g. seed 001's `mnist_cnn_best.h5`). Nothing in the file is run as "
                   "code: pickles and Keras Lambda layers are refused.")
        file = st.file_uploader("Model file", type=UPLOAD_TYPES, key=f"{select_key}_byo_file")
        if file is not None and st.session_state.get(f"{select_key}_byo_done") != file.file_id:
            st.session_state[f"{select_key}_byo_done"] = file.file_id  # load each upload once
            try:
                with st.spinner("Reading the model..."):
                    model, card = load_model_file(file.getvalue(), file.name)
            except Exception as exc:  # noqa: BLE001 - ModelFileError explains itself; anything else is a bad file too
                reason = exc if isinstance(exc, ModelFileError) else f"it could not be read ({type(exc).__name__}: {exc})."
                st.error(f"**{file.name}** cannot be used: {reason}")
                st.session_state[f"{select_key}_byo_error"] = f"**{file.name}** cannot be used: {reason}"
            else:
                label = f"{file.name} (uploaded {card.model.name})"
                models[label] = (model, card)
                st.session_state[select_key] = label
                st.session_state.pop(f"{select_key}_byo_error", None)
        elif st.session_state.get(f"{select_key}_byo_error") and file is not None:
            st.error(st.session_state[f"{select_key}_byo_error"])
        label = st.session_state.get(select_key)
        if label in models:
            _settings(label, models)


def _settings(label: str, models: dict) -> None:
    model, card = models[label]
    st.success(describe(card))
    if (card.upload or {}).get("layers_visible") is False:
        st.warning("This TorchScript model's children do not chain into its output, so its layers cannot be "
                   "shown one by one: prediction works, feature maps and Grad-CAM do not.")
    if not card.dataset.normalisation:
        return  # a CNN Studio checkpoint: its card already says everything
    left, right = st.columns(2)
    options = [n for n in NORMALISATIONS if card.dataset.channels == 3 or "ImageNet" not in n]
    norm = left.selectbox("Input normalisation", options, index=options.index(card.dataset.normalisation),
                          key=f"byo_norm_{label}", help="How the model's training data was scaled. Seed 001 "
                          "divides pixels by 255: [0, 1].")
    names = right.text_input("Class names (comma separated)", ", ".join(card.dataset.class_names),
                             key=f"byo_names_{label}")
    new = with_normalisation(card, norm)
    parsed = [n.strip() for n in names.split(",")]
    try:
        new = with_class_names(new, parsed) if parsed != card.dataset.class_names else new
    except ValueError as exc:
        st.warning(f"Class names not changed: {exc}")
    models[label] = (model, new)


TRAIN_HINTS = {"classification": "python -m core train --recipe fast_mnist --out runs/mnist",
               "reconstruction": "python -m core train-autoencoder --out runs/ae",
               "multi_digit": "python -m core train-pair --out runs/pair",
               "digit_string": "python -m core train-crnn --out runs/crnn",
               "captioning": "python -m core train-captioner --out runs/captioner"}


def choose_model(task: str, key: str, label: str = "Model"):
    """The one model chooser of every page: a selectbox over the shipped checkpoints and saved runs of `task`
    (for classifiers also this session's uploads, with the upload panel below it).

    Returns (folder, model, card), or stops the page with a message saying how to train one. An uploaded
    model's folder is a name that holds no snapshots unless the upload was a checkpoint zip.
    """
    select_slot = st.container()
    if task == "classification":
        upload_panel(key)  # before the selectbox runs, so a fresh upload can become its value
    choices, uploads = model_choices(task), (uploaded_models() if task == "classification" else {})
    if not choices and not uploads:
        st.error(f"No {task.replace('_', ' ')} checkpoint found. Train one with `{TRAIN_HINTS[task]}`"
                 + (", or upload a model above." if task == "classification" else "."))
        st.stop()
    if st.session_state.get(key) not in (*uploads, *choices):
        st.session_state.pop(key, None)  # a run or upload that is gone
    chosen = select_slot.selectbox(label, [*choices, *uploads], key=key)
    if chosen in uploads:
        model, card = uploads[chosen]
        return (card.upload or {}).get("folder", f"uploaded:{chosen}"), model, card
    try:
        return (choices[chosen], *cached_checkpoint(choices[chosen]))
    except CheckpointError as exc:
        st.error(f"This checkpoint cannot be loaded: {exc}")
        st.stop()


def zip_uploader(select_key: str) -> None:
    """Upload an image-folder .zip as a data set; a good one becomes the value of the `select_key` selectbox."""
    from core.data import DataError
    from core.data.folder import store_uploaded_zip
    from core.trainer.runs import uploads_dir

    zipped = st.file_uploader("Your own data set: a .zip of class folders (train/<class>/*.png and test/<class>/*, "
                              "or just <class>/*)", type=["zip"], key="trainer_zip")
    if zipped is not None and st.session_state.get("trainer_zip_done") != zipped.file_id:
        st.session_state.trainer_zip_done = zipped.file_id
        try:
            st.session_state[select_key] = store_uploaded_zip(zipped.getvalue(), zipped.name, uploads_dir())
        except DataError as exc:
            st.error(f"{zipped.name} cannot be used: {exc}")
