"""The composer's two recipes (the two-digit multi-task CNN and the CTC string reader), the lambda table,
and their command line.

    python -m core train-pair --epochs 5 --lambda 10 --out checkpoints/mnist_pair_cnn
    python -m core train-crnn --epochs 6 --n-train 40000 --out checkpoints/mnist_crnn
    python -m core sweep-lambda --lambdas 0,0.1,1,10,100 --epochs 1 --n-train 20000 --into checkpoints/mnist_pair_cnn

Each epoch composes a fresh training set from MNIST's first 55,000 train digits and validates on images
composed from the last 5,000; the test metrics come from fresh compositions of the test digits.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, ClassVar

from core.composer.multidigit import TRAIN_DIGITS, pair_maker, string_maker, test_metrics
from core.composer.tasks import CTCTask, PairTask
from core.data import load_dataset
from core.engine import ComposedLoader, Event, RunControl, TensorLoader, TrainConfig
from core.engine.checkpoint import DatasetInfo, ModelCard, invoking_command, spec_of, update_card
from core.engine.recipe import Prepared, add_recipe_flags, recipe_command, recipe_from_args, register_recipe, run
from core.models import build_model, count_parameters
from core.progress import add_train_verb, run_cli, train_from_args


def _prepare(recipe, task_name: str, model_name: str, generator: dict, task, maker, model_options: dict,
             grad_clip: float) -> Prepared:
    """What the two composer recipes share: MNIST digits composed afresh every epoch, AdamW one-cycle."""
    ds = load_dataset("mnist", recipe.data_dir or None)
    model = build_model(model_name, in_channels=1, image_size=28, width=generator["width"], seed=recipe.seed,
                        **{k: v for k, v in model_options.items() if v})
    train = ComposedLoader(maker(ds.train_x[:TRAIN_DIGITS], ds.train_y[:TRAIN_DIGITS], generator), recipe.n_train,
                           recipe.batch_size, recipe.seed)
    val = maker(ds.train_x[TRAIN_DIGITS:], ds.train_y[TRAIN_DIGITS:], generator)(
        min(5000, max(recipe.n_train // 10, 500)), recipe.seed + 1)
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, optimizer="adamw",
                         weight_decay=1e-4, schedule="onecycle", seed=recipe.seed, monitor="val_accuracy",
                         keep_best=True, grad_clip=grad_clip)
    card = ModelCard(task=task_name, model=spec_of(model), dataset=DatasetInfo(**{**ds.describe(), "name": "mnist"}),
                     generator=generator, params=count_parameters(model))
    card.training = {"n_train": recipe.n_train, **({"lambda": recipe.x_weight} if hasattr(recipe, "x_weight") else {})}
    return Prepared(model, task(ds), train, TensorLoader(*val, batch_size=500, shuffle=False), config, card,
                    lambda m: test_metrics(m, card, ds, recipe.eval_n))


@register_recipe
@dataclass
class PairRecipe:
    kind: ClassVar[str] = "pair"
    live: ClassVar[tuple] = ("accuracy", "both digits right", True)
    flags: ClassVar[dict] = {"x_weight": "--lambda"}
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

    def command(self, out) -> str:
        return recipe_command(self, "train-pair", out)

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        generator = {"width": self.width, "max_overlap": self.max_overlap, "noise": self.noise}
        return _prepare(self, "multi_digit", "pair_cnn", generator, lambda ds: PairTask(ds.mean, ds.std, x_weight=self.x_weight),
                        pair_maker, {"channels": self.channels, "hidden": self.hidden}, 0.0)


@register_recipe
@dataclass
class CRNNRecipe:
    kind: ClassVar[str] = "crnn"
    live: ClassVar[tuple] = ("accuracy", "exact match (greedy)", True)
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

    def command(self, out) -> str:
        return recipe_command(self, "train-crnn", out)

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        generator = {"width": self.width, "max_len": self.max_len, "gap": list(self.gap), "noise": self.noise}
        return _prepare(self, "digit_string", "crnn", generator, lambda ds: CTCTask(ds.mean, ds.std), string_maker,
                        {"channels": self.channels, "hidden": self.hidden}, 5.0)


def sweep(lambdas: list[float], recipe: PairRecipe, into: str | None = None, log=print) -> list[dict]:
    """One pair CNN per lambda (same data, seed and budget): accuracy against position error."""
    import dataclasses

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="The composer's models.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_verb(sub, "train-pair", PairRecipe, "train the multi-task CNN on composed digit pairs")
    add_train_verb(sub, "train-crnn", CRNNRecipe, "train the CRNN with CTC on composed digit strings")
    sw = sub.add_parser("sweep", help="one short pair-CNN run per lambda: accuracy against x error")
    add_recipe_flags(sw, PairRecipe)
    sw.set_defaults(epochs=2, n_train=20_000, eval_n=5000)
    sw.add_argument("--lambdas", default="0,0.1,1,10,100")
    sw.add_argument("--into", help="a pair checkpoint whose card gets the table")
    return parser


def _dispatch(args) -> None:
    if args.command == "sweep":
        sweep([float(v) for v in args.lambdas.split(",")], recipe_from_args(PairRecipe, args), args.into)
    else:
        train_from_args(PairRecipe if args.command == "train-pair" else CRNNRecipe, args, args.command)


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), _dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
