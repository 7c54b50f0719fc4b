"""The Trainer's settings form as data: which widget sets which setting of a recipe, and how the values the
widgets return become the recipe to train.

A form is a list of `Field`s; the page draws each one (`pages/_ui.recipe_form`) and hands the values back
to `apply`, which returns a new recipe. The classifier gets a hand-made form (grouped, with ranges and
help); every other recipe kind gets one field per setting of its dataclass, typed from the default. Pure
data, no Streamlit, so the mapping is tested without a browser.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.data import AugmentConfig
from core.engine.fit import PRECISIONS
from core.engine.optim import OPTIMIZERS, SCHEDULES

HIDDEN = ("model", "dataset", "data_dir")  # settings a generic form does not offer (set by the preset)


@dataclass(frozen=True)
class Field:
    key: str  # widget key suffix, and the name its value comes back under
    label: str
    widget: str  # select | select_slider | int | float | slider | toggle | text | numbers
    value: object  # the starting value
    low: float | None = None
    high: float | None = None
    options: tuple = ()  # select / select_slider choices
    step: float | None = None
    help: str | None = None
    disabled: bool = False


def classifier_fields(base, datasets: list[str], models: list[str], grouped: list[str]) -> list[Field]:
    """The classifier recipe's form: data, model, optimiser, schedule, regularisation, augmentation, validation,
    k-fold and device, in rows of four."""
    c, a = base.config, base.augment
    return [
        Field("data", "Data set", "select", base.dataset, options=tuple(datasets)),
        Field("model", "Model", "select", base.model, options=tuple(models), disabled=bool(grouped),
              help="Set by the recipe: it trains " + " and ".join(grouped) if grouped else None),
        Field("epochs", "Epochs", "int", c.epochs, 1, 500),
        Field("batch", "Batch size", "select_slider", c.batch_size, options=(16, 32, 64, 128, 256, 512)),
        Field("opt", "Optimizer", "select", c.optimizer, options=tuple(OPTIMIZERS)),
        Field("lr", "Learning rate", "float", c.lr, 1e-5, 2.0),
        Field("sched", "Schedule", "select", c.schedule, options=tuple(SCHEDULES)),
        Field("wd", "Weight decay", "float", c.weight_decay, 0.0, 1.0),
        Field("ls", "Label smoothing", "slider", base.label_smoothing, 0.0, 0.3),
        Field("mixup", "Mixup alpha", "slider", base.mixup_alpha, 0.0, 1.0),
        Field("cutmix", "Cutmix alpha", "slider", base.cutmix_alpha, 0.0, 1.0),
        Field("val", "Validation share", "slider", base.val_split, 0.0, 0.3),
        Field("tr", "Shift (px)", "slider", a.translate, 0, 6),
        Field("rot", "Rotate (deg)", "slider", int(a.rotate), 0, 30),
        Field("scale", "Zoom (+/-)", "slider", a.scale, 0.0, 0.3),
        Field("flip", "Horizontal flip (photos only)", "toggle", a.hflip),
        Field("early", "Early stopping (epochs, 0 off)", "int", c.early_stopping, 0, 50),
        Field("seed", "Seed", "int", c.seed, 0, 10_000),
        Field("threads", "CPU threads (0 = all)", "int", c.threads, 0, 64),
        Field("device", "Device", "select", c.device, options=("auto", "cpu", "cuda", "mps")),
        Field("precision", "Precision", "select", c.precision, options=PRECISIONS,
              help="bf16: bfloat16 arithmetic, about twice as fast on CPUs with AMX units, same accuracy within "
                   "noise; auto: mixed precision on a GPU, float32 elsewhere."),
        Field("folds", "Stratified k-fold (0 = off)", "int", base.folds, 0, 10,
              help="Train k models, each scored on the fold of the training set it never saw."),
        Field("checks", "Validations per epoch", "int", 4, 1, 10,
              help="Score the validation share this many times per epoch: a per-step validation curve."),
        Field("procs", "Processes (data-parallel)", "int", base.processes, 1, 8,
              help="Train in this many processes with torchrun (DistributedDataParallel): each takes its part of "
                   "every batch. On this machine's cores it mostly shows how; on GPUs or many cores it is faster."),
    ]


def recipe_fields(base) -> list[Field]:
    """Any other recipe's form: one field per setting of its dataclass, typed from the current value."""
    fields = []
    for f in dataclasses.fields(base):
        if f.name in HIDDEN:
            continue
        value, label = getattr(base, f.name), f.name.replace("_", " ")
        if isinstance(value, bool):
            fields.append(Field(f.name, label, "toggle", value))
        elif isinstance(value, int):
            fields.append(Field(f.name, label, "int", value, 0, 10_000_000))
        elif isinstance(value, float):
            fields.append(Field(f.name, label, "float", value, 0.0, 1000.0))
        elif isinstance(value, tuple):
            fields.append(Field(f.name, label + " (comma separated)", "numbers", value))
        else:
            fields.append(Field(f.name, label, "text", value))
    return fields


def parse_numbers(text: str, like: tuple) -> tuple:
    """'8,16,32' -> (8, 16, 32), typed like the default's items; ValueError with an example otherwise."""
    kind = type(like[0]) if like else int
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"numbers separated by commas, e.g. {','.join(map(str, like)) or '8,16,32'}") from None


def apply(base, values: dict, steps_per_epoch: int = 0):
    """The recipe the form's `values` (by field key) describe, starting from `base`."""
    if getattr(base, "kind", "") != "classifier":
        return dataclasses.replace(base, **values)
    v = values
    config = dataclasses.replace(
        base.config, epochs=int(v["epochs"]), batch_size=v["batch"], optimizer=v["opt"], lr=v["lr"],
        schedule=v["sched"], weight_decay=v["wd"], early_stopping=int(v["early"]), seed=int(v["seed"]),
        threads=int(v["threads"]), device=v["device"], precision=v.get("precision", base.config.precision),
        eval_every_steps=steps_per_epoch // v["checks"] if v["val"] and v["checks"] > 1 else 0)
    return dataclasses.replace(
        base, dataset=v["data"], model=v["model"], label_smoothing=v["ls"], mixup_alpha=v["mixup"],
        cutmix_alpha=v["cutmix"], val_split=v["val"], folds=int(v["folds"]) if v["folds"] != 1 else 0,
        processes=int(v.get("procs", 1)),
        augment=AugmentConfig(v["tr"], v["flip"], float(v["rot"]), v["scale"]), config=config,
        model_options=base.model_options if v["model"] == base.model else {})  # e.g. the transfer recipe's options
