"""Choosing a model, and the caches of models and of what is computed from them (shared by every session).

`choose_model(task, key)`: the one model chooser of every page, over the shipped checkpoints, the user's runs
and, for classifiers, uploaded models, which live in this browser session only (`st.session_state[UPLOADED]`),
never in a cache. The caches load each checkpoint once per server and are never trained or changed.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.byo import ModelFileError, load_model_file
from core.upload_card import NORMALISATIONS, describe, with_class_names, with_normalisation
from core.data.samples import load_sample
from core.engine.checkpoint import CARD, CheckpointError, list_checkpoints, load_checkpoint, load_snapshot
from core.engine.recipe import kind_of_task
from pages._ui import cached_dataset


@st.cache_data(show_spinner=False)
def shipped_cards() -> list[tuple[str, dict]]:
    """(checkpoint folder, model card) for every shipped checkpoint."""
    order = lambda fc: (fc[1].task != "classification",  # noqa: E731
                        fc[1].dataset.name != "mnist", fc[0].name)
    return [(str(folder), card) for folder, card in sorted(list_checkpoints(paths.SHIPPED_CHECKPOINTS), key=order)]


def model_choices(task: str) -> dict[str, str]:
    """Label "name (model on data set, shipped | my run)" -> folder of every checkpoint of `task`: the shipped ones
    first (in the order of `shipped_cards`), then the saved runs (a run in progress says how far it got)."""
    found = [(Path(f), c, "shipped") for f, c in shipped_cards()]
    found += [(f, c, "my run" if c.run.get("state") != "in_progress" else f"my run, epoch {c.run['epoch']} so far")
              for f, c in list_checkpoints(paths.runs_dir()) if c.training.get("epochs", 1) > 0]  # not stopped at once
    return {f"{f.name} ({c.model.name} on {c.dataset.name}, {tag})": str(f) for f, c, tag in found if c.task == task}


@st.cache_data(show_spinner="Evaluating on the test set...")
def cached_report(folder: str) -> dict:
    """Test-set report (accuracy, per_class, confusion) of a saved classifier checkpoint."""
    from core.classifier.evaluate import evaluate_classifier

    model, card = cached_checkpoint(folder)
    ds = card.dataset
    report = evaluate_classifier(model, cached_dataset(ds.name), ds.mean, ds.std)
    return {**{k: v for k, v in report.items() if k != "logits"}, "probs": report["probs"].numpy()}


@st.cache_resource(show_spinner=False, max_entries=64)
def cached_snapshot(folder: str, epoch: int):
    """A checkpoint's model with its weights after `epoch` (shared, never trained)."""
    return load_snapshot(Path(folder), epoch)


def cached_checkpoint(folder: str):
    """A checkpoint's (model, card), shared across sessions (never train it); loaded again when its card changes."""
    card = Path(folder) / CARD
    return _loaded_checkpoint(folder, card.stat().st_mtime_ns if card.is_file() else 0)


@st.cache_resource(show_spinner=False, max_entries=32)
def _loaded_checkpoint(folder: str, card_stamp: int):
    return load_checkpoint(Path(folder))


BANK_SIZE = 10000  # training images searched for the nearest neighbours of the user's image


@st.cache_resource(show_spinner="Encoding the map's test images...")
def cached_latent_map(folder: str):
    """The LatentMap of the page's test images (`core.latent.autoencode.MAP_SIZE`; shared, read-only)."""
    from core.latent.autoencode import latent_map

    model, card = cached_checkpoint(folder)
    data = cached_dataset(card.dataset.name)
    found = latent_map(model, data.test_x, data.test_y)
    found.note = " (the sample shipped with CNN Studio: the data set is not on this machine)" if data.sample else ""
    return found


@st.cache_data(show_spinner="Running t-SNE on the codes (once per model and machine; 20-40 s on two cores)...")
def cached_latent_tsne(folder: str):
    """The map's t-SNE layout: shipped for the shipped autoencoders, else computed once and kept on disk."""
    from core.engine.checkpoint import WEIGHTS
    from core.latent.autoencode import layout_key, tsne_layout

    found = cached_latent_map(folder)
    return tsne_layout(found.z, layout_key(Path(folder) / WEIGHTS, found.images))


@st.cache_resource(show_spinner="Encoding training images for the neighbour search...")
def cached_latent_bank(folder: str):
    """A LatentMap of BANK_SIZE training images: nearest neighbours of the user's image come from it."""
    from core.latent.autoencode import latent_map

    model, card = cached_checkpoint(folder)
    data = cached_dataset(card.dataset.name)
    return latent_map(model, data.train_x, data.train_y, n=BANK_SIZE, seed=1)


@st.cache_resource(show_spinner=False)
def _makers():  # scenes of the shipped test images, data sets or not: 0.03 s (the whole sets: 2.2 s, 460 MB)
    from core.captions.captioning import scene_makers

    return scene_makers(loader=lambda name, data_dir: load_sample(name))


def cached_scenes(card: dict, mode: str, n: int = 200):
    """`n` fresh test scenes ('seen' or 'held_out' combinations of the checkpoint's split), fixed seed."""
    return _scenes(tuple(tuple(p) for p in card.section("held_out_pairs")), mode, n)


@st.cache_resource(show_spinner=False, max_entries=8)
def _scenes(held: tuple, mode: str, n: int):
    _, test_maker = _makers()
    return test_maker.make(n, seed=11 + (mode == "held_out"), held_out=set(held), mode=mode)


# ---- choosing a model ----

UPLOADED = "uploaded_models"  # session key: label -> (model, card)
# the formats read, plus those refused with a reason (TorchScript, pickles) rather than filtered out in silence
UPLOAD_TYPES = ["zip", "onnx", "keras", "h5", "hdf5", "pt", "pth", "ts", "torchscript", "pkl", "safetensors", "bin"]


def uploaded_models() -> dict:
    return st.session_state.setdefault(UPLOADED, {})


def upload_panel(select_key: str) -> None:
    """An expander to upload a model; a good upload becomes the selected model of `select_key`'s selectbox."""
    models = uploaded_models()
    with st.expander("Bring your own model", icon=":material/upload_file:", expanded=False):
        st.caption("A zipped CNN Studio checkpoint (card.json + model.safetensors), an ONNX model, or a Keras `.keras`"
                   " / `.h5` model (e.g. seed 001's `mnist_cnn_best.h5`). Models are read as data and rebuilt from"
                   " PyTorch layers; files that are programs (TorchScript, pickles, Keras Lambda layers) are refused.")
        file = st.file_uploader("Model file", type=UPLOAD_TYPES, key=f"{select_key}_byo_file")
        if file is not None and st.session_state.get(f"{select_key}_byo_done") != file.file_id:
            st.session_state[f"{select_key}_byo_done"] = file.file_id  # load each upload once
            try:
                with st.spinner("Reading the model..."):
                    model, card = load_model_file(file.getvalue(), file.name)
            except Exception as exc:  # noqa: BLE001 - ModelFileError explains itself; anything else is a bad file too
                reason = exc if isinstance(exc, ModelFileError) else f"it could not be read as a model ({exc})."
                st.session_state[f"{select_key}_byo_error"] = f"**{file.name}** cannot be used: {reason}"
            else:
                label = f"{file.name} (uploaded {card.model.name})"
                models[label] = (model, card)
                st.session_state[select_key] = label
                st.session_state.pop(f"{select_key}_byo_error", None)
        if file is not None and st.session_state.get(f"{select_key}_byo_error"):
            st.error(st.session_state[f"{select_key}_byo_error"])
        label = st.session_state.get(select_key)
        if label in models:
            _settings(label, models)


def _settings(label: str, models: dict) -> None:
    model, card = models[label]
    st.success(describe(card))
    for note in (card.upload or {}).get("notes", []):  # what of the file was not taken as it said
        st.info(f"The upload {note}.", icon=":material/info:")
    if card.dataset.normalisation not in NORMALISATIONS:
        return  # a CNN Studio checkpoint, or an ONNX file it exported: the card already says everything
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


def choose_model(task: str, key: str, label: str = "Model"):
    """The one model chooser of every page: the shipped checkpoints and saved runs of `task` (classifiers: also this
    session's uploads, with the upload panel). Returns (folder, model, card), or stops the page saying how to train
    one. An uploaded model's folder is a name that holds no snapshots unless the upload was a checkpoint zip."""
    select_slot = st.container()
    if task == "classification":
        upload_panel(key)  # before the selectbox runs, so a fresh upload can become its value
    choices, uploads = model_choices(task), (uploaded_models() if task == "classification" else {})
    if not choices and not uploads:
        st.error(f"No {task.replace('_', ' ')} checkpoint found. Train one with `python -m core "
                 f"{kind_of_task(task).verb} --out runs/mine` (or on the Trainer page)"
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
