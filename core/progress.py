"""Progress on the console for every command that trains or measures: one tqdm bar fed by engine events.

Owns turning the engine's event stream into a progress bar with epoch lines (loss and the metrics of any
task), Ctrl-C into a cooperative stop (the step finishes, the run ends and is saved), and the one way a
feature's command line trains a recipe (`add_train_verb`, `train_from_args`), so none of the
`python -m core train...` verbs is silent for more than a few seconds or parses its flags differently.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable

from core.data import DataError
from core.engine import Event, RunControl, distributed
from core.engine.checkpoint import CheckpointError
from core.engine.recipe import add_recipe_flags, lr_flags, recipe_from_args, run


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))


def lr_change(text: str) -> tuple[int, float]:
    """`STEP:LR` (an --lr-at value) as (steps, learning rate)."""
    step, _, lr = text.partition(":")
    try:
        change = int(step), float(lr)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEP:LR such as 120:0.001, got {text!r}") from None
    if change[0] < 0 or not 0 < change[1] < float("inf"):
        raise argparse.ArgumentTypeError(f"STEP must be >= 0 and LR a positive number, got {text!r}")
    return change


def add_lr_at(parser) -> None:
    parser.add_argument("--lr-at", type=lr_change, action="append", default=[], metavar="STEP:LR",
                        help="after STEP optimizer steps, continue at the constant learning rate LR (the schedule "
                             "stops); repeatable. Model cards record a rate changed by hand this way.")


def console_run(desc: str = "training", lr_at=()) -> tuple[Callable[[Event], None], RunControl, Callable[[], None]]:
    """(event callback, control stopped by Ctrl-C and making the `lr_at` changes, close) for one run on the console."""
    from tqdm import tqdm

    control = RunControl(lr_at)
    signal.signal(signal.SIGINT, lambda *_: control.stop())  # finish the step, then save what we have
    if not distributed.is_main():  # under torchrun only rank 0 reports
        return (lambda event: None), control, (lambda: None)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, desc=desc)

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
            val = f"; validation {_fmt(event.val)}" if event.val else ""
            bar.write(f"epoch {event.epoch}: train {_fmt(event.train)}{val} ({event.seconds:.1f} s)")
        elif event.kind == "monitor" and event.metrics:
            bar.write(f"epoch {event.epoch}: {_fmt(event.metrics)}")
        elif event.kind == "fold":
            bar.write(f"fold {event.fold}/{event.folds}: held-out accuracy {event.accuracy:.4%}")
        elif event.kind == "warning":
            bar.write(f"warning: {event.message}")
        elif event.kind == "end":
            bar.write(event.message)

    return on_event, control, bar.close


def counted(items, desc: str, unit: str = "item"):
    """`items` with a progress bar (for evaluations that take more than a few seconds)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, dynamic_ncols=True, leave=False)


def add_train_verb(sub, name: str, cls: type, text: str):
    """A `name` subcommand that trains recipe class `cls`: one flag per setting, --out and --resume."""
    parser = sub.add_parser(name, help=text)
    add_recipe_flags(parser, cls)
    add_lr_at(parser)
    parser.add_argument("--out", required=True, help="checkpoint folder to write (a complete one after every epoch)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    return parser


def train_from_args(cls: type, args, desc: str):
    """Train the recipe the parsed flags describe, with a progress bar; prints and returns its card."""
    on_event, control, close = console_run(desc, args.lr_at)
    recipe = recipe_from_args(cls, args)
    try:
        card = run(recipe, on_event, control, out=args.out, resume=args.resume,
                   command=recipe.command(args.out) + lr_flags(args.lr_at))
    finally:
        close()
    print(f"{card.headline.describe() if card.headline else 'no headline'} -> {args.out}")
    return card


def run_cli(parser, dispatch: Callable, argv: list[str] | None) -> int:
    """Parse `argv`, call `dispatch(args)`; what the user got wrong (data, card, value, file) is one line on
    stderr and exit status 2, never a traceback."""
    args = parser.parse_args(argv)
    try:
        dispatch(args)
    except (DataError, CheckpointError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
