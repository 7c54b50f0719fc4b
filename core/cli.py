"""The one command line: `python -m core VERB ...` (`python -m core --help` lists the verbs), and `cnn-studio`.

    python -m core train --dataset digits --epochs 3 --out runs/demo        # a classifier (any recipe)
    python -m core train --dataset digits --epochs 3 --out runs/demo --resume   # go on after a crash
    python -m core train-autoencoder | train-pair | train-crnn | train-captioner ...
    python -m core evaluate CKPT [--json] [--n N] [--tta]                    # any checkpoint kind
    python -m core evaluate CKPT CKPT ... --ensemble [--tta]                 # classifiers, probabilities averaged
    python -m core card CKPT [--migrate]                                     # show / rewrite a model card
    cnn-studio app [--port N]                                                # the app (a Streamlit server)

Owns the verb table, built from the registries: one train verb per model kind (`core.engine.recipe.RECIPES`,
flags from the recipe's fields), the verbs the kinds register (`core.engine.verbs.VERBS`), and `evaluate`,
`calibrate`, `card`, `samples` and `app`, none of which names a kind. One error policy for every verb: a
`core.errors.ProjectError` (a file, value, data set or checkpoint the user gave) prints `error: ...` and exits
2; anything else is a bug in CNN Studio and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

APP_FLAGS = ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]  # quiet when idle


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every verb a subcommand with its own flags."""
    import core.kinds  # noqa: F401  (registers every kind and verb)
    from core.engine.flags import add_train_flags
    from core.engine.recipe import RECIPES
    from core.engine.verbs import VERBS

    parser = argparse.ArgumentParser(prog="python -m core", description="CNN Studio's command line.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for cls in RECIPES.values():
        about = (sys.modules[cls.__module__].__doc__ or "").split("\n\n")[0]
        add_train_flags(sub.add_parser(cls.verb, help=f"train: {cls.title} (a checkpoint with its model card)",
                                       description=about), cls)
    for verb in VERBS.values():
        verb.arguments(sub.add_parser(verb.name, help=verb.help.replace("%", "%%"), description=verb.help))  # '95 %'
    _evaluate_arguments(sub.add_parser("evaluate", help="measure checkpoints of any kind on their test data"))
    cb = sub.add_parser("calibrate", help="fit a checkpoint's confidence on held-out training data (never the test "
                        "set): a classifier's temperature and out-of-distribution threshold, a composer model's "
                        "threshold of familiar images; recorded in its card")
    cb.add_argument("checkpoints", nargs="+")
    cb.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    sm = sub.add_parser("samples", help="write the small sample sets the pages open on (checkpoints/samples)")
    sm.add_argument("names", nargs="*", help="data sets (default: every one the pages use)")
    sm.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    cd = sub.add_parser("card", help="print a checkpoint's validated model card (JSON)")
    cd.add_argument("checkpoint")
    cd.add_argument("--migrate", action="store_true", help="rewrite card.json in the current schema (weights untouched)")
    _app_arguments(sub.add_parser("app", help="start the app: a Streamlit server on http://localhost:PORT"))
    return parser


def _evaluate_arguments(ev: argparse.ArgumentParser) -> None:
    ev.add_argument("checkpoints", nargs="+")
    ev.add_argument("--json", action="store_true", help="print one JSON object per checkpoint (a list if several)")
    ev.add_argument("--n", type=int, default=0, help="composed test images for Multi-MNIST / caption models")
    ev.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    ev.add_argument("--tta", action="store_true", help="classifiers of photos: average each test image's outputs "
                    "with its mirror image's (test-time augmentation)")
    ev.add_argument("--ensemble", action="store_true", help="average the probabilities of the classifiers given "
                    "(same data set) and report the ensemble next to each member")


def _app_arguments(app: argparse.ArgumentParser) -> None:
    app.add_argument("--port", type=int, default=8501, help="the port to serve on (default 8501)")
    app.add_argument("--address", default="localhost", help="the address to listen on (0.0.0.0: every interface)")


def parse_recorded(command: str) -> tuple[str, argparse.Namespace]:
    """(verb, parsed arguments) of a command recorded in a model card, read by today's parser without running it:
    a card's command must still replay. ValueError when it does not parse."""
    from core.engine.flags import raising

    words = shlex.split(command)
    if words[:3] != ["python", "-m", "core"] or len(words) < 4:
        raise ValueError(f"not a `python -m core VERB` command: {command[:80]!r}")
    parser = build_parser()
    for p in [parser, *next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices.values()]:
        raising(p)
    return words[3], parser.parse_args(words[3:])


def recorded_recipe(command: str):
    """The recipe a recorded train command describes (the kind found by its verb); ValueError otherwise."""
    import core.kinds  # noqa: F401  (registers every kind)
    from core.engine.flags import recipe_from_command
    from core.engine.recipe import RECIPES

    words = shlex.split(command)
    verb = words[3] if len(words) > 3 else ""
    kinds = {cls.verb: cls for cls in RECIPES.values()}
    if verb not in kinds:
        raise ValueError(f"{verb!r} is not a verb that trains a model")
    return recipe_from_command(kinds[verb], command)


def evaluate_checkpoint(folder: str, data_dir: str | None = None, n: int = 0, tta: bool = False) -> dict:
    """{task, headline: {name, value, label}, metrics, ...} of any checkpoint on its own test data (its kind's
    evaluation). `n` caps how many test images are composed for the kinds that compose them (0: their default)."""
    from core.engine.checkpoint import headline_of, load_checkpoint
    from core.engine.recipe import kind_of_task

    model, card = load_checkpoint(folder)
    metrics, measured = kind_of_task(card.task).evaluate_checkpoint(model, card, data_dir, n, tta)
    card.metrics = metrics
    return _report(str(folder), card.task, card.model.name, card.dataset.name, measured, metrics, headline_of(card))


def evaluate_ensemble(folders: list[str], data_dir: str | None = None, tta: bool = False) -> dict:
    """The report of several classifier checkpoints of one data set whose probabilities are averaged."""
    from core.classifier.evaluate import ensemble_checkpoints
    from core.engine.checkpoint import Headline, load_checkpoint

    members = [load_checkpoint(folder) for folder in folders]
    metrics = ensemble_checkpoints(members, data_dir, tta)
    head = Headline("test_accuracy", metrics["test_accuracy"], "test accuracy", True)
    return _report(" + ".join(map(str, folders)), "classification", "ensemble of " + ", ".join(
        card.model.name for _, card in members), members[0][1].dataset.name, True, metrics, head)


def _report(checkpoint, task, model, dataset, measured, metrics, head) -> dict:
    return {"checkpoint": checkpoint, "task": task, "model": model, "dataset": dataset, "measured": measured,
            "metrics": metrics, "headline": {"name": head.name, "value": head.value, "label": head.label,
                                             "higher_is_better": head.higher_is_better} if head else None}


def _print_report(report: dict) -> None:
    head = report["headline"]
    words = f"{head['label']}: {head['value']:.4%}" if head and head["higher_is_better"] and "bleu" not in head["name"] \
        else f"{head['label']}: {head['value']:.4f}" if head else "no headline metric"
    print(f"{report['checkpoint']} ({report['model']} on {report['dataset']}, {report['task']}): {words}"
          + ("" if report["measured"] else " (as reported by its authors; not measured here)"))
    for key, value in report["metrics"].items():
        if isinstance(value, (int, float)):
            print(f"  {key}: {value:.6g}")
    if "test_confusion" in report["metrics"]:
        confusion, names = report["metrics"]["test_confusion"], list(report["metrics"]["test_per_class"])
        print("per-class accuracy:\n" + "\n".join(f"  {name:>14}: {acc:.2%}" for name, acc in
                                                 report["metrics"]["test_per_class"].items()))
        width = max(5, max(len(str(v)) for row in confusion for v in row) + 1)
        print("confusion matrix (rows: true, columns: predicted):")
        print(" " * 15 + "".join(f"{i:>{width}}" for i in range(len(confusion))))
        for i, row in enumerate(confusion):
            name = names[i] if names[i] != str(i) else ""
            print(f"{i:>2} {name[:11]:>11} " + "".join(f"{v:>{width}}" for v in row))


def _evaluate(args) -> int:
    from core.errors import SettingsError

    if not 0 <= args.n <= 1_000_000:
        raise SettingsError(f"--n must be 0 (the default) or a number of test images up to 1,000,000; got {args.n}")
    if args.ensemble:
        if len(args.checkpoints) < 2:
            raise SettingsError("--ensemble needs two or more classifier checkpoints")
        reports = [evaluate_ensemble(args.checkpoints, args.data_dir, args.tta)]
    else:
        reports = [evaluate_checkpoint(folder, args.data_dir, args.n, args.tta) for folder in args.checkpoints]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0


def _calibrate(args) -> int:
    from core.engine.checkpoint import load_checkpoint
    from core.engine.recipe import kind_of_task

    for folder in args.checkpoints:
        model, card = load_checkpoint(folder)
        measured = kind_of_task(card.task).calibrate_checkpoint(folder, model, card, args.data_dir)
        print(f"{folder}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in measured.items()))
    return 0


def _samples(args) -> int:
    from core.data.samples import SIZES, make_sample
    from core.errors import SettingsError

    unknown = [name for name in args.names if name not in SIZES]
    if unknown:
        raise SettingsError(f"no sample set is made of {unknown[0]!r}; the pages use samples of {', '.join(SIZES)}.")
    for name in args.names or SIZES:
        print(f"{name}: {make_sample(name, args.data_dir)}")
    return 0


def _card(args) -> int:
    from core.engine.checkpoint import read_card, resolve, write_card

    card = read_card(args.checkpoint)
    if args.migrate:
        write_card(resolve(args.checkpoint), card)
    print(json.dumps(card.to_dict(), indent=2))
    return 0


def train(cls, args, argv: list[str]) -> int:
    """A train verb: the recipe its flags describe, trained with a progress bar (under torchrun for
    `--processes N`); exit status 2 when the run diverged."""
    from core.engine import distributed
    from core.engine.flags import lr_flags, recipe_command, recipe_from_args
    from core.engine.settings import check_out_dir, check_settings
    from core.progress import console_run

    recipe = recipe_from_args(cls, args)
    check_settings(recipe)  # refused before anything starts, the progress bar included
    if getattr(recipe, "processes", 1) > 1 and not distributed.launched():  # start the ranks: this command again
        check_out_dir(args.out)
        os.execv(sys.executable, [sys.executable, *distributed.torchrun(recipe.processes), "-m", "core", *argv])
    on_event, control, close = console_run(f"{getattr(recipe, 'model', cls.kind)} on "
                                           f"{getattr(recipe, 'dataset', '')}", args.lr_at)
    command = recipe_command(recipe, args.out, named=vars(args).get("recipe")) + lr_flags(args.lr_at)
    try:
        outcome = recipe.execute(on_event, control, args.out, resume=args.resume, command=command)
    finally:
        close()
    if distributed.is_main():
        print(outcome.line + (f" ({distributed.world_size()} processes)" if distributed.active() else ""))
    diverged = outcome.card is not None and outcome.card.training.get("stop_reason") == "diverged"
    return 2 if diverged else 0


def start_app(args) -> int:
    """Become the Streamlit server of the app (so stopping this process stops the server)."""
    app = Path(__file__).resolve().parent.parent / "streamlit_app.py"
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(app), *APP_FLAGS,
                              "--server.port", str(args.port), "--server.address", args.address])
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["app"]:  # no torch, no kinds: the server imports what its pages need
        app = argparse.ArgumentParser(prog="cnn-studio app", description="Start CNN Studio's app (Ctrl-C stops it).")
        _app_arguments(app)
        return start_app(app.parse_args(argv[1:]))
    from core.engine.recipe import RECIPES
    from core.engine.verbs import VERBS
    from core.errors import ProjectError

    parser = build_parser()
    args, more = parser.parse_known_args(argv)
    if more and not (args.verb in VERBS and VERBS[args.verb].more):
        parser.error(f"unrecognized arguments: {' '.join(more)}")
    args.more = more
    if args.verb is None:
        parser.print_help()
        return 2
    kinds = {cls.verb: cls for cls in RECIPES.values()}
    actions = {"evaluate": _evaluate, "calibrate": _calibrate, "samples": _samples, "card": _card, "app": start_app}
    try:
        if args.verb in kinds:
            return train(kinds[args.verb], args, argv)
        if args.verb in VERBS:
            return VERBS[args.verb].run(args) or 0
        return actions[args.verb](args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `cnn-studio` command of an installed CNN Studio: the same verbs as `python -m core`."""
    sys.exit(main(sys.argv[1:]))
