"""The Trainer's settings widgets for any recipe kind: the classifier's full panel, a generic form for the rest.

Pure UI over `core.trainer`: widgets read into a recipe. No training code lives here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from core.data import AugmentConfig, DataError, list_datasets
from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.models import list_models
from core.trainer.runs import uploaded_datasets
from core.viz import augmented_grid
from pages._common import cached_dataset, enlarge
from pages._models import zip_uploader


def classifier_settings(base, k: str, grouped: list[str]):
    """The classifier recipe's settings as widgets (data, model, optimizer, schedule, regularisation,
    augmentation with a preview, validation, k-fold, device); returns the TrainSpec they describe."""
    zip_uploader(k + "data")
    a, b, c, d = st.columns(4)
    datasets, models = [*list_datasets(), *uploaded_datasets()], list(list_models())
    dataset = a.selectbox("Data set", datasets, index=datasets.index(base.dataset), key=k + "data",
                          format_func=lambda n: f"uploaded: {Path(n).name}" if n.startswith("folder:") else n)
    model = b.selectbox("Model", models, index=models.index(base.model), key=k + "model", disabled=bool(grouped),
                        help="Set by the recipe: it trains " + " and ".join(grouped) if grouped else None)
    epochs = c.number_input("Epochs", 1, 500, base.config.epochs, key=k + "epochs")
    batch = d.select_slider("Batch size", [16, 32, 64, 128, 256, 512], base.config.batch_size, key=k + "batch")
    optimizer = a.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(base.config.optimizer), key=k + "opt")
    lr = b.number_input("Learning rate", 1e-5, 2.0, base.config.lr, format="%.5f", key=k + "lr")
    schedule = c.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(base.config.schedule), key=k + "sched")
    decay = d.number_input("Weight decay", 0.0, 1.0, base.config.weight_decay, format="%.5f", key=k + "wd")
    smoothing = a.slider("Label smoothing", 0.0, 0.3, base.label_smoothing, key=k + "ls")
    mixup = b.slider("Mixup alpha", 0.0, 1.0, base.mixup_alpha, key=k + "mixup")
    cutmix = c.slider("Cutmix alpha", 0.0, 1.0, base.cutmix_alpha, key=k + "cutmix")
    val_split = d.slider("Validation share", 0.0, 0.3, base.val_split, key=k + "val")
    translate = a.slider("Shift (px)", 0, 6, base.augment.translate, key=k + "tr")
    rotate = b.slider("Rotate (deg)", 0, 30, int(base.augment.rotate), key=k + "rot")
    scale = c.slider("Zoom (+/-)", 0.0, 0.3, base.augment.scale, key=k + "scale")
    hflip = d.toggle("Horizontal flip (photos only)", base.augment.hflip, key=k + "flip")
    early = a.number_input("Early stopping (epochs, 0 off)", 0, 50, base.config.early_stopping, key=k + "early")
    seed = b.number_input("Seed", 0, 10_000, base.config.seed, key=k + "seed")
    threads = c.number_input("CPU threads (0 = all)", 0, 64, base.config.threads, key=k + "threads")
    device = d.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key=k + "device")
    folds = a.number_input("Stratified k-fold (0 = off)", 0, 10, base.folds, key=k + "folds",
                           help="Train k models, each scored on the fold of the training set it never saw.")
    checks = b.number_input("Validations per epoch", 1, 10, 4, key=k + "checks",
                            help="Score the validation share this many times per epoch: a per-step validation curve.")
    augment = AugmentConfig(translate, hflip, float(rotate), scale)
    try:
        steps_per_epoch = int(len(cached_dataset(dataset).train_x) * (1 - val_split)) // batch
        sample = cached_dataset(dataset).train_x[:4]
        st.image(enlarge(augmented_grid(sample, augment, copies=6), 360, square=False),
                 caption="four training images, six augmented draws each (what the model sees this run)")
    except DataError as exc:
        steps_per_epoch = 0
        st.caption(f"No preview: {exc}")
    return dataclasses.replace(
        base, dataset=dataset, model=model, label_smoothing=smoothing, mixup_alpha=mixup, cutmix_alpha=cutmix,
        val_split=val_split, augment=augment, folds=int(folds) if folds != 1 else 0,
        model_options=base.model_options if model == base.model else {},  # e.g. the transfer recipe's fine_tune
        config=dataclasses.replace(base.config, epochs=int(epochs), batch_size=batch, optimizer=optimizer, lr=lr,
                                   schedule=schedule, weight_decay=decay, early_stopping=int(early), seed=int(seed),
                                   threads=int(threads), device=device,
                                   eval_every_steps=steps_per_epoch // checks if val_split and checks > 1 else 0))


def recipe_settings(base, k: str):
    """Any other recipe's settings, one widget per field of its dataclass (typed from the default)."""
    values, columns = {}, st.columns(4)
    for i, f in enumerate(f for f in dataclasses.fields(base) if f.name not in ("model", "dataset", "data_dir")):
        col, value, label = columns[i % 4], getattr(base, f.name), f.name.replace("_", " ")
        if isinstance(value, bool):
            values[f.name] = col.toggle(label, value, key=k + f.name)
        elif isinstance(value, int):
            values[f.name] = int(col.number_input(label, 0, 10_000_000, value, key=k + f.name))
        elif isinstance(value, float):
            values[f.name] = col.number_input(label, 0.0, 1000.0, value, format="%.5g", key=k + f.name)
        elif isinstance(value, tuple):
            text = col.text_input(label + " (comma separated)", ",".join(map(str, value)), key=k + f.name)
            try:
                values[f.name] = tuple(type(value[0] if value else 0)(v) for v in text.split(",") if v.strip())
            except ValueError:
                st.error(f"{label}: numbers separated by commas, e.g. {','.join(map(str, value)) or '8,16,32'}.")
                values[f.name] = value
        else:
            values[f.name] = col.text_input(label, value, key=k + f.name)
    return dataclasses.replace(base, **values)
