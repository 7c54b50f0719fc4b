"""The card of an uploaded model: what the file or the user says about its input, each checked before it is used.

An upload's card starts with guesses (`core.byo`); the file's own `cnn_studio` metadata (a CNN Studio ONNX export)
or the user's choices on the page then set its class names and input normalisation (one of NORMALISATIONS, by
name), never beyond what any card may hold (`core.engine.checkpoint.card`): a data set only by a registered name.
"""
from __future__ import annotations

import dataclasses

from core.data.base import is_registered
from core.engine.checkpoint import ModelCard
from core.engine.checkpoint.card import MAX_STAT, MIN_STD

NORMALISATIONS = {  # name -> (mean, std) on the [0, 1] scale, per channel when a list of 3
    "[0, 1] (pixels / 255)": (0.0, 1.0),
    "[-1, 1]": (0.5, 0.5),
    "0-255 (raw pixels)": (0.0, 1 / 255),
    "MNIST mean/std": (0.1307, 0.3081),
    "ImageNet mean/std": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}

def with_metadata(card: ModelCard, meta: dict) -> ModelCard:
    """An ONNX upload's card completed from the file's `cnn_studio` metadata (a CNN Studio export): its class
    names, normalisation and data set, each used only when it passes the rules every card meets (a data set only
    by a registered name); a field that does not is ignored, and the upload note says so."""
    ds, notes = card.dataset, []
    names = meta.get("class_names")
    if isinstance(names, list) and len(names) == len(ds.class_names) and all(isinstance(n, str) for n in names):
        ds = dataclasses.replace(ds, class_names=[n[:60] for n in names])
    else:
        notes.append("class names")
    mean, std = meta.get("mean"), meta.get("std")
    numbers = lambda v: (isinstance(v, list) and len(v) == ds.channels  # noqa: E731
                         and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))
    if numbers(mean) and numbers(std) and all(MIN_STD <= s <= MAX_STAT for s in std) and \
            all(abs(m) <= MAX_STAT for m in mean):
        ds = dataclasses.replace(ds, mean=[float(m) for m in mean], std=[float(s) for s in std],
                                 normalisation="from the file (a CNN Studio export)")
    else:
        notes.append("normalisation")
    name = meta.get("dataset")
    if isinstance(name, str) and is_registered(name.split("@")[0]) and meta.get("task") == "classification":
        ds = dataclasses.replace(ds, name=name.split("@")[0])
    upload = {**card.upload, "class_names_guessed": "class names" in notes, "exported_by": "CNN Studio",
              "notes": [*card.upload.get("notes", []), *(f"file's {what} in its CNN Studio metadata could not be "
                                                          "used (outside what a card may hold), so it is guessed: "
                                                          "set it below" for what in notes)]}
    return dataclasses.replace(card, dataset=ds, upload=upload)


def with_normalisation(card: ModelCard, name: str) -> ModelCard:
    """A copy of an uploaded model's card whose input normalisation is NORMALISATIONS[name]."""
    mean, std = NORMALISATIONS[name]
    channels = card.dataset.channels
    as_list = lambda v: list(v) if isinstance(v, list) else [v] * channels  # noqa: E731
    if len(as_list(mean)) != channels:
        raise ValueError(f"{name} needs 3 input channels; the model has {channels}.")
    dataset = dataclasses.replace(card.dataset, mean=as_list(mean), std=as_list(std), normalisation=name)
    return dataclasses.replace(card, dataset=dataset)


def with_class_names(card: ModelCard, names: list[str]) -> ModelCard:
    """A copy of the card with the user's class names (one per model output)."""
    if len(names) != len(card.dataset.class_names):
        raise ValueError(f"the model has {len(card.dataset.class_names)} outputs; {len(names)} names given.")
    return dataclasses.replace(card, dataset=dataclasses.replace(card.dataset, class_names=list(names)),
                               upload={**(card.upload or {}), "class_names_guessed": False})


def describe(card: ModelCard) -> str:
    """One line about an uploaded model for the page."""
    ds, src = card.dataset, (card.upload or {})
    kw = card.model.kwargs
    return (f"{src.get('format', card.model.name)} from {src.get('file', '?')}: input "
            f"{kw['in_channels']}x{kw['image_size']}x{kw['image_size']}, {kw['num_classes']} classes, "
            f"normalisation {ds.normalisation or 'from its card'}")

