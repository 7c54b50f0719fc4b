"""Model kinds: the `Recipe` base class every kind's settings derive from, and the one registry of kinds.

A kind (the classifier, the autoencoder, the pair CNN, the CRNN, the captioner, and whatever comes next) is
one package under `core/` holding one recipe class: a dataclass of settings (a comment on every default)
derived from `Recipe` and registered with `@register_recipe`. The class carries everything the rest of CNN
Studio asks about its kind, so the CLI (`core.cli`), the model card (`core.engine.checkpoint.card`), the
settings check, the Trainer's form and live chart, the run service (`core.runs`), sweeps and `evaluate`
loop over `RECIPES` and name no kind:

- the CLI verb that trains it and its flags (generated from its fields, `core.engine.flags`), named
  recipes for `--recipe NAME`, and the Trainer's presets;
- its task, the headline metric of that task and how to measure a checkpoint of it;
- the extra sections of its model card and their validation;
- the limits and choices of its settings (`core.engine.settings`);
- its Trainer form (`core.engine.form`) and the metric its live chart follows;
- how it trains (`prepare`, and `execute` for kinds that train several models in one run, like k-fold).

Also owns a recipe's JSON form (a run folder's spec.json) and the kinds' Trainer presets
(`register_presets`). Does not own training (`core.engine.run`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable

import numpy as np
from torch import nn

from core.engine.checkpoint import ModelCard, register_task
from core.engine.config import TrainConfig
from core.engine.events import Event, RunControl, Task
from core.engine.settings import with_settings
from core.errors import SettingsError

RECIPES: dict[str, type["Recipe"]] = {}  # kind -> recipe class, in registration order
PRESETS: dict[str, dict] = {}  # kind -> the Trainer's recipes of that kind (see register_presets)


@dataclass
class Prepared:
    model: nn.Module
    task: Task
    train: Iterable
    val: Iterable | None
    config: TrainConfig
    card: ModelCard  # task, data set and task sections filled in; run() adds training, metrics, command
    evaluate: Callable[[nn.Module], dict]  # test metrics of the trained model, in eval mode
    monitor: Callable[[nn.Module], tuple[dict, np.ndarray | None, str]] | None = None  # (metrics, RGB picture, caption)


@dataclass
class Outcome:
    """What a run of a recipe left: its model card (None when it trained no single model), the fields its run
    folder's status.json adds (k-fold's table, for one), and one line for the console."""
    card: ModelCard | None
    status: dict = dataclasses.field(default_factory=dict)
    line: str = ""


class Recipe:
    """Base class of every kind's settings dataclass; the class attributes are what the rest of CNN Studio reads."""
    kind: ClassVar[str]  # registry key, e.g. "autoencoder"
    verb: ClassVar[str]  # the CLI verb that trains it, e.g. "train-autoencoder"
    task: ClassVar[str]  # what its checkpoints do (the card's task), e.g. "reconstruction"
    title: ClassVar[str]  # the kind in words: the Trainer's kind choice, the CLI's help
    pages: ClassVar[str] = "the other pages"  # where its trained models are offered
    opens: ClassVar[tuple] = ()  # (page script, its model chooser's key, button words) for a finished run
    headlines: ClassVar[list] = []  # [(metrics key path, words, higher is better)]: the first present is the headline
    sections: ClassVar[dict] = {}  # extra top-level card fields: name -> JSON type (checked when a card is read)
    live: ClassVar[tuple] = ("accuracy", "accuracy", True)  # (metric the live chart follows, its title, a proportion?)
    sweep_metric: ClassVar[str | None] = None  # validation metric a sweep maximises; None: the kind is not swept
    limits: ClassVar[dict] = {}  # setting -> allowed range (see core.engine.settings)
    choices: ClassVar[dict] = {}  # setting -> allowed values (a callable is asked when needed)
    flags: ClassVar[dict] = {}  # setting path -> its flag when not --setting-name
    hidden: ClassVar[tuple] = ("data_dir",)  # settings the form does not offer; paths in `no_flag` get no flag
    no_flag: ClassVar[tuple] = ()
    always: ClassVar[tuple] = ()  # settings a recorded command always names (what the run is), default or not
    legacy: ClassVar[dict] = {}  # how an older CLI spelled the command that trains it -> today's spelling

    # --- training ---------------------------------------------------------------------------------------

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        raise NotImplementedError

    def train_config(self) -> TrainConfig:
        """The engine settings this recipe trains with (the one place a recipe's learning rate is read)."""
        raise NotImplementedError

    @property
    def seed(self) -> int:
        return self.train_config().seed

    def execute(self, emit: Callable[[Event], None], control: RunControl, out=None, *, resume: bool = False,
                command: str | None = None) -> Outcome:
        """Train (through `core.engine.run.run`, the one way into the engine); kinds that train several models in
        one run (the classifier's k-fold) override this."""
        from core.engine.run import run

        card = run(self, emit, control, out, resume=resume, command=command)
        return Outcome(card, line=f"{card.headline.describe() if card.headline else 'no headline'} -> {out}")

    def command(self, out) -> str:
        """The command line that rebuilds this recipe (recorded in its model card)."""
        from core.engine.flags import recipe_command

        return recipe_command(self, out)

    # --- what the CLI, the pages and sweeps ask ---------------------------------------------------------

    @classmethod
    def named(cls) -> dict[str, "Recipe"]:
        """Recipes a user names with `--recipe NAME` (flags still override)."""
        return {}

    @classmethod
    def evaluate_checkpoint(cls, model: nn.Module, card: ModelCard, data_dir: str | None, n: int = 0,
                            tta: bool = False) -> tuple[dict, bool]:
        """(test metrics, whether they were measured here) of a checkpoint of this kind."""
        raise NotImplementedError

    @classmethod
    def calibrate_checkpoint(cls, folder: str, model: nn.Module, card: ModelCard, data_dir: str | None) -> dict:
        """Fit what makes this kind's confidence mean something on held-out training data (never the test set),
        write it to the card, and return {what was measured: value} for the command line to print."""
        from core.errors import SettingsError

        raise SettingsError(f"{folder}: a {card.task} model has no confidence to calibrate.")

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        """Rules a card of this kind must meet beyond the common ones; CheckpointError naming the field."""

    def form_fields(self, context: dict) -> list:
        """The Trainer's form for this recipe (one field per setting unless a kind says otherwise)."""
        from core.engine.form import recipe_fields

        return recipe_fields(self, self.hidden)

    def apply_form(self, values: dict, steps_per_epoch: int = 0) -> "Recipe":
        """The recipe the form's values (by field key) describe."""
        return with_settings(self, values)

    def for_sweep(self) -> "Recipe":
        """This recipe as a sweep trains it (e.g. with validation data held out to score trials on)."""
        return self

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """The recipe a spec.json describes; nested settings and tuples rebuilt; unknown settings refused."""
        defaults = cls()
        known = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise SettingsError(f"a {cls.kind} recipe has no setting {unknown[0]!r}.")
        kwargs = {}
        for name, value in d.items():
            proto = known[name]
            if dataclasses.is_dataclass(proto) and isinstance(value, dict):
                value = type(proto)(**value)
            elif isinstance(proto, tuple) and isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: make `cls` a kind (see the module docstring); its task's card rules go with it."""
    RECIPES[cls.kind] = cls
    register_task(cls.task, headlines=cls.headlines, sections=cls.sections, check=cls.check_card,
                  legacy=cls.legacy)
    return cls


def kind_of_task(task: str) -> type[Recipe]:
    """The recipe class whose checkpoints do `task`."""
    for cls in RECIPES.values():
        if cls.task == task:
            return cls
    raise SettingsError(f"no model kind makes {task!r} checkpoints; known: "
                        + ", ".join(cls.task for cls in RECIPES.values()))


def recipe_to_dict(recipe: Recipe) -> dict:
    """JSON-ready form of a recipe (its kind and settings), as stored in a run folder's spec.json."""
    return {"kind": recipe.kind, **dataclasses.asdict(recipe)}


def recipe_from_dict(d: dict) -> Recipe:
    """The recipe a `recipe_to_dict` dict describes (a dict without a kind is a classifier, as before)."""
    d = dict(d)
    kind = d.pop("kind", "classifier")
    if kind not in RECIPES:
        raise SettingsError(f"unknown recipe kind {kind!r}; known: {', '.join(RECIPES)}")
    return RECIPES[kind].from_dict(d)


def register_presets(kind: str, presets: dict[str, Any]) -> None:
    """The Trainer's recipes of `kind`: name -> recipe, or a list of recipes trained one after the other (a group)."""
    PRESETS.setdefault(kind, {}).update(presets)


def all_presets() -> dict[str, dict[str, Any]]:
    """Every kind's Trainer presets: {kind title: {preset name: recipe or list of recipes}}, kinds in registration
    order."""
    return {cls.title: PRESETS[kind] for kind, cls in RECIPES.items() if PRESETS.get(kind)}
