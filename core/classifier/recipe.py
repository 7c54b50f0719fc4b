"""The classifier kind: any registry data set and model, trained and tested through `core.engine.run.run`.

    python -m core train --dataset mnist --model fast_cnn --epochs 2 --out DIR
    python -m core train --recipe fast_mnist --out checkpoints/mnist_fast_cnn

Owns `ClassifierRecipe` (everything a classifier run needs: data set, model, engine config, augmentation,
loss options; k-fold cross-validation, a pretrained backbone's cached features and data-efficiency subsets
are options of it), its `prepare` (data -> model -> task and loaders), its evaluation (test accuracy, per
class, confusion; `core.classifier.evaluate`), its card rules, named recipes (`core.classifier.fast`),
Trainer presets (`core.classifier.presets`) and form (`core.classifier.form`). Ctrl-C stops a run between
steps and still saves the checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from core.classifier.calibration import calibration_metrics
from core.classifier.evaluate import classification_report, evaluate_checkpoint, report_metrics
from core.classifier.fast import RECIPES
from core.classifier.transfer import FeatureTask, feature_sets, per_class_subset, suffix_logits
from core.data import AugmentConfig, load_dataset, stratified_split
from core.engine import Event, RunControl, StoppedWhilePreparing, TensorLoader, TrainConfig, WarningEvent
from core.engine.checkpoint import CheckpointError, DatasetInfo, ModelCard, spec_of
from core.engine.predict import predict_logits
from core.engine.recipe import Outcome, Prepared, Recipe, register_recipe
from core.data.base import dataset_shape
from core.engine.settings import SHARE, check_dataset, check_memory
from core.engine.tasks import ClassificationTask, normalize
from core.errors import SettingsError
from core.models import build_model, count_parameters, list_models
from core.models.registry import TRAINING_BUDGET, check_options, training_bytes


@register_recipe
@dataclass
class ClassifierRecipe(Recipe):
    kind: ClassVar[str] = "classifier"
    verb: ClassVar[str] = "train"
    task: ClassVar[str] = "classification"
    title: ClassVar[str] = "Image classifier"
    pages: ClassVar[str] = "Draw and Inside the network"
    opens: ClassVar[tuple] = (("pages/draw.py", "draw_model", "Try it on the Draw page"),
                              ("pages/inside.py", "inside_model", "Look inside it"))
    headlines: ClassVar[list] = [(("test_accuracy",), "test accuracy", True),
                                 (("imagenet_top1_reported",), "ImageNet top-1 (reported)", True),
                                 (("heldout_accuracy",), "accuracy on held-out shots", True)]
    sections: ClassVar[dict] = {"calibration": dict}  # temperature, reliability diagram, OOD threshold
    sweep_metric: ClassVar[str] = "accuracy"
    limits: ClassVar[dict] = {"folds": (0, 100), "fold": (-1, 100), "per_class": (0, 1_000_000), "processes": (1, 64),
                              "val_split": SHARE, "label_smoothing": SHARE, "test_curve": SHARE,
                              "mixup_alpha": (0, 100), "cutmix_alpha": (0, 100)}
    choices: ClassVar[dict] = {"model": lambda: tuple(list_models())}
    flags: ClassVar[dict] = {"mixup_alpha": "--mixup", "cutmix_alpha": "--cutmix", "model_options": "--model-option"}
    no_flag: ClassVar[tuple] = ("fold",)
    always: ClassVar[tuple] = ("dataset", "model")
    legacy: ClassVar[dict] = {"python -m core.train ": "python -m core train ",
                              "python -m core.transfer imagenet-card": "python -m core imagenet-card"}

    dataset: str = "digits"  # registry name or folder:PATH
    model: str = "fast_cnn"  # registry name
    model_options: dict = field(default_factory=dict)  # extra model constructor argument, VALUE as JSON (widths=[48,96])
    config: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_smoothing: float = 0.0  # the loss's label smoothing (0.1 is a common choice)
    mixup_alpha: float = 0.0  # mixup alpha (0 = off)
    cutmix_alpha: float = 0.0  # cutmix alpha (0 = off)
    val_split: float = 0.0  # stratified share of the training set held out for validation; 0 = none
    data_dir: str | None = None  # data directory (default: $CNN_STUDIO_DATA or the user cache)
    snapshots: bool = False  # keep every epoch's weights (float16) in the checkpoint, to watch training
    folds: int = 0  # > 1: stratified k-fold cross-validation instead of one run (writes cv.json)
    fold: int = -1  # with folds > 1: train on the other folds and test on this one (set by cross_validate)
    test_curve: float = 0.0  # > 0: score the test set every this fraction of an epoch (benchmarks); no model selection
    per_class: int = 0  # > 0: train on this many images of each class (a seeded subset); 0 = all
    processes: int = 1  # > 1: train data-parallel in this many processes (started through torchrun)

    # --- what the engine asks ---

    def train_config(self) -> TrainConfig:
        return self.config

    def check(self) -> None:
        """What `core.engine.settings.check_settings` cannot see field by field: k-fold, the data set's name, the
        model's options and the memory the run would need."""
        if self.folds == 1:
            raise SettingsError("k-fold needs at least 2 folds (0 switches it off); got 1.")
        check_dataset(self.dataset)
        try:
            check_options(self.model, self.model_options)
            channels, side, classes = dataset_shape(self.dataset) or (3, 64, 10)  # an image folder: a typical guess
            needed = training_bytes(self.model, in_channels=channels, image_size=side, num_classes=classes,
                                    batch_size=self.config.batch_size, **self.model_options)
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"model {self.model} with options {str(self.model_options)[:100]}: "
                                f"{str(exc)[:200]}") from None
        check_memory(needed, f"training {self.model} on batches of {self.config.batch_size}", TRAINING_BUDGET,
                     "Use a smaller batch or narrower layers.")

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        data = load_dataset(self.dataset, self.data_dir)
        for problem in data.problems():  # used anyway, but the user is told what the numbers will mean
            emit(WarningEvent(f"{data.name}: {problem}."))
        if self.augment.hflip and not data.hflip:
            raise SettingsError(f"Horizontal flips change the labels of {data.name} (e.g. digits); switch hflip off.")
        split = self._split(data)
        model = build_model(self.model, in_channels=data.channels, image_size=data.image_size,
                            num_classes=data.num_classes, stats=(data.mean, data.std), seed=self.config.seed,
                            **self.model_options)
        if hasattr(model, "fit_to_data"):  # a stem set from the training images' statistics (fast_cifar)
            pick = torch.randperm(len(split["train"][0]), generator=torch.Generator().manual_seed(self.config.seed))
            model.fit_to_data(normalize(split["train"][0][pick[:5000]], data.mean, data.std))
        card = ModelCard(task=self.task, model=spec_of(model), params=count_parameters(model),
                         dataset=DatasetInfo(**{**data.describe(), "train_size": len(split["train"][1]),
                                                "test_size": len(split["test"][1])}))
        features = None
        if hasattr(model, "suffix"):  # a pretrained backbone: its frozen part runs once per image, cached on disk
            task, sets = self._features(model, data, split, emit, control)
            features = sets["test"][0]
        else:
            task = ClassificationTask(data.mean, data.std, augment=self.augment, label_smoothing=self.label_smoothing,
                                      mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha,
                                      channels_last=self.config.channels_last)
            sets = {name: ((x,), y) for name, (x, y) in split.items()}
        loader = TensorLoader(*sets["train"][0], sets["train"][1], batch_size=self.config.batch_size,
                              drop_last=len(sets["train"][1]) > self.config.batch_size, seed=self.config.seed)
        val = TensorLoader(*sets["validation"][0], sets["validation"][1], batch_size=1000, shuffle=False) \
            if "validation" in sets else None
        config = self.config
        if self.folds > 1 or self.test_curve:  # held-out data must never choose the weights
            config = dataclasses.replace(self.config, keep_best=False, early_stopping=0)
        if self.test_curve:  # the validation events then carry test accuracy: a curve against training time
            val = TensorLoader(*split["test"], batch_size=1000, shuffle=False)
            config.eval_every_steps = max(1, int(len(loader) * self.test_curve))
        return Prepared(model, task, loader, val, config, card, self._evaluation(data, split, sets, features, card))

    def _split(self, data) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{"train", "test", and "validation" when held out: (images, labels)} after the subset, fold and split."""
        train_x, train_y, test_x, test_y = data.train_x, data.train_y, data.test_x, data.test_y
        if self.per_class:
            keep = per_class_subset(train_y, self.per_class, seed=self.config.seed)
            train_x, train_y = train_x[keep], train_y[keep]
        if self.folds > 1:  # the held-out fold is the test set; the model never sees it, not even to select
            train_idx, held_idx = fold_indices(train_y.numpy(), self.folds, self.fold, self.config.seed)
            test_x, test_y = train_x[held_idx], train_y[held_idx]
            train_x, train_y = train_x[train_idx], train_y[train_idx]
        split = {}
        if self.val_split:
            keep, held = stratified_split(train_y, self.val_split, seed=self.config.seed)
            split["validation"] = train_x[held], train_y[held]
            train_x, train_y = train_x[keep], train_y[keep]
        return {"train": (train_x, train_y), "test": (test_x, test_y), **split}

    def _features(self, model, data, split: dict, emit, control) -> tuple:
        """(task, sets of cached features) for a pretrained backbone whose frozen part runs once per image."""
        if self.augment.active or self.mixup_alpha or self.cutmix_alpha or self.label_smoothing:
            raise SettingsError("Pretrained features are computed once and cached, so every epoch sees the same "
                                "images: switch off augmentation, mixup, cutmix and label smoothing for this model.")
        features = feature_sets(model, {name: x for name, (x, _) in split.items()}, data.mean, data.std,
                                emit=_stoppable(emit, control))
        return FeatureTask(), {name: (features[name], y) for name, (_, y) in split.items()}

    @classmethod
    def calibrate_checkpoint(cls, folder, model, card, data_dir) -> dict:
        from core.classifier.evaluate import calibrate_classifier

        return calibrate_classifier(cls, folder, model, card, data_dir)

    @staticmethod
    def _evaluation(data, split: dict, sets: dict, features: tuple | None, card: ModelCard) -> Callable:
        """Test metrics of the trained model (a held-out fold in k-fold; a pretrained backbone's cached test
        `features`), with flips too where labels allow; its calibration (the temperature fitted on the validation
        split, when the run held one out) and its out-of-distribution threshold, into the card."""
        test_x, test_y = split["test"]

        def logits_of(m, name: str) -> torch.Tensor:
            inputs = sets[name][0]
            return suffix_logits(m, inputs) if features else predict_logits(m, inputs[0], data.mean, data.std)

        def evaluate(m) -> dict:
            logits = logits_of(m, "test")
            metrics = report_metrics(classification_report(logits, test_y, data.class_names))
            if data.hflip and not features:
                flipped = predict_logits(m, test_x, data.mean, data.std, tta=True)
                metrics["test_accuracy_tta"] = round(float((flipped.argmax(1) == test_y).float().mean()), 5)
            val = (logits_of(m, "validation"), split["validation"][1]) if "validation" in split else None
            calibrated, card.sections["calibration"] = calibration_metrics(val, (logits, test_y))
            return {**metrics, **calibrated}
        return evaluate

    def execute(self, emit, control, out=None, *, resume: bool = False, command: str | None = None) -> Outcome:
        """One run, or with `folds` > 1 one run per fold (k-fold cross-validation, cv.json in `out`)."""
        if self.folds <= 1:
            return super().execute(emit, control, out, resume=resume, command=command)
        from core.classifier.crossval import cross_validate

        cv = cross_validate(self, self.folds, emit, control)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "cv.json").write_text(json.dumps({**cv, "command": command}, indent=2))
        return Outcome(None, status={"state": "stopped" if control.stop_requested else "finished",
                                     "message": f"{cv['k']}-fold cross-validation: {cv['completed']} fold(s) done.",
                                     "cv": cv, "test_accuracy": None, "train_seconds": cv["train_seconds"]},
                       line=f"{cv['k']}-fold accuracy {cv['mean'] or 0:.4%} +/- {cv['std']:.4%} over "
                            f"{cv['completed']} fold(s) -> {Path(out or '.') / 'cv.json'}")

    # --- what the CLI, the pages and sweeps ask ---

    @classmethod
    def named(cls) -> dict[str, "ClassifierRecipe"]:
        """The speed recipes of `core.classifier.fast`, by the name `--recipe` takes."""
        return {name: from_recipe(*entry) for name, entry in RECIPES.items()}

    @classmethod
    def evaluate_checkpoint(cls, model, card, data_dir, n=0, tta=False) -> tuple[dict, bool]:
        return evaluate_checkpoint(model, card, data_dir, tta)

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        ds = card.dataset
        if not ds.class_names:
            raise CheckpointError(f"{where}: dataset.class_names is empty; a classifier needs one name per output.")
        if card.num_outputs is not None and card.num_outputs != len(ds.class_names):
            raise CheckpointError(f"{where}: dataset.class_names has {len(ds.class_names)} names but the model has "
                                  f"{card.num_outputs} outputs; give one name per output.")

    def form_fields(self, context: dict) -> list:
        from core.classifier.form import classifier_fields

        return classifier_fields(self, context.get("datasets", [self.dataset]), context.get("grouped", []))

    def apply_form(self, values: dict, steps_per_epoch: int = 0) -> "ClassifierRecipe":
        from core.classifier.form import apply

        return apply(self, values, steps_per_epoch)

    def for_sweep(self) -> "ClassifierRecipe":
        """Trials are scored on validation data, never on the test set: 10 % held out when the recipe has none."""
        return self if self.val_split else dataclasses.replace(self, val_split=0.1)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierRecipe":
        d = dict(d)
        if d.pop("framework", "torch") != "torch":
            raise SettingsError("Keras runs are no longer trained by CNN Studio (see bench/keras_compare.py).")
        return super().from_dict(d)


def from_recipe(dataset: str, recipe: dict, **settings) -> ClassifierRecipe:
    """A speed recipe dict (model, model_options, config, augment, label_smoothing) as a classifier recipe, with
    `settings` on top."""
    return ClassifierRecipe(dataset=dataset, model=recipe["model"], model_options=dict(recipe.get("model_options", {})),
                            config=dataclasses.replace(recipe["config"]),
                            augment=dataclasses.replace(recipe.get("augment", AugmentConfig())),
                            label_smoothing=recipe.get("label_smoothing", 0.0), **settings)


def fold_indices(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of fold `fold` of a seeded stratified k-fold split."""
    from sklearn.model_selection import StratifiedKFold

    if not 0 <= fold < folds:
        raise SettingsError(f"fold must be 0 to {folds - 1}, got {fold}")
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    return list(splits)[fold]


def _stoppable(callback: Callable[[Event], None], control: RunControl) -> Callable[[Event], None]:
    """Forward preparation events, and end the preparation once the user asks the run to stop."""
    def emit(event: Event) -> None:
        callback(event)
        if control.stop_requested:
            raise StoppedWhilePreparing(f"Stopped while extracting features ({event.done:,} of {event.total:,} "
                                        "images); nothing was trained. Sets finished before the stop stay cached.")
    return emit
