"""The classifier's Trainer form: data, model, optimiser, schedule, regularisation, augmentation, validation,
k-fold and device, in rows of four, each field naming the setting it sets (see `core.engine.form`), and how
the values become the recipe to train. Pure data, no Streamlit.
"""
from __future__ import annotations

import dataclasses

from core.engine.config import DEVICES, PRECISIONS
from core.engine.form import Field
from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.engine.settings import with_settings
from core.models import list_models


def classifier_fields(base, datasets: list[str], grouped: list[str]) -> list[Field]:
    """The classifier recipe's form; `grouped`: the models a group recipe trains (the model is then set by it)."""
    c, a = base.config, base.augment
    return [
        Field("data", "Data set", "select", base.dataset, options=tuple(datasets), path="dataset"),
        Field("model", "Model", "select", base.model, options=tuple(list_models()), disabled=bool(grouped),
              help="Set by the recipe: it trains " + " and ".join(grouped) if grouped else None, path="model"),
        Field("epochs", "Epochs", "int", c.epochs, 1, 500, path="config.epochs"),
        Field("batch", "Batch size", "select_slider", c.batch_size, options=(16, 32, 64, 128, 256, 512),
              path="config.batch_size"),
        Field("opt", "Optimizer", "select", c.optimizer, options=tuple(OPTIMIZERS), path="config.optimizer"),
        Field("lr", "Learning rate", "float", c.lr, 1e-5, 2.0, path="config.lr"),
        Field("sched", "Schedule", "select", c.schedule, options=tuple(SCHEDULES), path="config.schedule"),
        Field("wd", "Weight decay", "float", c.weight_decay, 0.0, 1.0, path="config.weight_decay"),
        Field("ls", "Label smoothing", "slider", base.label_smoothing, 0.0, 0.3, path="label_smoothing"),
        Field("mixup", "Mixup alpha", "slider", base.mixup_alpha, 0.0, 1.0, path="mixup_alpha"),
        Field("cutmix", "Cutmix alpha", "slider", base.cutmix_alpha, 0.0, 1.0, path="cutmix_alpha"),
        Field("val", "Validation share", "slider", base.val_split, 0.0, 0.3, path="val_split"),
        Field("tr", "Shift (px)", "slider", a.translate, 0, 6, path="augment.translate"),
        Field("rot", "Rotate (deg)", "slider", int(a.rotate), 0, 30, path="augment.rotate"),
        Field("scale", "Zoom (+/-)", "slider", a.scale, 0.0, 0.3, path="augment.scale"),
        Field("flip", "Horizontal flip (photos only)", "toggle", a.hflip, path="augment.hflip"),
        Field("early", "Early stopping (epochs, 0 off)", "int", c.early_stopping, 0, 50, path="config.early_stopping"),
        Field("seed", "Seed", "int", c.seed, 0, 10_000, path="config.seed"),
        Field("threads", "CPU threads (0 = all)", "int", c.threads, 0, 64, path="config.threads"),
        Field("device", "Device", "select", c.device, options=DEVICES, path="config.device"),
        Field("precision", "Precision", "select", c.precision, options=PRECISIONS, path="config.precision",
              help="bf16: bfloat16 arithmetic, about twice as fast on CPUs with AMX units, same accuracy within "
                   "noise; auto: mixed precision on a GPU, float32 elsewhere."),
        Field("folds", "Stratified k-fold (0 = off)", "int", base.folds, 0, 10, path="folds",
              help="Train k models, each scored on the fold of the training set it never saw."),
        Field("checks", "Validations per epoch", "int", 4, 1, 10,
              help="Score the validation share this many times per epoch: a per-step validation curve."),
        Field("procs", "Processes (data-parallel)", "int", base.processes, 1, 8, path="processes",
              help="Train in this many processes with torchrun (DistributedDataParallel): each takes its part of "
                   "every batch. On this machine's cores it mostly shows how; on GPUs or many cores it is faster."),
    ]


def apply(base, values: dict, steps_per_epoch: int = 0):
    """The recipe the form's values describe (by setting path; `checks` becomes the validation interval)."""
    values = dict(values)
    checks = values.pop("checks", 1)
    values["augment.rotate"] = float(values.get("augment.rotate", base.augment.rotate))
    if values.get("folds") == 1:
        values["folds"] = 0  # one fold is no cross-validation
    recipe = with_settings(base, values)
    every = steps_per_epoch // checks if recipe.val_split and checks > 1 else 0
    return dataclasses.replace(recipe, config=dataclasses.replace(recipe.config, eval_every_steps=every),
                               model_options=base.model_options if recipe.model == base.model else {})
