"""The composer's two kinds (the two-digit multi-task CNN and the CTC string reader) and the lambda table.

    python -m core train-pair --epochs 5 --lambda 10 --out checkpoints/mnist_pair_cnn
    python -m core train-crnn --epochs 6 --n-train 40000 --out checkpoints/mnist_crnn
    python -m core sweep-lambda --lambdas 0,0.1,1,10,100 --epochs 1 --n-train 20000 --into checkpoints/mnist_pair_cnn

Each epoch composes a fresh training set from MNIST's first 55,000 train digits and validates on images
composed from the last 5,000; the test metrics come from fresh compositions of the test digits. Their cards
carry the `generator` that composed them (and the pair CNN's the `lambda_sweep` table of the `sweep-lambda`
verb).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar

from core.composer.multidigit import TRAIN_DIGITS, familiarity_range, pair_maker, string_maker, test_metrics
from core.composer.tasks import CTCTask, PairTask
from core.data import load_dataset
from core.engine import ComposedLoader, Event, RunControl, TensorLoader, TrainConfig
from core.engine.checkpoint import CheckpointError, DatasetInfo, ModelCard, invoking_command, spec_of, update_card
from core.engine.flags import add_recipe_flags, recipe_from_args
from core.engine.recipe import Prepared, Recipe, register_presets, register_recipe
from core.engine.run import run
from core.engine.settings import WIDTHS, Signed, check_memory
from core.engine.verbs import register_verb
from core.errors import SettingsError
from core.models import build_model, count_parameters
from core.models.registry import TRAINING_BUDGET, training_bytes


def _prepare(recipe, task_name: str, model_name: str, generator: dict, task, maker, model_options: dict) -> Prepared:
    """What the two composer recipes share: MNIST digits composed afresh every epoch, AdamW one-cycle."""
    ds = load_dataset("mnist", recipe.data_dir or None)
    model = build_model(model_name, in_channels=1, image_size=28, width=generator["width"], seed=recipe.seed,
                        **{k: v for k, v in model_options.items() if v})
    train = ComposedLoader(maker(ds.train_x[:TRAIN_DIGITS], ds.train_y[:TRAIN_DIGITS], generator), recipe.n_train,
                           recipe.batch_size, recipe.seed)
    val = maker(ds.train_x[TRAIN_DIGITS:], ds.train_y[TRAIN_DIGITS:], generator)(
        min(5000, max(recipe.n_train // 10, 500)), recipe.seed + 1)
    config = recipe.train_config()
    card = ModelCard(task=task_name, model=spec_of(model), dataset=DatasetInfo(**{**ds.describe(), "name": "mnist"}),
                     sections={"generator": generator}, params=count_parameters(model))
    card.training = {"n_train": recipe.n_train, **({"lambda": recipe.x_weight} if hasattr(recipe, "x_weight") else {})}

    def evaluate(m) -> dict:
        card.sections["familiarity"] = familiarity_section(m, card, ds)
        return test_metrics(m, card, ds, recipe.eval_n)
    return Prepared(model, task(ds), train, TensorLoader(*val, batch_size=500, shuffle=False), config, card, evaluate)


def familiarity_section(model, card: ModelCard, ds) -> dict:
    """The card's "does not look like what it was trained on" range: the familiarity of 95 % of the images composed
    from held-out training digits (never the test digits)."""
    digits, labels = ds.train_x[TRAIN_DIGITS:], ds.train_y[TRAIN_DIGITS:]
    low, high = familiarity_range(model, card, digits, labels)
    return {"score": "energy", "tpr": 0.95, "low": round(low, 4), "high": round(high, 4),
            "on": f"2,000 images composed from the {len(labels):,} held-out training digits"}


class _Composed(Recipe):
    """What the two composer kinds share: MNIST digits composed afresh every epoch, AdamW with one-cycle steps,
    validation accuracy chooses the kept epoch; cards carry the generator that composes their test images."""
    sections: ClassVar[dict] = {"generator": dict, "familiarity": dict}
    limits: ClassVar[dict] = {**TrainConfig.limits, "n_train": (1, 10_000_000), "eval_n": (1, 1_000_000),
                              "width": (28, 4096), "max_overlap": (0, 28), "max_len": (1, 64), "noise": (0, 10),
                              "hidden": (0, 4096), "x_weight": (0, 1e6), "channels": WIDTHS, "gap": Signed(1000)}
    choices: ClassVar[dict] = {"dataset": ("mnist",)}
    hidden: ClassVar[tuple] = ("model", "dataset", "data_dir")
    grad_clip: ClassVar[float] = 0.0

    def check(self) -> None:
        """The memory of one epoch's composed images and of the model, before any work."""
        composed = (self.n_train + self.eval_n) * 28 * self.width * 5  # uint8 pixels, a float copy per batch: a bound
        check_memory(composed, f"composing {self.n_train:,} training images of 28x{self.width} each epoch",
                     TRAINING_BUDGET, "Compose fewer images per epoch (n_train).")
        options = {k: v for k, v in (("channels", self.channels), ("hidden", self.hidden)) if v}
        check_memory(training_bytes(self.model, in_channels=1, image_size=28, width=self.width,
                                    batch_size=self.batch_size, **options),
                     f"{self.model} with these widths and batches of {self.batch_size}", TRAINING_BUDGET,
                     "Use a smaller batch or narrower layers.")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamw",
                           weight_decay=1e-4, schedule="onecycle", seed=self.seed, monitor="val_accuracy",
                           keep_best=True, grad_clip=self.grad_clip)

    @classmethod
    def evaluate_checkpoint(cls, model, card, data_dir, n=0, tta=False) -> tuple[dict, bool]:
        if tta:
            raise SettingsError(f"--tta is for classifiers of photos; {card.task} models compose their own tests.")
        return test_metrics(model, card, load_dataset("mnist", data_dir), n or 10_000), True

    @classmethod
    def calibrate_checkpoint(cls, folder, model, card, data_dir) -> dict:
        section = familiarity_section(model, card, load_dataset("mnist", data_dir))
        update_card(folder, familiarity={**section, "command": f"python -m core calibrate {folder}"})
        return {"familiarity low": section["low"], "familiarity high": section["high"]}

    @classmethod
    def check_card(cls, card: ModelCard, where: str) -> None:
        generator = card.section("generator")
        if not isinstance(generator, dict):
            raise CheckpointError(f"{where}: field 'generator' (how test images are composed) is missing.")
        width = generator.get("width")
        if isinstance(width, bool) or not isinstance(width, int) or not card.dataset.image_size <= width <= 4096:
            raise CheckpointError(f"{where}: generator.width must be a whole number of pixels from "
                                  f"{card.dataset.image_size} to 4096; got {width!r}.")


@register_recipe
@dataclass
class PairRecipe(_Composed):
    kind: ClassVar[str] = "pair"
    verb: ClassVar[str] = "train-pair"
    task: ClassVar[str] = "multi_digit"
    title: ClassVar[str] = "Two digits: multi-task CNN"
    pages: ClassVar[str] = "Multi-MNIST composer"
    opens: ClassVar[tuple] = (("pages/composer.py", "composer_model", "Try it in the composer"),)
    headlines: ClassVar[list] = [(("test_both_digits_accuracy",), "both digits right", True)]
    sections: ClassVar[dict] = {"generator": dict, "familiarity": dict, "lambda_sweep": dict}  # + what lambda does (sweep-lambda)
    live: ClassVar[tuple] = ("accuracy", "both digits right", True)
    flags: ClassVar[dict] = {"x_weight": "--lambda"}
    legacy: ClassVar[dict] = {"python -m core.multidigit train-pair ": "python -m core train-pair ",
                              "python -m core.multidigit sweep ": "python -m core sweep-lambda "}
    model: str = "pair_cnn"  # the registry model (two heads: both digits and both x-centres)
    dataset: str = "mnist"  # digits are composed from MNIST
    epochs: int = 6  # passes, each over a freshly composed set
    x_weight: float = 10.0  # lambda: loss = CE(digits) + lambda x MSE(x-centres / 28)
    n_train: int = 60_000  # images composed per epoch
    width: int = 64  # canvas width in pixels (height 28)
    max_overlap: int = 8  # the two tiles overlap by up to this many pixels
    noise: float = 0.0  # Gaussian pixel noise added to the canvas
    lr: float = 2e-3  # peak learning rate (AdamW, one-cycle)
    batch_size: int = 128  # images per step
    channels: tuple = ()  # conv widths of the backbone; () = the model's default (32, 64, 128)
    hidden: int = 0  # units of each head's hidden layer; 0 = the model's default (256)
    eval_n: int = 10_000  # fresh test compositions for the card's metrics
    seed: int = 0  # weights, compositions, batch order
    data_dir: str = ""  # "" = $CNN_STUDIO_DATA or the user cache

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        generator = {"width": self.width, "max_overlap": self.max_overlap, "noise": self.noise}
        return _prepare(self, self.task, "pair_cnn", generator,
                        lambda ds: PairTask(ds.mean, ds.std, x_weight=self.x_weight), pair_maker,
                        {"channels": self.channels, "hidden": self.hidden})


@register_recipe
@dataclass
class CRNNRecipe(_Composed):
    kind: ClassVar[str] = "crnn"
    verb: ClassVar[str] = "train-crnn"
    task: ClassVar[str] = "digit_string"
    title: ClassVar[str] = "Digit strings: CRNN + CTC"
    pages: ClassVar[str] = "Digit-string reader"
    opens: ClassVar[tuple] = (("pages/strings.py", "strings_model", "Let it read digit strings"),)
    headlines: ClassVar[list] = [(("test_exact_match_4_5",), "exact match, 4-5 digit strings", True)]
    live: ClassVar[tuple] = ("accuracy", "exact match (greedy)", True)
    grad_clip: ClassVar[float] = 5.0
    legacy: ClassVar[dict] = {"python -m core.multidigit train-crnn ": "python -m core train-crnn "}
    model: str = "crnn"  # conv features -> bidirectional GRU over columns -> CTC
    dataset: str = "mnist"  # digits are composed from MNIST
    epochs: int = 8  # passes, each over a freshly composed set
    n_train: int = 50_000  # strings composed per epoch
    width: int = 192  # canvas width in pixels (24 columns of 8 px)
    max_len: int = 6  # strings of 1 to this many digits
    gap: tuple = (-6, 4)  # pixels between tiles, drawn from this range (negative: overlapping)
    noise: float = 0.0  # Gaussian pixel noise added to the canvas
    lr: float = 2e-3  # peak learning rate (AdamW, one-cycle)
    batch_size: int = 128  # strings per step
    channels: tuple = ()  # conv widths; () = the model's default (32, 48, 96, 128)
    hidden: int = 0  # GRU units; 0 = the model's default (128)
    eval_n: int = 10_000  # fresh test strings for the card's metrics
    seed: int = 0  # weights, compositions, batch order
    data_dir: str = ""  # "" = $CNN_STUDIO_DATA or the user cache

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        generator = {"width": self.width, "max_len": self.max_len, "gap": list(self.gap), "noise": self.noise}
        return _prepare(self, self.task, "crnn", generator, lambda ds: CTCTask(ds.mean, ds.std), string_maker,
                        {"channels": self.channels, "hidden": self.hidden})


register_presets(PairRecipe.kind, {  # the shipped checkpoint's settings, and a quick one on small data
    "Two digits and their positions: multi-task CNN (Multi-MNIST)": PairRecipe(epochs=5),
    "Quick two-digit CNN (4,000 pairs)": PairRecipe(epochs=3, n_train=4000, channels=(16, 32, 64), hidden=64,
                                                    eval_n=1000)})
register_presets(CRNNRecipe.kind, {"Digit strings: CRNN + CTC (Multi-MNIST)": CRNNRecipe(epochs=6, n_train=40_000)})


def sweep(lambdas: list[float], recipe: PairRecipe, into: str | None = None, log=print) -> list[dict]:
    """One pair CNN per lambda (same data, seed and budget): accuracy against position error."""
    rows = []
    for lam in lambdas:
        card = run(dataclasses.replace(recipe, x_weight=lam))
        m = card.metrics
        rows.append({"lambda": lam, "both_digits_accuracy": round(m["test_both_digits_accuracy"], 4),
                     "x_mae_px": round(m["test_x_mae_px"], 3), "train_seconds": card.training["train_seconds"]})
        log(f"lambda {lam:<8g} both digits {m['test_both_digits_accuracy']:.4f}  x MAE {m['test_x_mae_px']:.3f} px")
    if into:
        update_card(into, lambda_sweep={"rows": rows, "epochs": recipe.epochs, "n_train": recipe.n_train,
                                        "command": invoking_command("core.composer.recipes")})
    return rows


def _sweep_arguments(parser) -> None:
    add_recipe_flags(parser, PairRecipe)
    parser.set_defaults(**{"epochs": 2, "n_train": 20_000, "eval_n": 5000})
    parser.add_argument("--lambdas", default="0,0.1,1,10,100")
    parser.add_argument("--into", help="a pair checkpoint whose card gets the table")


@register_verb("sweep-lambda", "one short pair-CNN run per lambda: accuracy against x-centre error", _sweep_arguments)
def sweep_verb(args) -> None:
    try:
        lambdas = [float(v) for v in args.lambdas.split(",")]
    except ValueError:
        raise SettingsError(f"--lambdas expects numbers separated by commas, e.g. 0,1,10; got {args.lambdas!r}") from None
    sweep(lambdas, recipe_from_args(PairRecipe, args), args.into)
