"""The model card: one typed, versioned description of a checkpoint, validated whenever it is read.

Owns `ModelCard` (and its parts `ModelSpec`, `DatasetInfo`, `Headline`), the rules every card must meet
(types, one finite numeric mean and positive std per input channel, sizes within bounds, bounded nesting),
the migration of older cards, and the check of a card against its task's rules (`checkpoint.tasks`): the
headline metrics, the extra sections its cards carry (kept in `ModelCard.sections`, written at the card's
top level) and the task's own rules.
A card that breaks a rule is refused with `CheckpointError` naming the file and the field, so a page never
meets a card it cannot use. Does not own reading or writing files (`core.engine.checkpoint.store`) or any
kind's rules.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from core.engine.checkpoint.tasks import LEGACY_COMMANDS, TASKS
from core.errors import ProjectError

FORMAT = "cnn-studio-checkpoint/1"
SCHEMA_VERSION = 2  # 1: the untyped cards of the first version (no "schema" key); 2: this dataclass
MAX_DEPTH = 12  # deepest JSON nesting a card may have (a history row is at depth 4)
MAX_CHANNELS = 16  # input channels a card may declare
MAX_IMAGE_SIZE = 4096  # input side in pixels
MAX_CLASSES = 100_000  # outputs a classifier may have
MAX_CARD_BYTES = 32 * 1024 * 1024  # a card.json larger than this is refused before parsing
MIN_STD, MAX_STAT = 1e-6, 1000.0  # normalisation constants beyond these turn every input into infinities or noise


class CheckpointError(ProjectError):
    """A checkpoint cannot be loaded; the message names the file and what is wrong with it."""


@dataclass
class ModelSpec:
    name: str  # registry name (or the uploaded file's kind)
    kwargs: dict  # constructor arguments, enough to rebuild the model


@dataclass
class Headline:
    name: str  # metrics key, e.g. test_accuracy
    value: float
    label: str = ""  # the same in words, for readers
    higher_is_better: bool = True

    def describe(self) -> str:
        """'test accuracy 99.60 %' / 'test MSE 0.0047'."""
        proportion = self.higher_is_better and 0.0 <= self.value <= 1.0 and "bleu" not in self.name
        return f"{self.label or self.name} {self.value:.2%}" if proportion else f"{self.label or self.name} {self.value:.4g}"


@dataclass
class DatasetInfo:
    name: str  # registry name, folder:PATH, or what an uploaded model was made for
    channels: int  # input channels
    image_size: int  # input side in pixels
    mean: list[float]  # per-channel normalisation on the [0, 1] scale
    std: list[float]
    class_names: list[str] = field(default_factory=list)  # one per output for classifiers; [] when none
    train_size: int = 0  # images the model trained on (0: unknown or pretrained)
    test_size: int = 0
    hflip: bool = False  # whether horizontal flips keep labels
    source: str = ""  # where the files were read from
    sources: list[str] = field(default_factory=list)  # data sets a composed set is made of
    normalisation: str = ""  # uploaded models: the normalisation the user chose by name
    extra: dict = field(default_factory=dict)  # anything else a reader recorded (e.g. skipped files)

    @property
    def has_test_set(self) -> bool:
        """Whether the data set can be loaded here to pick test images (ImageNet, a pretrained model's, cannot;
        nor can an uploaded model's whose card names no data set CNN Studio knows, nor a model taught from shots)."""
        return self.name not in ("imagenet", "uploaded", "taught")


@dataclass
class ModelCard:
    task: str  # one of TASKS
    model: ModelSpec
    dataset: DatasetInfo
    metrics: dict = field(default_factory=dict)  # test metrics; the headline is one of them
    training: dict = field(default_factory=dict)  # epochs, steps, seconds, config, history, ...
    params: int = 0  # trainable + frozen parameters
    command: str | None = None  # the command that made it (replays it), None when made by a page or test
    headline: Headline | None = None  # derived from metrics on save/load when the task defines one
    schema: int = SCHEMA_VERSION
    format: str = FORMAT
    framework: str = "torch"  # torch | keras (weights in model.keras)
    torch_version: str = ""
    created: str = ""
    weights_bytes: int = 0
    weights_from_package: str = ""  # set when frozen weights come from an installed package, not the file
    run: dict = field(default_factory=dict)  # a run's progress: {"state": "complete"|"in_progress", "epoch": k}
    upload: dict | None = None  # bring-your-own models: file, format, layers, guessed names
    sections: dict = field(default_factory=dict)  # the task's own fields (e.g. a captioner's vocabulary)

    def to_dict(self) -> dict:
        """The card as JSON: the task's sections at the top level, beside the common fields."""
        d = dataclasses.asdict(self)
        return {**{k: v for k, v in d.items() if k != "sections"}, **d["sections"]}

    def section(self, name: str, default: Any = None) -> Any:
        """One of the task's own fields (its registered sections), e.g. a Multi-MNIST model's `generator`."""
        return self.sections.get(name, default)

    @property
    def num_outputs(self) -> int | None:
        """Class count a classifier's constructor was given (None when the spec does not say)."""
        n = self.model.kwargs.get("num_classes")
        return n if isinstance(n, int) else None


def card_from_dict(raw: Any, where: str) -> ModelCard:
    """Validate a parsed card.json (any schema version) and return it as a `ModelCard`.

    `where` names the file in every message. Raises `CheckpointError` naming the first bad field.
    """
    _check_depth(raw, where)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: not a CNN Studio model card (a JSON object is expected).")
    raw = migrate(dict(raw), where)
    for name in ("task", "model", "dataset"):
        if name not in raw:
            raise CheckpointError(f"{where}: field {name!r} is missing.")
    task = _typed(raw, "task", str, where)
    if task not in TASKS:
        raise CheckpointError(f"{where}: field 'task' is {task[:80]!r}; expected one of {', '.join(TASKS)}.")
    rules = TASKS[task]
    known = {f.name for f in dataclasses.fields(ModelCard)} - {"sections"}
    others = {name for r in TASKS.values() for name in r.sections}  # older cards wrote every task's, as null
    unknown = sorted(k for k in set(raw) - known - set(rules.sections) if not (k in others and raw[k] is None))
    if unknown:
        raise CheckpointError(f"{where}: unknown field {unknown[0][:80]!r} (a {task} card of schema {SCHEMA_VERSION} "
                              f"knows {', '.join(sorted(known | set(rules.sections)))}).")
    card = ModelCard(
        task=task, model=_model_spec(raw["model"], where), dataset=_dataset(raw["dataset"], where),
        metrics=_typed(raw, "metrics", dict, where, {}), training=_typed(raw, "training", dict, where, {}),
        params=_count(raw, "params", where), command=_typed(raw, "command", (str, type(None)), where, None),
        schema=SCHEMA_VERSION, format=_typed(raw, "format", str, where, FORMAT),
        framework=_typed(raw, "framework", str, where, "torch"),
        torch_version=_typed(raw, "torch_version", str, where, ""), created=_typed(raw, "created", str, where, ""),
        weights_bytes=_count(raw, "weights_bytes", where),
        weights_from_package=_typed(raw, "weights_from_package", str, where, ""),
        run=_typed(raw, "run", dict, where, {}), upload=_typed(raw, "upload", (dict, type(None)), where, None),
        sections={name: _section(raw, name, kind, where) for name, kind in rules.sections.items() if name in raw})
    if card.format != FORMAT:
        raise CheckpointError(f"{where}: field 'format' is {card.format[:80]!r}, expected {FORMAT!r}.")
    if card.framework not in ("torch", "keras"):
        raise CheckpointError(f"{where}: field 'framework' is {card.framework[:80]!r}; expected torch or keras.")
    _check_input(card, where)
    rules.check(card, where)
    card.headline = headline_of(card)
    return card


def _section(raw: dict, name: str, kind, where: str):
    """A task section's value, checked against its registered type ("strings": a list of strings)."""
    return _string_list(raw, name, where) if kind == "strings" else _typed(raw, name, (kind, type(None)), where, None)


def migrate(raw: dict, where: str) -> dict:
    """Bring an older card up to the current schema (field renames only; values are not changed)."""
    version = raw.pop("schema", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise CheckpointError(f"{where}: field 'schema' is {version!r}; this CNN Studio reads schema 1 to {SCHEMA_VERSION}.")
    if version == 1 and "backend" in raw and isinstance(raw.get("training"), dict):  # Keras runs' versions
        raw["training"] = {**raw["training"], "backend": raw.pop("backend")}
    if version == 1 and "source" in raw:  # bring-your-own models kept their provenance under "source"
        raw["upload"] = raw.pop("source")
    if version == 1 and isinstance(raw.get("dataset"), dict):
        known = {f.name for f in dataclasses.fields(DatasetInfo)}
        ds = dict(raw["dataset"])
        extra = {k: ds.pop(k) for k in list(ds) if k not in known}
        raw["dataset"] = {**ds, "extra": {**ds.get("extra", {}), **extra}} if extra else ds
    raw.pop("headline", None)  # always derived from the metrics, so the two cannot disagree
    for section in (raw, *raw.values()):  # commands (the card's, a table's) replay with today's CLI
        if isinstance(section, dict) and isinstance(section.get("command"), str):
            section["command"] = modern_command(section["command"])
    return raw


def modern_command(command: str) -> str:
    """A recorded command in today's `python -m core VERB` spelling (unchanged when it already is)."""
    for old, new in LEGACY_COMMANDS.items():
        if command.startswith(old) or command == old.rstrip():
            return new + command[len(old):]
    return command


def headline_of(card: ModelCard) -> Headline | None:
    """The task's one headline metric from the card's metrics (None while a run has not been tested)."""
    for path, label, higher in TASKS[card.task].headlines if card.task in TASKS else []:
        value: Any = card.metrics
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return Headline(name=".".join(path), value=float(value), label=label, higher_is_better=higher)
    return None


# --- field checks -------------------------------------------------------------------------------------------

def _check_depth(raw: Any, where: str) -> None:
    stack = [(raw, 1)]
    while stack:  # iterative: a hostile card must not exhaust the interpreter's recursion
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{where}: nested more than {MAX_DEPTH} levels deep; not a model card.")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _typed(raw: dict, name: str, kind, where: str, default: Any = dataclasses.MISSING) -> Any:
    if name not in raw:
        if default is dataclasses.MISSING:
            raise CheckpointError(f"{where}: field {name!r} is missing.")
        return default
    value = raw[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise CheckpointError(f"{where}: field {name!r} must be {wanted}, not {type(value).__name__}.")
    return value


def _count(raw: dict, name: str, where: str, lo: int = 0, hi: int = 10**13, default: Any = 0) -> int:
    value = _typed(raw, name, int, where, default)
    if not lo <= value <= hi:
        raise CheckpointError(f"{where}: field {name!r} is {value}; expected {lo} to {hi}.")
    return value


def _string_list(raw: dict, name: str, where: str) -> list[str] | None:
    value = _typed(raw, name, (list, type(None)), where, None)
    if value is not None and not all(isinstance(v, str) for v in value):
        raise CheckpointError(f"{where}: field {name!r} must be a list of strings.")
    return value


def _model_spec(raw: Any, where: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: field 'model' must be an object with 'name' and 'kwargs'.")
    name = _typed(raw, "name", str, f"{where}: model")
    kwargs = _typed(raw, "kwargs", dict, f"{where}: model")
    for key in ("in_channels", "image_size", "num_classes"):
        if key in kwargs:
            _count(kwargs, key, f"{where}: model.kwargs", 1, {"in_channels": MAX_CHANNELS, "image_size": MAX_IMAGE_SIZE,
                                                             "num_classes": MAX_CLASSES}[key])
    return ModelSpec(name=name, kwargs=kwargs)


def _dataset(raw: Any, where: str) -> DatasetInfo:
    if not isinstance(raw, dict):
        raise CheckpointError(f"{where}: field 'dataset' must be an object.")
    at = f"{where}: dataset"
    unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(DatasetInfo)})
    if unknown:
        raise CheckpointError(f"{at}: unknown field {unknown[0]!r}.")
    channels = _count(raw, "channels", at, 1, MAX_CHANNELS, default=dataclasses.MISSING)
    size = _count(raw, "image_size", at, 1, MAX_IMAGE_SIZE, default=dataclasses.MISSING)
    stats = {}
    for key in ("mean", "std"):
        values = _typed(raw, key, list, at)
        if len(values) != channels or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              and math.isfinite(v) for v in values):
            raise CheckpointError(f"{at}: field {key!r} must be {channels} finite number(s), one per channel; got {values!r:.80}.")
        if key == "std" and min(values) <= 0:
            raise CheckpointError(f"{at}: field 'std' must be positive; got {values!r:.80}.")
        if key == "std" and not all(MIN_STD <= v <= MAX_STAT for v in values):
            raise CheckpointError(f"{at}: field 'std' must be from {MIN_STD:g} to {MAX_STAT:g} (pixels are scaled to "
                                  f"[0, 1] first); got {values!r:.80}.")
        if key == "mean" and not all(abs(v) <= MAX_STAT for v in values):
            raise CheckpointError(f"{at}: field 'mean' must be from -{MAX_STAT:g} to {MAX_STAT:g} (pixels are scaled "
                                  f"to [0, 1] first); got {values!r:.80}.")
        stats[key] = [float(v) for v in values]
    names = _typed(raw, "class_names", list, at, [])
    if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names) or len(names) > MAX_CLASSES:
        raise CheckpointError(f"{at}: field 'class_names' must be a list of at most {MAX_CLASSES:,} names.")
    return DatasetInfo(
        name=_typed(raw, "name", str, at), channels=channels, image_size=size, mean=stats["mean"], std=stats["std"],
        class_names=[str(n) for n in names], train_size=_count(raw, "train_size", at),
        test_size=_count(raw, "test_size", at), hflip=_typed(raw, "hflip", bool, at, False),
        source=_typed(raw, "source", str, at, ""), sources=_string_list(raw, "sources", at) or [],
        normalisation=_typed(raw, "normalisation", str, at, ""), extra=_typed(raw, "extra", dict, at, {}))


def _check_input(card: ModelCard, where: str) -> None:
    """The model was built for the input the card's data set describes (a model that resizes its input excepted)."""
    from core.models.registry import resizes_input

    kwargs, ds = card.model.kwargs, card.dataset
    for key, value in (("in_channels", ds.channels), ("image_size", ds.image_size)):
        if key in kwargs and kwargs[key] != value and not (key == "image_size" and resizes_input(card.model.name)):
            raise CheckpointError(f"{where}: dataset.{'channels' if key == 'in_channels' else key} is {value} but the "
                                  f"model was built for {key}={kwargs[key]}.")
