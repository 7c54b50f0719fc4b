"""PyTorch against Keras 3 on TensorFlow: the same seed network, data, split, augmentation and schedule, side by side.

    python -m bench.keras_compare [--dataset mnist] [--model seed004_cnn] [--epochs 5] [--json PATH]

CNN Studio trains every model through one engine (`core.engine.run.run`). Keras is not a second
backend of the product: a backend that honoured only some of the Trainer's settings (EMA, mixup, cutmix,
snapshots, resume, time budgets...) would have to refuse the rest, and its runs could not resume or be
reproduced the same way. The framework question the seeds ask (seed 004 trains its CNN in Keras) is
answered here instead: this benchmark builds Keras twins of `seed004_cnn`, `mlp` and `seed001_cnn`,
feeds them the same batches (the same stratified validation split, normalisation and torch augmentation),
drives the learning rate with the same schedule arithmetic, and prints accuracy, training time and
images/s for both frameworks in one table (JSON beside it). TensorFlow is imported only here.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from core.data import load_dataset, stratified_split
from core.data.augment import augment_batch
from core.engine import EndEvent, EpochEvent, EvalEvent, FitResult, RunControl, StepEvent, TrainConfig
from core.engine.optim import Schedule
from core.engine.tasks import normalize

KERAS_MODELS = ("seed004_cnn", "mlp", "seed001_cnn")
KERAS_FILE = "model.keras"


def import_keras():
    """Keras on the TensorFlow backend (imported on first use)."""
    import sys

    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "tensorflow":
        raise RuntimeError("Keras is already loaded with the "
                           f"{sys.modules['keras'].backend.backend()} backend in this process; Keras runs need "
                           "TensorFlow and start in a fresh worker process.")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        import keras
    except ImportError as exc:
        raise RuntimeError(f"Keras runs need TensorFlow: pip install tensorflow-cpu ({exc}).") from None
    return keras


def build_keras_model(name: str, *, in_channels: int, image_size: int, num_classes: int, **options):
    """Keras twins of the registry's seed models (same layers, widths and dropout; logits out)."""
    keras = import_keras()
    layers = keras.layers
    body = [keras.Input((image_size, image_size, in_channels))]
    if name == "mlp":
        hidden, dropout = options.get("hidden", (128, 64)), options.get("dropout", 0.2)
        body.append(layers.Flatten())
        for i, h in enumerate(hidden):
            body.append(layers.Dense(h, activation="relu"))
            if i == 0 and dropout:
                body.append(layers.Dropout(dropout))
    elif name == "seed004_cnn":
        width, dense = options.get("width", 32), options.get("dense", 128)
        body += [layers.Conv2D(width, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
                 layers.Conv2D(width, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
                 layers.Flatten(), layers.Dense(dense, activation="relu")]
    elif name == "seed001_cnn":
        dropout, dense = options.get("dropout", 0.25), options.get("dense", 128)
        blocks = options.get("blocks") or ((32, 64, 128) if in_channels == 3 and image_size >= 32 else (32, 64))
        for width in blocks:
            for _ in range(2):
                body += [layers.Conv2D(width, 3, padding="same", use_bias=False), layers.BatchNormalization(),
                         layers.Activation("relu")]
            body += [layers.MaxPooling2D(), layers.Dropout(dropout)]
        body += [layers.Flatten(), layers.Dense(dense, use_bias=False), layers.BatchNormalization(),
                 layers.Activation("relu"), layers.Dropout(2 * dropout)]
    else:
        raise ValueError(f"{name} has no Keras version; Keras runs support {', '.join(KERAS_MODELS)}.")
    body.append(layers.Dense(num_classes))
    return keras.Sequential(body, name=name)


def _batches(keras, x: torch.Tensor, y: torch.Tensor, spec, shuffle: bool):
    """A PyDataset of normalised NHWC float batches, augmented by the same torch code as PyTorch runs."""
    mean, std, augment = spec["mean"], spec["std"], spec["augment"]
    batch_size, generator = spec["batch_size"], torch.Generator().manual_seed(spec["seed"])

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = torch.arange(len(x))
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def on_epoch_end(self):
            if shuffle:
                self.order = torch.randperm(len(x), generator=generator)

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            xb = normalize(x[idx], mean, std)
            if shuffle and augment.active:
                xb = augment_batch(xb, augment)
            return xb.permute(0, 2, 3, 1).numpy(), y[idx].numpy()

    return Batches()


def train_keras(spec, callback=None, control: RunControl | None = None, out=None, command: str = ""):
    """Train `spec` (a core.classifier.ClassifierRecipe) with Keras on TensorFlow; returns (keras model, FitResult,
    test report, ModelCard). With `out`, writes model.keras and its card (the other pages read it as PyTorch)."""
    from core.engine.checkpoint import DatasetInfo, ModelCard, ModelSpec, write_card
    from core.classifier.evaluate import classification_report

    keras = import_keras()
    import tensorflow as tf

    cfg, emit, control = spec.config, callback or (lambda e: None), control or RunControl()
    if cfg.threads:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
    keras.utils.set_random_seed(cfg.seed)
    data = load_dataset(spec.dataset, spec.data_dir)
    train_x, train_y, val = data.train_x, data.train_y, None
    if spec.val_split:
        keep, held = stratified_split(data.train_y, spec.val_split, seed=cfg.seed)
        train_x, train_y, val = data.train_x[keep], data.train_y[keep], (data.train_x[held], data.train_y[held])
    feed = {"mean": data.mean, "std": data.std, "augment": spec.augment, "batch_size": cfg.batch_size, "seed": cfg.seed}
    train_data = _batches(keras, train_x, train_y, feed, shuffle=True)
    val_data = _batches(keras, *val, {**feed, "batch_size": 1000}, shuffle=False) if val else None
    model = build_keras_model(spec.model, in_channels=data.channels, image_size=data.image_size,
                              num_classes=data.num_classes, **spec.model_options)
    optimizer = {"adam": lambda: keras.optimizers.Adam(cfg.lr),
                 "adamw": lambda: keras.optimizers.AdamW(cfg.lr, weight_decay=cfg.weight_decay),
                 "sgd": lambda: keras.optimizers.SGD(cfg.lr, momentum=cfg.momentum, nesterov=True)}[cfg.optimizer]()
    model.compile(optimizer=optimizer, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps_per_epoch = len(train_data)
    planned = steps_per_epoch * cfg.epochs
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)  # the same LR arithmetic as torch runs
    schedule = Schedule(dummy, name=cfg.schedule, total_steps=planned, lr=cfg.lr,
                        warmup_steps=int(cfg.warmup_epochs * steps_per_epoch), plateau_patience=cfg.plateau_patience,
                        plateau_factor=cfg.plateau_factor, monitor_mode="min")
    result = FitResult(reason="completed", message="", epochs=0, steps=0, train_seconds=0.0, wall_seconds=0.0)
    state = {"tick": 0.0, "epoch_start": 0.0, "best": None, "stale": 0, "epoch": 0}
    started = time.perf_counter()

    class Events(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            state["epoch"], state["epoch_start"] = epoch + 1, time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            state["tick"] = time.perf_counter()
            new_lr = control.take_lr()
            if new_lr is not None:
                schedule.manual = True
                dummy.param_groups[0]["lr"] = new_lr
            self.model.optimizer.learning_rate.assign(dummy.param_groups[0]["lr"])

        def on_train_batch_end(self, batch, logs=None):
            seconds = time.perf_counter() - state["tick"]
            result.train_seconds += seconds
            result.steps += 1
            loss = float(logs["loss"])
            if not math.isfinite(loss):
                result.reason = "nan"
                result.message = (f"The loss became {loss} at epoch {state['epoch']}: training diverged. Lower the "
                                  "learning rate (try a tenth) or check the input normalisation.")
                self.model.stop_training = True
            emit(StepEvent(step=result.steps, epoch=state["epoch"], loss=loss, lr=dummy.param_groups[0]["lr"],
                           images_per_s=cfg.batch_size / max(seconds, 1e-9), train_seconds=result.train_seconds,
                           progress=result.steps / max(planned, 1),
                           metrics={"accuracy": float(logs.get("accuracy", 0.0))}))
            schedule.after_step()
            if control.stop_requested:
                result.reason, result.message = "stopped", "Stopped by the user."
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            train = {"loss": float(logs["loss"]), "accuracy": float(logs["accuracy"])}
            val_metrics = ({"loss": float(logs["val_loss"]), "accuracy": float(logs["val_accuracy"])}
                           if "val_loss" in logs else {})
            value = (val_metrics or train)["loss"]
            improved = state["best"] is None or value < state["best"]
            state["best"], state["stale"] = (value, 0) if improved else (state["best"], state["stale"] + 1)
            if improved:
                result.best_epoch, result.best_value = epoch + 1, value
            schedule.after_epoch(value)
            result.epochs = epoch + 1
            seconds = time.perf_counter() - state["epoch_start"]
            result.history.append({"epoch": epoch + 1, **{f"train_{k}": v for k, v in train.items()},
                                   **{f"val_{k}": v for k, v in val_metrics.items()},
                                   "lr": dummy.param_groups[0]["lr"], "seconds": seconds})
            if val_metrics:
                emit(EvalEvent(step=result.steps, epoch=epoch + 1, metrics=val_metrics,
                               train_seconds=result.train_seconds))
            emit(EpochEvent(epoch=epoch + 1, train=train, val=val_metrics, lr=dummy.param_groups[0]["lr"],
                            seconds=seconds, improved=improved))
            if cfg.early_stopping and state["stale"] >= cfg.early_stopping and result.reason == "completed":
                result.reason = "early_stopping"
                result.message = f"No improvement for {state['stale']} epochs; best was epoch {result.best_epoch}."
                self.model.stop_training = True

    callbacks = [Events()]
    if cfg.keep_best and val_data is not None:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=10**6, restore_best_weights=True))
    model.fit(train_data, validation_data=val_data, epochs=cfg.epochs, callbacks=callbacks, verbose=0)
    result.wall_seconds = time.perf_counter() - started
    result.message = result.message or f"Finished {result.epochs} epoch(s) with Keras {keras.__version__} (TensorFlow)."
    emit(EndEvent(reason=result.reason, message=result.message, epochs=result.epochs, steps=result.steps))
    test_x = normalize(data.test_x, data.mean, data.std).permute(0, 2, 3, 1).numpy()
    logits = model.predict(test_x, batch_size=1000, verbose=0)
    probs = torch.softmax(torch.from_numpy(np.asarray(logits)).float(), dim=1)
    test = classification_report(probs, data.test_y, data.class_names)
    card = ModelCard(
        framework="keras", task="classification",
        model=ModelSpec(name=spec.model, kwargs={"in_channels": data.channels, "image_size": data.image_size,
                                                 "num_classes": data.num_classes, **spec.model_options}),
        dataset=DatasetInfo(**data.describe()),
        metrics={"test_accuracy": round(test["accuracy"], 5), "test_per_class": test["per_class"],
                 "best_epoch": result.best_epoch},
        training={"epochs": result.epochs, "steps": result.steps, "stop_reason": result.reason,
                  "backend": f"keras {keras.__version__} / tensorflow {tf.__version__}",
                  "train_seconds": round(result.train_seconds, 2), "wall_seconds": round(result.wall_seconds, 2),
                  "config": cfg.to_dict(), "augment": spec.augment.to_dict(), "val_split": spec.val_split,
                  "history": result.history},
        params=int(model.count_params()), command=command)
    if out is not None:
        from pathlib import Path

        Path(out).mkdir(parents=True, exist_ok=True)
        model.save(Path(out) / KERAS_FILE)
        card.weights_bytes = (Path(out) / KERAS_FILE).stat().st_size
        write_card(out, card)
    return model, result, test, card


def main(argv=None) -> int:
    import argparse
    import json
    from pathlib import Path

    from core.engine.run import run
    from core.classifier import ClassifierRecipe

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--model", default="seed004_cnn", choices=KERAS_MODELS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "keras_compare.json"))
    args = parser.parse_args(argv)
    spec = ClassifierRecipe(dataset=args.dataset, model=args.model, val_split=0.1, data_dir=args.data_dir,
                     config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, optimizer="adam", lr=1e-3,
                                        threads=args.threads))
    rows = []
    for framework in ("pytorch", "keras"):
        started = time.perf_counter()
        if framework == "pytorch":
            card = run(spec)
            accuracy, seconds, params = card.metrics["test_accuracy"], card.training["train_seconds"], card.params
        else:
            _, result, test, card = train_keras(spec)
            accuracy, seconds, params = test["accuracy"], result.train_seconds, card.params
        n = card.dataset.train_size * (1 - spec.val_split) * args.epochs
        rows.append({"framework": framework, "model": args.model, "dataset": args.dataset, "params": params,
                     "epochs": args.epochs, "test_accuracy": round(accuracy, 4), "train_seconds": round(seconds, 1),
                     "images_per_s": round(n / max(seconds, 1e-9)), "wall_seconds": round(time.perf_counter() - started, 1)})
    print("| framework | model | params | epochs | test acc | train s | img/s |\n|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['framework']} | {r['model']} | {r['params']:,} | {r['epochs']} | {r['test_accuracy']:.2%} | "
              f"{r['train_seconds']:.1f} | {r['images_per_s']:,} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows, "threads": args.threads}, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
