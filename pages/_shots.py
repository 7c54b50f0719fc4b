"""The Teach page's shots: the classes, each class's shots (camera, image files, a zip of class folders, sample
photos), their thumbnails with a remove button, the shared backbone that makes their features, the training and
the taught model of this browser session (kept in `st.session_state[STATE]`, so nothing is lost between reruns)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import streamlit as st
import torch

from core.data import DataError
from core.paths import safe_name
from core.data.images import ImageError
from core.draw.preprocess import SAMPLE_PHOTOS, read_photo
from core.errors import ProjectError
from core.teach.shots import MAX_CLASSES, MAX_SHOTS, FeatureBank, as_shot, read_class_shots, sample_shots, shot_key
from pages._inputs import IMAGE_TYPES

STATE = "teach"
EXAMPLE = {"cat": "cat (Chelsea)", "coffee": "coffee", "rocket": "rocket"}  # class -> sample photo
THUMBS = 16  # thumbnails shown per class (the rest counted)


def state() -> dict:
    """{"classes": [names], "shots": [[(key, shot)] per class], "widget": n, "taught": None | dict}."""
    return st.session_state.setdefault(STATE, {"classes": ["class 1", "class 2"], "shots": [[], []], "widget": 0,
                                               "taught": None})


@st.cache_resource(show_spinner="Loading the pretrained EfficientNet-Lite0 (once per server)...")
def feature_bank() -> FeatureBank:
    return FeatureBank()


def total(s: dict) -> int:
    return sum(len(shots) for shots in s["shots"])


def add_shots(s: dict, index: int, shots: list[np.ndarray]) -> int:
    """Add shots to class `index` (a shot it already has is not added twice); returns how many were added."""
    have = {k for k, _ in s["shots"][index]}
    room = MAX_SHOTS - total(s)
    fresh = [(shot_key(x), x) for x in shots]
    fresh = list({k: (k, x) for k, x in fresh if k not in have}.values())[:max(room, 0)]
    s["shots"][index].extend(fresh)
    if len(fresh) < len(shots) and room < len(shots):
        note(s, f"A teaching session holds at most {MAX_SHOTS} shots; remove some to add more.")
    return len(fresh)


def note(s: dict, text: str) -> None:
    """A warning about the shots just added, shown after the rerun that shows them (st.warning would vanish)."""
    s.setdefault("notes", []).append(text)


def class_index(s: dict, name: str) -> int:
    """The class called `name`, added when there is none (ProjectError past MAX_CLASSES)."""
    if name in s["classes"]:
        return s["classes"].index(name)
    if len(s["classes"]) >= MAX_CLASSES:
        raise DataError(f"at most {MAX_CLASSES} classes can be taught; {name!r} would be one more")
    s["classes"].append(name)
    s["shots"].append([])
    return len(s["classes"]) - 1


def start_example(s: dict) -> None:
    """Three classes of sample-photo shots (8 each): a complete teaching session offline, in one click."""
    shots = [sample_shots(photo, 8, seed=i) for i, photo in enumerate(EXAMPLE.values())]
    s.update(classes=list(EXAMPLE), shots=[[(shot_key(x), x) for x in per_class] for per_class in shots], taught=None)
    s["widget"] += 1


def class_rows(s: dict) -> None:
    """The class names (editable), each with its shot count and a remove button, and "add a class"."""
    for i, name in enumerate(list(s["classes"])):
        left, mid, right = st.columns([4, 2, 1], vertical_alignment="bottom")
        s["classes"][i] = left.text_input(f"Class {i + 1}", name, key=f"teach_name_{i}_{s['widget']}", max_chars=60)
        mid.markdown(f"{len(s['shots'][i])} shots")
        if right.button("Remove", key=f"teach_drop_{i}_{s['widget']}", disabled=len(s["classes"]) <= 2,
                        help="Remove this class and its shots"):
            del s["classes"][i], s["shots"][i]
            s["widget"] += 1
            st.rerun()
    if st.button("Add a class", icon=":material/add:", disabled=len(s["classes"]) >= MAX_CLASSES):
        class_index(s, f"class {len(s['classes']) + 1}")
        st.rerun()


def shot_input(s: dict) -> None:
    """One place to add shots: pick the class, then the camera (several shots in a row), files, a zip of class
    folders (its folders become classes) or crops of a sample photo."""
    names = s["classes"]
    left, right = st.columns([1, 2])
    index = left.selectbox("Add shots to", range(len(names)), format_func=lambda i: names[i] or f"class {i + 1}",
                           key="teach_target")
    source = right.radio("From", ["Camera", "Image files", "Zip of class folders", "Sample photo"], horizontal=True,
                         key="teach_source")
    for text in s.pop("notes", []):  # about the shots the last run added
        st.warning(text)
    key = f"teach_in_{s['widget']}"  # a new widget after each addition: the camera is live again at once
    added = 0
    try:
        if source == "Camera":
            shot = st.camera_input("Take a shot (each one is added; take several from different angles)", key=key)
            added = add_shots(s, index, [as_shot(read_photo(shot.getvalue()))]) if shot else 0
        elif source == "Image files":
            files = st.file_uploader("Images", type=IMAGE_TYPES, accept_multiple_files=True, key=key)
            added = _add_files(s, index, files or [])
        elif source == "Zip of class folders":
            upload = st.file_uploader("A .zip of class folders (<class>/*.jpg)", type=["zip"], key=key)
            added = _add_zip(s, upload) if upload else 0
        else:
            photo = st.selectbox("Photo (bundled with scikit-image)", list(SAMPLE_PHOTOS), key="teach_photo")
            count = st.slider("Shots (the photo, then crops of it)", 1, 20, 8, key="teach_photo_n")
            if st.button("Add these shots", key="teach_photo_add"):
                added = add_shots(s, index, sample_shots(photo, count, seed=s["widget"]))
    except (ProjectError, ImageError) as exc:
        st.error(f"Cannot add these shots: {exc}")
    if added:
        s["widget"] += 1
        st.rerun()
    for text in s.pop("notes", []):  # nothing added: no rerun, so the words are shown now
        st.warning(text)


def _add_files(s: dict, index: int, files) -> int:
    shots, bad = [], []
    for file in files:
        try:
            shots.append(as_shot(read_photo(file.getvalue())))
        except ImageError as exc:
            bad.append(f"{file.name} ({exc})")
    if bad:
        note(s, "Not added (not a readable image): " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    return add_shots(s, index, shots)


def _add_zip(s: dict, upload) -> int:
    classes, shots, labels, skipped = read_class_shots(upload.getvalue(), upload.name)
    added = sum(add_shots(s, class_index(s, classes[y]), [x]) for x, y in zip(shots, labels))
    if skipped:
        note(s, f"{skipped} files of {upload.name} were not readable images and were skipped.")
    return added


def thumbnails(s: dict) -> None:
    """Each class's shots as thumbnails (the first THUMBS), each with a button that removes it."""
    for i, name in enumerate(s["classes"]):
        shots = s["shots"][i]
        st.markdown(f"**{name}**: {len(shots)} shots" + ("" if shots else " (add at least 2)"))
        for row in range(0, min(len(shots), THUMBS), 8):
            for cell, (k, shot) in zip(st.columns(8), shots[row:row + 8]):
                cell.image(shot.transpose(1, 2, 0), width=80)
                if cell.button("✕", key=f"teach_rm_{k}_{i}", help="Remove this shot"):
                    s["shots"][i] = [(kk, x) for kk, x in shots if kk != k]
                    st.rerun()
        if len(shots) > THUMBS:
            st.caption(f"... and {len(shots) - THUMBS} more")


def examples_zip(s: dict) -> bytes:
    """The shots as a zip of class folders (PNG), which the Teach page and `python -m core teach` read back."""
    from PIL import Image

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i, (name, shots) in enumerate(zip(s["classes"], s["shots"])):
            folder = safe_name(name, fallback="class")
            folder = folder if [safe_name(n, "class") for n in s["classes"]].count(folder) == 1 else f"{folder}_{i + 1}"
            for k, shot in shots:
                buffer = io.BytesIO()
                Image.fromarray(shot.transpose(1, 2, 0)).save(buffer, format="PNG")
                archive.writestr(f"{folder}/{k}.png", buffer.getvalue())
    return out.getvalue()


def training_set(s: dict) -> tuple[list[np.ndarray], torch.Tensor, dict[str, int]]:
    """(shots, labels, shots per class) of the session."""
    shots = [x for per_class in s["shots"] for _, x in per_class]
    labels = torch.tensor([i for i, per_class in enumerate(s["shots"]) for _ in per_class], dtype=torch.long)
    return shots, labels, {name: len(per_class) for name, per_class in zip(s["classes"], s["shots"])}
