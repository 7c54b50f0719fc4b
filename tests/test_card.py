"""The typed model card: every shipped card validates, and a card that breaks a rule is refused with a
message naming the file and the field (one case per field), instead of crashing the page that reads it."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from core import paths
from core.engine.checkpoint import (CARD, SCHEMA_VERSION, CheckpointError, ModelCard, list_checkpoints, load_checkpoint,
                             read_card, save_checkpoint)
from tests.test_checkpoint import digits_card
from core.models import build_model

SHIPPED = sorted(p.name for p in paths.SHIPPED_CHECKPOINTS.iterdir() if (p / CARD).is_file())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_card_is_current_and_valid(name):
    raw = json.loads((paths.SHIPPED_CHECKPOINTS / name / CARD).read_text())
    assert raw["schema"] == SCHEMA_VERSION  # migrated on disk, not only in memory
    card = read_card(paths.SHIPPED_CHECKPOINTS / name)
    assert isinstance(card, ModelCard) and card.headline is not None
    assert raw["headline"]["value"] == card.headline.value  # the stored headline is the one derived from metrics


@pytest.fixture
def good(tmp_path):
    model = build_model("seed001_cnn", in_channels=1, image_size=8, num_classes=10)
    folder = save_checkpoint(tmp_path / "ckpt", model, digits_card(metrics={"test_accuracy": 0.9}))
    return folder, json.loads((folder / CARD).read_text())


def _deep(depth: int):
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


# (what to break, a function that breaks the raw card, words the message must contain)
CASES = [
    ("no dataset", lambda c: c.pop("dataset"), "'dataset' is missing"),
    ("no task", lambda c: c.pop("task"), "'task' is missing"),
    ("unknown task", lambda c: c.update(task="regression"), "field 'task' is 'regression'"),
    ("task not text", lambda c: c.update(task=3), "field 'task' must be str"),
    ("model not object", lambda c: c.update(model="cnn"), "field 'model' must be an object"),
    ("model without name", lambda c: c["model"].pop("name"), "'name' is missing"),
    ("kwargs not object", lambda c: c["model"].update(kwargs=[1]), "field 'kwargs' must be dict"),
    ("too many classes", lambda c: c["model"]["kwargs"].update(num_classes=10**9), "'num_classes' is 1000000000"),
    ("dataset not object", lambda c: c.update(dataset=[]), "field 'dataset' must be an object"),
    ("dataset without name", lambda c: c["dataset"].pop("name"), "'name' is missing"),
    ("fewer class names than outputs", lambda c: c["dataset"].update(class_names=["a", "b"]),
     "class_names has 2 names but the model has 10 outputs"),
    ("no class names", lambda c: c["dataset"].update(class_names=[]), "class_names is empty"),
    ("class names not a list", lambda c: c["dataset"].update(class_names="0123456789"), "'class_names' must be list"),
    ("mean as a string", lambda c: c["dataset"].update(mean="0.5"), "field 'mean' must be list"),
    ("mean of strings", lambda c: c["dataset"].update(mean=["0.5"]), "'mean' must be 1 finite number"),
    ("mean per channel", lambda c: c["dataset"].update(mean=[0.5, 0.5, 0.5]), "'mean' must be 1 finite number"),
    ("std zero", lambda c: c["dataset"].update(std=[0.0]), "'std' must be positive"),
    ("std not finite", lambda c: c["dataset"].update(std=[float("inf")]), "'std' must be 1 finite number"),
    ("channels not int", lambda c: c["dataset"].update(channels="1"), "field 'channels' must be int"),
    ("channels out of bounds", lambda c: c["dataset"].update(channels=0), "'channels' is 0"),
    ("image size out of bounds", lambda c: c["dataset"].update(image_size=10**6), "'image_size' is 1000000"),
    ("image size against the model", lambda c: c["dataset"].update(image_size=16), "image_size is 16 but the model"),
    ("unknown dataset field", lambda c: c["dataset"].update(colour="red"), "unknown field 'colour'"),
    ("unknown top-level field", lambda c: c.update(surprise=1), "unknown field 'surprise'"),
    ("metrics not object", lambda c: c.update(metrics=[0.9]), "field 'metrics' must be dict"),
    ("training not object", lambda c: c.update(training="fast"), "field 'training' must be dict"),
    ("params negative", lambda c: c.update(params=-1), "'params' is -1"),
    ("params a bool", lambda c: c.update(params=True), "field 'params' must be int"),
    ("command not text", lambda c: c.update(command=["python"]), "field 'command' must be str or null"),
    ("format", lambda c: c.update(format="other/9"), "field 'format' is 'other/9'"),
    ("framework", lambda c: c.update(framework="jax"), "field 'framework' is 'jax'"),
    ("schema from the future", lambda c: c.update(schema=99), "field 'schema' is 99"),
    ("vocabulary of numbers", lambda c: c.update(task="captioning", vocabulary=[1, 2]),
     "'vocabulary' must be a list of strings"),
    ("nested too deeply", lambda c: c["training"].update(history=_deep(40)), "nested more than"),
]


@pytest.mark.parametrize("what,breaks,words", CASES, ids=[c[0] for c in CASES])
def test_a_bad_field_is_refused_naming_file_and_field(good, what, breaks, words):
    folder, raw = good
    bad = copy.deepcopy(raw)
    breaks(bad)
    (folder / CARD).write_text(json.dumps(bad))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(folder)
    assert str(folder / CARD) in str(err.value) and words in str(err.value)


def test_task_sections_are_checked(good):
    folder, raw = good
    for task, words in (("multi_digit", "'generator'"), ("captioning", "'vocabulary'")):
        (folder / CARD).write_text(json.dumps({**raw, "task": task}))
        with pytest.raises(CheckpointError, match=words):
            read_card(folder)


def test_json_too_deep_for_the_parser_is_refused(good):
    folder, _ = good
    (folder / CARD).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested"):
        read_card(folder)


def test_nan_weights_are_refused(tmp_path):
    model = build_model("seed001_cnn", in_channels=1, image_size=8, num_classes=10)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    folder = save_checkpoint(tmp_path / "nan", model, digits_card())
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(folder)


def test_a_schema_1_card_is_migrated(good):
    folder, raw = good
    old = {k: v for k, v in raw.items() if k not in ("schema", "headline", "run", "upload")}
    old["source"] = {"file": "m.pt"}  # schema 1 kept an upload's provenance here
    (folder / CARD).write_text(json.dumps(old))
    card = read_card(folder)
    assert card.schema == SCHEMA_VERSION and card.upload == {"file": "m.pt"} and card.headline.value == 0.9


def test_listing_skips_bad_cards(good):
    folder, raw = good
    assert [f.name for f, _ in list_checkpoints(folder.parent)] == ["ckpt"]
    (folder / CARD).write_text(json.dumps({**raw, "dataset": None}))
    assert list_checkpoints(folder.parent) == []
