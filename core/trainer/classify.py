"""The classifier recipe: any registry data set and model, trained and tested through `core.engine.recipe.run`.

    python -m core train --dataset mnist --model fast_cnn --epochs 2 --out DIR
    python -m core train --recipe fast_mnist --out checkpoints/mnist_fast_cnn

Owns `TrainSpec` (everything a classifier run needs: data set, model, engine config, augmentation, loss
options, an optional k-fold fold), its `prepare` (data -> model -> task and loaders; a pretrained
backbone's features extracted once and cached), its evaluation (test accuracy, per class, confusion),
the command line that rebuilds it, and the CLI with a tqdm progress bar. Ctrl-C stops the run between
steps and still saves the checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from core.data import AugmentConfig, DataError, load_dataset, stratified_split
from core.engine import Event, RunControl, TensorLoader, TrainConfig, WarningEvent, distributed
from core.engine.checkpoint import DatasetInfo, ModelCard, spec_of
from core.engine.fit import PRECISIONS
from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.engine.recipe import Prepared, register_recipe, run
from core.engine.settings import check_out_dir, check_settings
from core.engine.tasks import ClassificationTask, normalize
from core.models import build_model, count_parameters, list_models
from core.progress import add_lr_at, console_run
from core.engine.predict import predict_logits
from core.trainer.evaluate import classification_report
from core.trainer.fast import RECIPES
from core.trainer.transfer import FeatureTask, feature_sets, per_class_subset, suffix_logits


@register_recipe
@dataclass
class TrainSpec:
    kind: ClassVar[str] = "classifier"
    live: ClassVar[tuple] = ("accuracy", "accuracy", True)
    dataset: str = "digits"  # registry name or folder:PATH
    model: str = "fast_cnn"  # registry name
    model_options: dict = field(default_factory=dict)  # extra constructor arguments (e.g. widths)
    config: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    val_split: float = 0.0  # stratified share of the training set held out for validation; 0 = none
    data_dir: str | None = None  # None: $CNN_STUDIO_DATA or the user cache
    snapshots: bool = False  # keep every epoch's weights (float16) in the checkpoint, to watch training
    folds: int = 0  # > 1: stratified k-fold cross-validation instead of one run (core.trainer.crossval)
    fold: int = -1  # with folds > 1: train on the other folds and test on this one (set by cross_validate)
    test_curve: float = 0.0  # > 0: score the test set every this fraction of an epoch (benchmarks); no model selection
    per_class: int = 0  # > 0: train on this many images of each class (a seeded subset; data efficiency); 0 = all
    processes: int = 1  # > 1: data-parallel over this many processes (torchrun, core.engine.distributed)

    @property
    def seed(self) -> int:
        return self.config.seed

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSpec":
        if d.pop("framework", "torch") != "torch":
            raise ValueError("Keras runs are no longer trained by CNN Studio (see bench/keras_compare.py).")
        return cls(**{**d, "config": TrainConfig(**d["config"]), "augment": AugmentConfig(**d["augment"])})

    def command(self, out: str | Path) -> str:
        return command_for(self, out)

    def check(self) -> None:
        """What `core.engine.settings.check_settings` cannot see field by field."""
        if self.folds == 1:
            raise ValueError("k-fold needs at least 2 folds (0 switches it off); got 1.")
        if self.config.schedule not in SCHEDULES or self.config.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer or schedule ({self.config.optimizer}, {self.config.schedule}); "
                             f"choose from {', '.join(OPTIMIZERS)} and {', '.join(SCHEDULES)}.")
        if self.config.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.config.precision!r}; choose from {', '.join(PRECISIONS)}.")

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        data = load_dataset(self.dataset, self.data_dir)
        for problem in data.problems():  # used anyway, but the user is told what the numbers will mean
            emit(WarningEvent(f"{data.name}: {problem}."))
        if self.augment.hflip and not data.hflip:
            raise ValueError(f"Horizontal flips change the labels of {data.name} (e.g. digits); switch hflip off.")
        train_x, train_y, test_x, test_y = data.train_x, data.train_y, data.test_x, data.test_y
        if self.per_class:
            keep = per_class_subset(train_y, self.per_class, seed=self.config.seed)
            train_x, train_y = train_x[keep], train_y[keep]
        if self.folds > 1:  # the held-out fold is the test set; the model never sees it, not even to select
            train_idx, held_idx = fold_indices(train_y.numpy(), self.folds, self.fold, self.config.seed)
            test_x, test_y = train_x[held_idx], train_y[held_idx]
            train_x, train_y = train_x[train_idx], train_y[train_idx]
        val_loader, val_x = None, None
        if self.val_split:
            keep, held = stratified_split(train_y, self.val_split, seed=self.config.seed)
            val_x, val_y = train_x[held], train_y[held]
            train_x, train_y = train_x[keep], train_y[keep]
            val_loader = TensorLoader(val_x, val_y, batch_size=1000, shuffle=False)
        model = build_model(self.model, in_channels=data.channels, image_size=data.image_size,
                            num_classes=data.num_classes, stats=(data.mean, data.std), seed=self.config.seed,
                            **self.model_options)
        if hasattr(model, "fit_to_data"):  # a stem set from the training images' statistics (fast_cifar)
            pick = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(self.config.seed))[:5000]
            model.fit_to_data(normalize(train_x[pick], data.mean, data.std))
        card = ModelCard(task="classification", model=spec_of(model), params=count_parameters(model),
                         dataset=DatasetInfo(**{**data.describe(), "train_size": len(train_y), "test_size": len(test_y)}))
        features = None
        if hasattr(model, "suffix"):  # a pretrained backbone: its frozen part runs once per image, cached on disk
            if self.augment.active or self.mixup_alpha or self.cutmix_alpha or self.label_smoothing:
                raise ValueError("Pretrained features are computed once and cached, so every epoch sees the same "
                                 "images: switch off augmentation, mixup, cutmix and label smoothing for this model.")
            sets = {"train": train_x, "test": test_x, **({"validation": val_x} if val_x is not None else {})}
            features = feature_sets(model, sets, data.mean, data.std, emit=_stoppable(emit, control))
            task, train = FeatureTask(), features["train"]
            if val_loader is not None:
                val_loader = TensorLoader(*features["validation"], val_y, batch_size=1000, shuffle=False)
        else:
            task = ClassificationTask(data.mean, data.std, augment=self.augment, label_smoothing=self.label_smoothing,
                                      mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha,
                                      channels_last=self.config.channels_last)
            train = (train_x,)

        def evaluate(m) -> dict:  # on the test split (a held-out fold in k-fold); with flips too where labels allow
            logits = suffix_logits(m, features["test"]) if features else predict_logits(m, test_x, data.mean, data.std)
            metrics = report_metrics(classification_report(logits, test_y, data.class_names))
            if data.hflip and not features:
                flipped = predict_logits(m, test_x, data.mean, data.std, tta=True)
                metrics["test_accuracy_tta"] = round(float((flipped.argmax(1) == test_y).float().mean()), 5)
            return metrics
        loader = TensorLoader(*train, train_y, batch_size=self.config.batch_size,
                              drop_last=len(train_y) > self.config.batch_size, seed=self.config.seed)
        config = self.config
        if self.folds > 1 or self.test_curve:  # held-out data must never choose the weights
            config = dataclasses.replace(self.config, keep_best=False, early_stopping=0)
        if self.test_curve:  # the validation events then carry test accuracy: a curve against training time
            val_loader = TensorLoader(test_x, test_y, batch_size=1000, shuffle=False)
            config.eval_every_steps = max(1, int(len(loader) * self.test_curve))
        return Prepared(model, task, loader, val_loader, config, card, evaluate)


def report_metrics(report: dict) -> dict:
    """A classification report as card metrics (the confusion matrix only while it stays small)."""
    metrics = {"test_accuracy": round(report["accuracy"], 5), "test_per_class": report["per_class"],
               "test_n": report["n"]}
    if len(report["confusion"]) <= 100:
        metrics["test_confusion"] = report["confusion"]
    return metrics


def fold_indices(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices of fold `fold` of a seeded stratified k-fold split."""
    from sklearn.model_selection import StratifiedKFold

    if not 0 <= fold < folds:
        raise ValueError(f"fold must be 0 to {folds - 1}, got {fold}")
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    return list(splits)[fold]


class StoppedWhilePreparing(Exception):
    """The user stopped a run before its first step (while its features were being extracted)."""


def _stoppable(callback: Callable[[Event], None], control: RunControl) -> Callable[[Event], None]:
    """Forward preparation events, and end the preparation once the user asks the run to stop."""
    def emit(event: Event) -> None:
        callback(event)
        if control.stop_requested:
            raise StoppedWhilePreparing(f"Stopped while extracting features ({event.done:,} of {event.total:,} "
                                        "images); nothing was trained. Sets finished before the stop stay cached.")
    return emit





def command_for(spec: TrainSpec, out: str | Path) -> str:
    """The `python -m core train` command line that reproduces `spec` (recorded in model cards)."""
    d, c = TrainConfig(), spec.config
    args = ["--dataset", spec.dataset, "--model", spec.model]
    for key, value in spec.model_options.items():
        args += ["--model-option", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    for f in dataclasses.fields(TrainConfig):
        value = getattr(c, f.name)
        if value != getattr(d, f.name) and f.name not in ("keep_best", "channels_last", "eval_every_steps"):
            args += ["--" + f.name.replace("_", "-"), str(value)]
    args += ["--no-keep-best"] if not c.keep_best else []
    args += ["--no-channels-last"] if not c.channels_last else []
    a = spec.augment
    args += (["--translate", str(a.translate)] if a.translate else []) + (["--hflip"] if a.hflip else [])
    args += (["--rotate", str(a.rotate)] if a.rotate else []) + (["--scale", str(a.scale)] if a.scale else [])
    for flag, value in (("--label-smoothing", spec.label_smoothing), ("--mixup", spec.mixup_alpha),
                        ("--cutmix", spec.cutmix_alpha), ("--val-split", spec.val_split)):
        args += [flag, str(value)] if value else []
    args += ["--snapshots"] if spec.snapshots else []
    args += ["--folds", str(spec.folds)] if spec.folds > 1 else []
    args += ["--per-class", str(spec.per_class)] if spec.per_class else []
    args += ["--processes", str(spec.processes)] if spec.processes > 1 else []
    return "python -m core train " + shlex.join(args + ["--out", str(out)])


def build_parser(out_required: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a CNN Studio classifier and save a checkpoint with its model card.")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from a named recipe (flags still override)")
    p.add_argument("--dataset", default=None, help="registry name or folder:PATH (default: digits)")
    p.add_argument("--model", default=None, choices=sorted(list_models()))
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model constructor argument, VALUE as JSON (e.g. widths=[48,96,192]); repeatable")
    p.add_argument("--data-dir", default=None, help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    if out_required:
        p.add_argument("--out", required=True, help="checkpoint folder to write")
    d = TrainConfig()
    for name in ("epochs", "batch_size", "lr", "weight_decay", "momentum", "warmup_epochs", "early_stopping",
                 "grad_clip", "seed", "threads", "max_steps", "time_budget_s", "ema_decay", "plateau_patience",
                 "plateau_factor", "norm_lr_scale"):
        p.add_argument("--" + name.replace("_", "-"), type=type(getattr(d, name)), default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None)
    p.add_argument("--monitor", choices=["val_loss", "val_accuracy"], default=None)
    add_lr_at(p)
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="bf16: bfloat16 autocast (about 2x on CPUs with AMX); auto: mixed on a GPU only")
    p.add_argument("--no-keep-best", action="store_true", help="end with the last weights, not the best epoch's")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--val-split", type=float, default=0.0, help="stratified validation share, e.g. 0.1")
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    p.add_argument("--cutmix", type=float, default=0.0, help="cutmix alpha (0 = off)")
    p.add_argument("--translate", type=int, default=0, help="augmentation: max shift in pixels")
    p.add_argument("--rotate", type=float, default=0.0, help="augmentation: max rotation in degrees")
    p.add_argument("--scale", type=float, default=0.0, help="augmentation: max zoom fraction")
    p.add_argument("--hflip", action="store_true", help="augmentation: random horizontal flips")
    p.add_argument("--snapshots", action="store_true", help="keep every epoch's weights (float16) for the scrubber")
    p.add_argument("--per-class", type=int, default=0, help="train on N images of each class (seeded subset)")
    p.add_argument("--processes", type=int, default=1,
                   help="train data-parallel in N processes (started through torchrun for you)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from its last finished epoch (same flags as before)")
    p.add_argument("--folds", type=int, default=0,
                   help="stratified k-fold cross-validation on the training set (writes cv.json to --out)")
    return p


def spec_from_args(args: argparse.Namespace) -> TrainSpec:
    dataset, recipe = RECIPES.get(args.recipe, ("digits", {}))
    cfg = dataclasses.replace(recipe.get("config", TrainConfig()))
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name not in ("keep_best", "channels_last"):
            setattr(cfg, f.name, value)
    cfg.keep_best = not args.no_keep_best
    cfg.channels_last = not args.no_channels_last
    smoothing = args.label_smoothing if args.label_smoothing is not None else recipe.get("label_smoothing", 0.0)
    augment = AugmentConfig(args.translate, args.hflip, args.rotate, args.scale)
    if not augment.active:
        augment = dataclasses.replace(recipe.get("augment", augment))
    return TrainSpec(dataset=args.dataset or dataset, model=args.model or recipe.get("model", "fast_cnn"),
                     model_options={**recipe.get("model_options", {}), **parse_model_options(args.model_option)}, config=cfg, augment=augment,
                     label_smoothing=smoothing, mixup_alpha=args.mixup, cutmix_alpha=args.cutmix,
                     val_split=args.val_split, data_dir=args.data_dir, snapshots=args.snapshots, folds=args.folds,
                     per_class=args.per_class, processes=getattr(args, "processes", 1))


def torchrun(processes: int) -> list[str]:
    """The arguments that start `processes` ranks of a module on this machine (`python -m torch.distributed.run`)."""
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def parse_model_options(items: list[str]) -> dict:
    """["widths=[48,96,192]", "dropout=0.1"] -> {"widths": [48, 96, 192], "dropout": 0.1}."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        spec = spec_from_args(args)
        check_settings(spec)
        if distributed.is_main():  # under torchrun, rank 0 writes
            check_out_dir(args.out)
        if spec.processes > 1 and not distributed.launched():  # start the ranks: this command again, under torchrun
            os.execv(sys.executable, [sys.executable, *torchrun(spec.processes), "-m", "core", "train", *argv])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    on_event, control, close = console_run(f"{spec.model} on {spec.dataset}", args.lr_at)
    command = "python -m core train " + shlex.join([a for a in argv if a != "--resume"])
    try:
        if spec.folds > 1:
            from core.trainer.crossval import cross_validate

            cv = cross_validate(spec, spec.folds, on_event, control)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "cv.json").write_text(json.dumps({**cv, "command": command}, indent=2))
            close()
            print(f"{cv['k']}-fold accuracy {cv['mean']:.4%} +/- {cv['std']:.4%} over {cv['completed']} fold(s) -> "
                  f"{Path(args.out) / 'cv.json'}")
            return 0
        card = run(spec, on_event, control, out=args.out, command=command, resume=args.resume)
    except (DataError, ValueError, KeyError, TypeError, StoppedWhilePreparing, RuntimeError, OSError) as exc:
        close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    close()
    if distributed.is_main():
        print(f"test accuracy {card.metrics['test_accuracy']:.4%} ({card.params:,} parameters, "
              f"{card.training['train_seconds']:.1f} s training) -> {args.out}"
              + (f" ({distributed.world_size()} processes)" if distributed.active() else ""))
    return 0 if card.training["stop_reason"] != "diverged" else 2


if __name__ == "__main__":
    sys.exit(main())
