"""Train a classifier from the command line, or from a page, through the one engine.

    python -m core.trainer.classify --dataset mnist --model fast_cnn --epochs 2 --out DIR
    python -m core.trainer.classify --recipe fast_mnist --out checkpoints/mnist_fast_cnn

Owns `TrainSpec` (everything a classifier run needs: data set, model, engine config, augmentation,
loss options), `train_classifier` (data -> model -> fit -> test metrics -> checkpoint) and the CLI
around it with a tqdm progress bar. Ctrl-C stops the run between steps and still saves the checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.engine.checkpoint import DatasetInfo, ModelCard, save_checkpoint, save_snapshot, spec_of
from core.data import AugmentConfig, DataError, load_dataset, stratified_split
from core.engine import Event, FitResult, RunControl, TensorLoader, TrainConfig, fit
from core.engine.resume import RESUME_FILE, TrainState, load_state, save_state
from core.trainer.evaluate import classification_report, evaluate_classifier
from core.models import build_model, count_parameters, list_models
from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.engine.tasks import ClassificationTask
from core.trainer.transfer import FeatureTask, feature_sets, suffix_logits

# The benchmark's speed recipe: fast_cnn, Nesterov SGD with a one-cycle schedule over 3 epochs, 1-pixel shifts.
FAST_MNIST_RECIPE = {
    "model": "fast_cnn",
    "config": TrainConfig(epochs=3, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4,
                          schedule="onecycle"),
    "augment": AugmentConfig(translate=1),
}


@dataclass
class TrainSpec:
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
    framework: str = "torch"  # torch | keras (Keras 3 on TensorFlow, seed models only: core.trainer.keras)


@dataclass
class TrainOutcome:
    model: object
    result: FitResult
    test: dict  # accuracy, per_class, confusion, n
    card: ModelCard
    params: int


def train_classifier(spec: TrainSpec, callback: Callable[[Event], None] | None = None,
                     control: RunControl | None = None, out: str | Path | None = None,
                     command: str = "", resume: bool = False) -> TrainOutcome:
    """Run `spec` end to end; with `out`, save the checkpoint and model card there.

    With `out`, every finished epoch leaves a complete checkpoint there (weights + card marked "in
    progress") and the state to resume from; `resume=True` continues from that state, and the run ends
    where it would have ended without the interruption.
    """
    if spec.framework == "keras":
        if resume:
            raise ValueError("Keras runs cannot be resumed; start the run again.")
        from core.trainer.keras import train_keras

        model, result, test, card = train_keras(spec, callback, control, out=out, command=command)
        return TrainOutcome(model=model, result=result, test=test, card=card, params=card.params)
    if resume and (out is None or spec.folds > 1):
        raise ValueError("only a single run with an output folder can be resumed")
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)  # an unwritable folder fails now, not after training
    state = load_state(out) if resume else None
    data = load_dataset(spec.dataset, spec.data_dir)
    if spec.augment.hflip and not data.hflip:
        raise ValueError(f"Horizontal flips change the labels of {data.name} (e.g. digits); switch hflip off.")
    train_x, train_y, val_loader = data.train_x, data.train_y, None
    if spec.val_split:
        keep, held = stratified_split(data.train_y, spec.val_split, seed=spec.config.seed)
        train_x, train_y = data.train_x[keep], data.train_y[keep]
        val_loader = TensorLoader(data.train_x[held], data.train_y[held], batch_size=1000, shuffle=False)
    model = build_model(spec.model, in_channels=data.channels, image_size=data.image_size,
                        num_classes=data.num_classes, stats=(data.mean, data.std), seed=spec.config.seed,
                        **spec.model_options)
    features = None
    if hasattr(model, "suffix"):  # a pretrained backbone: its frozen part runs once per image, cached on disk
        if spec.augment.active or spec.mixup_alpha or spec.cutmix_alpha or spec.label_smoothing:
            raise ValueError("Pretrained features are computed once and cached, so every epoch sees the same "
                             "images: switch off augmentation, mixup, cutmix and label smoothing for this model.")
        sets = {"train": train_x, "test": data.test_x}
        if val_loader is not None:
            sets["validation"] = data.train_x[held]
        features = feature_sets(model, sets, data.mean, data.std, emit=_stoppable(callback, control))
        task = FeatureTask()
        train_x = features["train"]
        if val_loader is not None:
            val_loader = TensorLoader(*features["validation"], data.train_y[held], batch_size=1000, shuffle=False)
    else:
        task = ClassificationTask(data.mean, data.std, augment=spec.augment, label_smoothing=spec.label_smoothing,
                                  mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha,
                                  channels_last=spec.config.channels_last)
        train_x = (train_x,)
    loader = TensorLoader(*train_x, train_y, batch_size=spec.config.batch_size,
                          drop_last=len(train_y) > spec.config.batch_size, seed=spec.config.seed)
    def on_event(event: Event) -> None:
        if spec.snapshots and out is not None and event.kind == "epoch":
            save_snapshot(out, model, event.epoch)
        if callback is not None:
            callback(event)

    def card(metrics: dict, history: list[dict], run: dict, **training) -> ModelCard:
        return ModelCard(
            task="classification", model=spec_of(model), dataset=DatasetInfo(**data.describe()), run=run,
            metrics={**metrics, "final_train": {k: round(v, 5) for k, v in history[-1].items()} if history else {}},
            training={**training, "config": spec.config.to_dict(), "augment": spec.augment.to_dict(),
                      "label_smoothing": spec.label_smoothing, "mixup_alpha": spec.mixup_alpha,
                      "cutmix_alpha": spec.cutmix_alpha, "val_split": spec.val_split, "history": history},
            params=count_parameters(model), command=command)

    def save_epoch(progress: TrainState) -> None:
        """The crash-safe point: resume state first, then a loadable checkpoint of this epoch."""
        save_state(out, progress)
        save_checkpoint(out, model, card({"best_epoch": progress.best_epoch}, progress.history,
                                         {"state": "in_progress", "epoch": progress.epoch},
                                         epochs=progress.epoch, steps=progress.steps, stop_reason="interrupted",
                                         train_seconds=round(progress.train_seconds, 2)))

    result = fit(model, task, loader, val_loader, spec.config, callback=on_event, control=control, resume=state,
                 on_epoch_end=save_epoch if out is not None else None)
    if features is not None:
        test = classification_report(suffix_logits(model, features["test"]), data.test_y, data.class_names)
    else:
        test = evaluate_classifier(model, data)
    final = card({"test_accuracy": round(test["accuracy"], 5), "test_per_class": test["per_class"],
                  "best_epoch": result.best_epoch}, result.history, {"state": "complete", "epoch": result.epochs},
                 epochs=result.epochs, steps=result.steps, stop_reason=result.reason,
                 train_seconds=round(result.train_seconds, 2), wall_seconds=round(result.wall_seconds, 2),
                 resumed_from_epoch=state.epoch if state is not None else 0)
    if out is not None:
        save_checkpoint(out, model, final)
        (Path(out) / RESUME_FILE).unlink(missing_ok=True)  # the run is over: nothing left to resume
    return TrainOutcome(model=model, result=result, test=test, card=final, params=final.params)


class StoppedWhilePreparing(Exception):
    """The user stopped a run before its first step (while its features were being extracted)."""


def _stoppable(callback: Callable[[Event], None] | None, control: RunControl | None) -> Callable[[Event], None]:
    """Forward preparation events, and end the preparation once the user asks the run to stop."""
    def emit(event: Event) -> None:
        if callback is not None:
            callback(event)
        if control is not None and control.stop_requested:
            raise StoppedWhilePreparing(f"Stopped while extracting features ({event.done:,} of {event.total:,} "
                                        "images); nothing was trained. Sets finished before the stop stay cached.")
    return emit


RECIPES = {"fast_mnist": ("mnist", FAST_MNIST_RECIPE)}


def command_for(spec: TrainSpec, out: str | Path) -> str:
    """The `python -m core.trainer.classify` command line that reproduces `spec` (recorded in model cards)."""
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
    args += ["--framework", spec.framework] if spec.framework != "torch" else []
    return "python -m core train " + shlex.join(args + ["--out", str(out)])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train a CNN Studio classifier and save a checkpoint with its model card.")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="start from a named recipe (flags still override)")
    p.add_argument("--dataset", default=None, help="registry name or folder:PATH (default: digits)")
    p.add_argument("--model", default=None, choices=sorted(list_models()))
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra model constructor argument, VALUE as JSON (e.g. widths=[48,96,192]); repeatable")
    p.add_argument("--data-dir", default=None, help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    d = TrainConfig()
    for name in ("epochs", "batch_size", "lr", "weight_decay", "momentum", "warmup_epochs", "early_stopping",
                 "grad_clip", "seed", "threads", "max_steps", "time_budget_s", "ema_decay", "plateau_patience",
                 "plateau_factor"):
        p.add_argument("--" + name.replace("_", "-"), type=type(getattr(d, name)), default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--schedule", choices=SCHEDULES, default=None)
    p.add_argument("--monitor", choices=["val_loss", "val_accuracy"], default=None)
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
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
    p.add_argument("--framework", choices=["torch", "keras"], default="torch",
                   help="keras: Keras 3 on TensorFlow (seed004_cnn, mlp, seed001_cnn)")
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
                     model_options=parse_model_options(args.model_option), config=cfg, augment=augment,
                     label_smoothing=smoothing, mixup_alpha=args.mixup, cutmix_alpha=args.cutmix,
                     val_split=args.val_split, data_dir=args.data_dir, snapshots=args.snapshots, folds=args.folds,
                     framework=args.framework)


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
    from tqdm import tqdm

    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        spec = spec_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    control = RunControl()
    signal.signal(signal.SIGINT, lambda *_: control.stop())  # finish the step, then save what we have
    bar = tqdm(total=None, unit="step", dynamic_ncols=True)

    def on_event(event: Event) -> None:
        if event.kind == "step":
            if bar.total is None and event.progress:
                bar.total = round(event.step / event.progress)
            bar.update(1)
            bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}",
                            img_s=f"{event.images_per_s:.0f}")
        elif event.kind == "prepare" and (event.done == event.total or event.done % 1024 < 64):
            bar.write(f"{event.done:,}/{event.total:,}: {event.message}")
        elif event.kind == "epoch":
            val = f", val loss {event.val['loss']:.4f} acc {event.val['accuracy']:.4f}" if event.val else ""
            bar.write(f"epoch {event.epoch}: train loss {event.train['loss']:.4f} acc "
                      f"{event.train.get('accuracy', 0):.4f}{val} ({event.seconds:.1f} s)")
        elif event.kind == "end":
            bar.close()
            print(event.message)

    command = "python -m core train " + shlex.join([a for a in argv if a != "--resume"])
    if spec.folds > 1:
        return _cross_validate_cli(spec, on_event, control, args.out, command)
    try:
        outcome = train_classifier(spec, on_event, control, out=args.out, command=command, resume=args.resume)
    except (DataError, ValueError, KeyError, TypeError, StoppedWhilePreparing, RuntimeError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"test accuracy {outcome.test['accuracy']:.4%} ({outcome.params:,} parameters, "
          f"{outcome.result.train_seconds:.1f} s training) -> {args.out}")
    return 0 if outcome.result.reason != "nan" else 2


def _cross_validate_cli(spec: TrainSpec, on_event, control, out: str, command: str) -> int:
    from core.trainer.crossval import cross_validate

    def report(event) -> None:
        if event.kind == "fold":
            print(f"fold {event.fold}/{event.folds}: held-out accuracy {event.accuracy:.4%}", flush=True)
        elif event.kind != "end":
            on_event(event)

    try:
        cv = cross_validate(spec, spec.folds, report, control)
    except (DataError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "cv.json").write_text(json.dumps({**cv, "command": command}, indent=2))
    print(f"{cv['k']}-fold accuracy {cv['mean']:.4%} +/- {cv['std']:.4%} over {cv['completed']} fold(s) -> "
          f"{Path(out) / 'cv.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
