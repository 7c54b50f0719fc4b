"""One registry of model kinds: a new kind, written in this file alone, is a CLI verb with flags from its fields,
measured by `evaluate --json`, validated on its cards, offered by the Trainer and swept, with no other file
changed. (The kind is removed again after the module, so the rest of the suite sees the registry as it was.)"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from core.data import load_dataset, stratified_split
from core.engine import TensorLoader, TrainConfig
from core.engine.checkpoint import CheckpointError, DatasetInfo, ModelCard, read_card, spec_of
from core.engine.checkpoint.tasks import TASKS
from core.engine.predict import predict_logits
from core.engine.recipe import PRESETS, RECIPES, Prepared, Recipe, register_presets, register_recipe
from core.engine.tasks import ClassificationTask
from core.models import build_model
from core.models.registry import _MODELS, register_model
from tests.conftest import ROOT


def tiny_mlp(*, in_channels: int, image_size: int, num_classes: int, width: int = 4) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, width), nn.ReLU(),
                         nn.Linear(width, num_classes))


@dataclass
class TinyRecipe(Recipe):
    """A tiny kind for this test: a one-hidden-layer net on the bundled 8x8 digits, scored by its own metric."""
    kind: ClassVar[str] = "tiny"
    verb: ClassVar[str] = "train-tiny"
    task: ClassVar[str] = "tiny_task"
    title: ClassVar[str] = "Tiny test kind"
    headlines: ClassVar[list] = [(("test_tiny_score",), "tiny score", True)]
    sections: ClassVar[dict] = {"tiny_note": dict}
    sweep_metric: ClassVar[str] = "accuracy"
    limits: ClassVar[dict] = {**TrainConfig.limits, "width": (1, 16)}
    width: int = 4  # hidden units of the tiny net
    epochs: int = 2  # passes over the digits
    lr: float = 0.05  # the constant learning rate
    seed: int = 0  # weights and batch order

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=64, seed=self.seed, keep_best=False,
                           channels_last=False)

    def prepare(self, emit, control) -> Prepared:
        data = load_dataset("digits")
        keep, held = stratified_split(data.train_y, 0.1, seed=self.seed)
        model = build_model("tiny_mlp", in_channels=1, image_size=8, num_classes=10, width=self.width, seed=self.seed)
        card = ModelCard(task=self.task, model=spec_of(model), sections={"tiny_note": {"width": self.width}},
                         dataset=DatasetInfo(**data.describe()))
        return Prepared(model, ClassificationTask(data.mean, data.std, channels_last=False),
                        TensorLoader(data.train_x[keep], data.train_y[keep], batch_size=64, seed=self.seed),
                        TensorLoader(data.train_x[held], data.train_y[held], batch_size=500, shuffle=False),
                        self.train_config(), card, lambda m: self.evaluate_checkpoint(m, card, None)[0])

    @classmethod
    def evaluate_checkpoint(cls, model, card, data_dir, n=0, tta=False) -> tuple[dict, bool]:
        data = load_dataset("digits")
        logits = predict_logits(model, data.test_x, data.mean, data.std)
        return {"test_tiny_score": float((logits.argmax(1) == data.test_y).float().mean())}, True

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        if not isinstance(card.section("tiny_note"), dict):
            raise CheckpointError(f"{where}: field 'tiny_note' is missing; a tiny card says its width.")


@pytest.fixture(scope="module", autouse=True)
def tiny_kind():
    register_model("tiny_mlp", "a one-hidden-layer net (test_registry)")(tiny_mlp)
    register_recipe(TinyRecipe)
    register_presets("tiny", {"Tiny demo": TinyRecipe(epochs=3)})
    yield
    for table, key in ((RECIPES, "tiny"), (PRESETS, "tiny"), (TASKS, "tiny_task"), (_MODELS, "tiny_mlp")):
        table.pop(key, None)


def test_a_new_kind_is_a_cli_verb_with_flags_from_its_fields_and_evaluate_measures_it(tmp_path, capsys):
    from core.cli import build_parser, main, parse_recorded, recorded_recipe

    assert "train-tiny" in build_parser().format_help()  # what `python -m core --help` prints
    assert main(["train-tiny", "--width", "8", "--epochs", "3", "--out", str(tmp_path / "t")]) == 0
    card = read_card(tmp_path / "t")
    assert card.task == "tiny_task" and card.section("tiny_note") == {"width": 8}
    assert card.command.startswith("python -m core train-tiny --width 8 --epochs 3")
    assert recorded_recipe(card.command) == TinyRecipe(width=8, epochs=3)
    assert parse_recorded(card.command)[0] == "train-tiny"
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "t"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "tiny_task" and report["headline"]["name"] == "test_tiny_score"
    assert report["headline"]["value"] == pytest.approx(card.metrics["test_tiny_score"]) and report["headline"]["value"] > 0.5
    assert main(["train-tiny", "--width", "99", "--out", str(tmp_path / "u")]) == 2  # its own limits
    assert "width must be from 1 to 16" in capsys.readouterr().err and not (tmp_path / "u" / "card.json").exists()


def test_a_new_kinds_card_sections_are_validated(tmp_path):
    from core.engine.run import run

    run(TinyRecipe(epochs=1), out=tmp_path / "t")
    raw = json.loads((tmp_path / "t" / "card.json").read_text())
    assert raw["tiny_note"] == {"width": 4}  # a section sits at the card's top level
    (tmp_path / "t" / "card.json").write_text(json.dumps({k: v for k, v in raw.items() if k != "tiny_note"}))
    with pytest.raises(CheckpointError, match="'tiny_note' is missing"):
        read_card(tmp_path / "t")
    (tmp_path / "t" / "card.json").write_text(json.dumps({**raw, "tiny_note": [1]}))
    with pytest.raises(CheckpointError, match="'tiny_note' must be dict"):
        read_card(tmp_path / "t")


def test_the_trainer_offers_a_new_kind_with_a_form_from_its_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120).run()
    assert "Tiny test kind" in at.selectbox(key="trainer_kind").options
    at.selectbox(key="trainer_kind").set_value("Tiny test kind").run()
    assert not at.exception and at.selectbox(key="trainer_preset").value == "Tiny demo"
    assert at.number_input(key="trainer_Tiny demo_width").value == 4
    assert at.number_input(key="trainer_Tiny demo_epochs").value == 3


def test_a_new_kind_is_swept_on_its_validation_metric(tmp_path):
    from core.sweep.study import sweep

    study = sweep(TinyRecipe(epochs=2), ["lr=loguniform:0.01:0.2", "width=choice:2,8"], trials=2, sampler="random",
                  pruner="none", root=tmp_path, study_name="tiny")
    done = [t for t in study.trials if t.value is not None]
    assert len(done) == 2 and all(0 < t.value <= 1 for t in done)
    assert all((tmp_path / t.user_attrs["run"] / "card.json").is_file() for t in done)
