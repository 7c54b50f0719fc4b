"""The one non-page UI module: the widgets several pages use, the caches every session shares, and the
Trainer's settings form. Pure UI: every computation is a call into `core`.

- caches built once per server (data sets, checkpoints, test reports, latent maps, caption scenes);
- choosing a model, `choose_model(task, key)`: shipped checkpoints, the user's runs and, for classifiers,
  uploaded models, which live in this browser session only (`st.session_state[UPLOADED]`), never in a cache;
- choosing an image, `choose_image(card, key)`, `upload_image(key)`, `sketchpad(key)`; a data set, `zip_uploader`;
- `recipe_form(recipe, key)`: the settings of any recipe kind as widgets; `pressed`: an action button."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core import paths
from core.cli import TRAIN_COMMANDS
from core.byo import NORMALISATIONS, ModelFileError, describe, load_model_file, with_class_names, with_normalisation
from core.data import AugmentConfig, DataError, list_datasets, readable_name
from core.data.samples import load_or_sample, load_sample
from core.data.images import ImageError, decode_image
from core.draw.preprocess import (SAMPLE_PHOTOS, example_digit, has_dark_background, pad_strokes, preprocess_photo,
                                  render_strokes, sample_photo)
from core.engine.checkpoint import CARD, CheckpointError, list_checkpoints, load_checkpoint, load_snapshot
from core.engine.predict import input_spec, is_digit_model
from core.models import list_models
from core.trainer import form
from core.viz import augmented_grid, enlarge
from pages import old_style_run


# ---- what sessions share ----

def page_title(text: str | None = None):
    """The page's first element: its title (or an empty slot for it), once this run is a normal one: an old-style
    run is rerun once per session through the entry script's navigation (pages/__init__)."""
    if old_style_run() and not st.session_state.get("_old_style_rerun"):
        st.session_state["_old_style_rerun"] = True
        st.rerun()
    return st.title(text) if text else st.empty()


SHARED_INPUT = "shared_input"  # session key: the latest drawing or upload, the default input of other pages
PERCENT = st.column_config.NumberColumn(format="percent")  # a proportion shown as a percentage


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
    from core.trainer.evaluate import evaluate_classifier

    model, card = cached_checkpoint(folder)
    ds = card.dataset
    report = evaluate_classifier(model, cached_dataset(ds.name), ds.mean, ds.std)
    return {**report, "probs": report["probs"].numpy()}


@st.cache_resource(show_spinner="Loading the data set...")
def cached_dataset(name: str):
    """A data set from the data directory, else its shipped sample (`Dataset.sample`); shared, never downloaded."""
    return load_or_sample(name)


def sample_note(ds, where=st) -> None:
    if ds.sample:  # say so when a page shows the shipped sample of a data set rather than the whole set
        where.caption(f"Showing the {len(ds.test_y):,} {readable_name(ds.name)} test images shipped with CNN Studio: "
                      f"the data set is not in {paths.data_dir()} (the README's Data section says where to put it).")


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


MAP_SIZE, BANK_SIZE = 2000, 10000  # test images on the map; training images searched for nearest neighbours


@st.cache_resource(show_spinner="Encoding the map's test images...")
def cached_latent_map(folder: str):
    """The LatentMap of MAP_SIZE test images (shared, read-only)."""
    from core.latent.autoencode import latent_map

    model, card = cached_checkpoint(folder)
    data = cached_dataset(card.dataset.name)
    found = latent_map(model, data.test_x, data.test_y, n=MAP_SIZE)
    found.note = " (the sample shipped with CNN Studio: the data set is not on this machine)" if data.sample else ""
    return found


@st.cache_data(show_spinner="Running t-SNE on the codes (about 20 s, once per model)...")
def cached_latent_tsne(folder: str):
    from core.latent.autoencode import tsne_layout

    return tsne_layout(cached_latent_map(folder).z)


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
    return _scenes(tuple(tuple(p) for p in card.held_out_pairs), mode, n)


@st.cache_resource(show_spinner=False, max_entries=8)
def _scenes(held: tuple, mode: str, n: int):
    _, test_maker = _makers()
    return test_maker.make(n, seed=11 + (mode == "held_out"), held_out=set(held), mode=mode)


def remembered(key: str, memo, compute):
    """`compute()` once per `memo` in this session (e.g. an attribution that takes a second), then reused."""
    if st.session_state.get(key, (None,))[0] != memo:
        st.session_state[key] = (memo, compute())
    return st.session_state[key][1]


def pressed(label: str, key: str, where=st, **options) -> bool:
    """An action button whose press is never lost (a component's message can cut short the run a click starts):
    the click's callback leaves a flag that the next run to reach the button takes."""
    where.button(label, key=key, on_click=st.session_state.__setitem__, args=(f"{key}__pressed", True), **options)
    return bool(st.session_state.pop(f"{key}__pressed", False))


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


def choose_model(task: str, key: str, label: str = "Model"):
    """The one model chooser of every page: the shipped checkpoints and saved runs of `task` (classifiers: also this
    session's uploads, with the upload panel). Returns (folder, model, card), or stops the page saying how to train
    one. An uploaded model's folder is a name that holds no snapshots unless the upload was a checkpoint zip."""
    select_slot = st.container()
    if task == "classification":
        upload_panel(key)  # before the selectbox runs, so a fresh upload can become its value
    choices, uploads = model_choices(task), (uploaded_models() if task == "classification" else {})
    if not choices and not uploads:
        st.error(f"No {task.replace('_', ' ')} checkpoint found. Train one with `{TRAIN_COMMANDS[task]}`"
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


# ---- choosing an image ----

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
SKETCHPAD = st.components.v2.component("cnn_studio_sketchpad", **{  # the same definition each import: no warning
    kind: (Path(__file__).parent / "assets" / f"sketchpad.{kind}").read_text() for kind in ("js", "css")})


def sketchpad(key: str, *, size: int, width: int, strokes=(), stroke_width: int = 20) -> np.ndarray:
    """A drawing pad (pages/assets/sketchpad.js, with undo and redo) that sends each stroke as the pen lifts, opened
    on `strokes` (polylines); returns the grey image (size x size, ink bright) of what it shows now."""
    start = [{"w": stroke_width, "p": [list(point) for point in stroke]} for stroke in strokes]
    sent = SKETCHPAD(key=key, data={"size": size, "width": width, "strokes": start}, default={"strokes": None},
                     on_strokes_change=lambda: None, width="content").get("strokes")
    lines, widths = pad_strokes(start if sent is None else sent, size=size)
    return render_strokes(lines, size=size, width=widths)


def upload_image(key: str, label: str = "Image", camera: bool = False) -> tuple[np.ndarray, str] | None:
    """The one way a page takes an image file (or a camera shot): (decoded image, its name), read by core's
    guarded decoder; a file that is not an image gets one message saying what to upload, and None."""
    file = st.camera_input(label, key=key) if camera else st.file_uploader(label, type=IMAGE_TYPES, key=key)
    if file is None:
        return None
    try:
        return decode_image(file.getvalue()), getattr(file, "name", "camera")
    except ImageError as exc:
        st.error(f"Cannot use this file: {exc}.")  # the reader says what it expected
        return None


def choose_image(card, key: str) -> np.ndarray:
    """The input a classifier page explains, as uint8 (C, H, W) at the model's size: the Draw page's drawing, a
    test image, a sample photo (scikit-image's bundled photos, for colour models) or an upload."""
    channels, size = input_spec(card)
    classes, photo = card.dataset.class_names, {"channels": channels, "dark_background": has_dark_background(card)}
    shared, tests = st.session_state.get(SHARED_INPUT), card.dataset.has_test_set
    sources = ((["Drawing from the Draw page"] if shared is not None else []) + (["Test image"] if tests else [])
               + (["Sample photo"] if channels == 3 else []) + ["Upload"])
    if not tests:  # a pretrained model opens on a real photo
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
            sample_note(data)
            left, right = st.columns(2)
            wanted = left.selectbox("Class", range(len(classes)), format_func=lambda i: str(classes[i]),
                                    key=f"{key}_class")
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


# ---- the Trainer's settings ----

def recipe_form(base, key: str, grouped: list[str] = ()):
    """The settings of any recipe as widgets keyed by `key` + field (the form is `core.trainer.form`'s); returns
    the recipe they describe. A classifier also gets a data set upload and a preview of its augmentation."""
    from core.trainer.runs import uploaded_datasets

    classifier = base.kind == "classifier"
    if classifier:
        zip_uploader(key + "data")
        fields = form.classifier_fields(base, [*list_datasets(), *uploaded_datasets()], list(list_models()), grouped)
    else:
        st.caption(f"{'An' if base.kind[0] in 'aeiou' else 'A'} {base.kind} recipe: each setting is a field of its "
                   "dataclass; the defaults made the shipped checkpoint (or train in seconds, for the quick recipes).")
        fields = form.recipe_fields(base)
    columns = st.columns(4)
    values = {f.key: _widget(columns[i % 4], f, key + f.key) for i, f in enumerate(fields)}
    steps_per_epoch = _augmentation_preview(values) if classifier else 0
    return form.apply(base, values, steps_per_epoch)


def _widget(column, f, key: str):
    """One form field as its Streamlit widget; returns the value (the field's own for a bad number list)."""
    if f.widget == "select":
        shown = (lambda n: f"uploaded: {Path(n).name}" if str(n).startswith("folder:") else str(n))
        return column.selectbox(f.label, f.options, index=f.options.index(f.value), key=key, help=f.help,
                                disabled=f.disabled, format_func=shown)
    if f.widget == "select_slider":
        return column.select_slider(f.label, f.options, f.value, key=key)
    if f.widget in ("int", "float"):
        cast = int if f.widget == "int" else float
        value = column.number_input(f.label, cast(f.low), cast(f.high), cast(f.value), key=key, help=f.help,
                                    **({} if f.widget == "int" else {"format": "%.5g"}))
        return cast(value)
    if f.widget == "slider":
        return column.slider(f.label, f.low, f.high, f.value, key=key)
    if f.widget == "toggle":
        return column.toggle(f.label, f.value, key=key)
    if f.widget == "numbers":
        try:
            return form.parse_numbers(column.text_input(f.label, ",".join(map(str, f.value)), key=key), f.value)
        except ValueError as exc:
            st.error(f"{f.label}: {exc}.")
            return f.value
    return column.text_input(f.label, f.value, key=key)


def _augmentation_preview(values: dict) -> int:
    """Four training images with six augmented draws each, and the data set's problems; returns the steps per epoch
    (0 when unknown)."""
    try:
        data = cached_dataset(values["data"])
    except DataError as exc:
        st.caption(f"No preview: {exc}")
        return 0
    augment = AugmentConfig(values["tr"], values["flip"], float(values["rot"]), values["scale"])
    st.image(enlarge(augmented_grid(data.train_x[:4], augment, copies=6), 360, square=False),
             caption="four training images, six augmented draws each (what the model sees this run)")
    if data.sample:
        st.caption(f"{values['data']} is not on this machine: the run reads it from the data directory (or "
                   "downloads it) first. The preview uses the sample shipped with CNN Studio.")
    for problem in data.problems():
        st.warning(f"This data set can be used, but: {problem}.", icon=":material/warning:")
    return 0 if data.sample else int(len(data.train_x) * (1 - values["val"])) // values["batch"]


def zip_uploader(select_key: str) -> None:
    """Upload an image-folder .zip as a data set; a good one becomes the value of the `select_key` selectbox."""
    from core.data.folder import store_uploaded_zip
    from core.trainer.runs import uploads_dir

    zipped = st.file_uploader("Your own data set: a .zip of class folders (`train/<class>/*.png` and "
                              "`test/<class>/*`, or just `<class>/*`)", type=["zip"], key="trainer_zip")
    if zipped is not None and st.session_state.get("trainer_zip_done") != zipped.file_id:
        st.session_state.trainer_zip_done = zipped.file_id
        try:
            st.session_state[select_key] = store_uploaded_zip(zipped.getvalue(), zipped.name, uploads_dir())
        except DataError as exc:
            st.error(f"{zipped.name} cannot be used: {exc}")
