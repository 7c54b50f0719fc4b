"""The one command line: `python -m core VERB ...` (`python -m core --help` lists the verbs).

    python -m core train --dataset digits --epochs 3 --out runs/demo        # a classifier (any recipe)
    python -m core train --dataset digits --epochs 3 --out runs/demo --resume   # go on after a crash
    python -m core train-autoencoder | train-pair | train-crnn | train-captioner ...
    python -m core evaluate CKPT [--json] [--n N] [--tta]                    # any checkpoint kind
    python -m core evaluate CKPT CKPT ... --ensemble [--tta]                 # classifiers, probabilities averaged
    python -m core probe AE [AE ...]     python -m core sweep-lambda ...     python -m core imagenet-card
    python -m core card CKPT [--migrate]                                     # show / rewrite a model card

Owns the verb table and `evaluate_checkpoint`, which measures any checkpoint by its task and reports
the task's one headline metric beside all the others. The verbs that train hand their arguments to the
feature's own parser (`core.trainer.classify`, `core.latent.recipe`, `core.composer.recipes`, `core.captions.recipe`), so every
flag documented there works here unchanged.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.engine.checkpoint import CheckpointError, headline_of, load_checkpoint, read_card, resolve, write_card
from core.data import DataError, load_dataset

# verb -> (module, the verb that module's own parser expects first, or None, help)
DELEGATED = {
    "train": ("core.trainer.classify", None, "train a classifier: any data set, model and recipe (see --help)"),
    "train-autoencoder": ("core.latent.recipe", "train", "train a convolutional autoencoder or VAE"),
    "probe": ("core.latent.recipe", "probe", "the latent-probe table of autoencoder checkpoints"),
    "train-pair": ("core.composer.recipes", "train-pair", "train the two-digit multi-task CNN"),
    "train-crnn": ("core.composer.recipes", "train-crnn", "train the CRNN digit-string reader (CTC)"),
    "sweep-lambda": ("core.composer.recipes", "sweep", "one short pair-CNN run per lambda"),
    "sweep": ("core.sweep.study", None, "tune a classifier recipe with Optuna: every trial is a run"),
    "train-captioner": ("core.captions.recipe", "train", "train the attention captioner (scenes or Flickr8k)"),
    "imagenet-card": ("core.trainer.transfer", "imagenet-card", "write the pretrained ImageNet model's card"),
}


TRAIN_COMMANDS = {"classification": "python -m core train --recipe fast_mnist --out runs/mnist",
                  "reconstruction": "python -m core train-autoencoder --out runs/ae",
                  "multi_digit": "python -m core train-pair --out runs/pair",
                  "digit_string": "python -m core train-crnn --out runs/crnn",
                  "captioning": "python -m core train-captioner --out runs/captioner"}  # how to make one of each task

def parse_recorded(command: str) -> tuple[str, argparse.Namespace]:
    """(verb, parsed arguments) of a command recorded in a model card, read by today's parsers without
    running it: a card's command must still replay. ValueError when it does not parse."""
    import shlex

    words = shlex.split(command)
    if words[:3] != ["python", "-m", "core"] or len(words) < 4 or words[3] not in DELEGATED:
        raise ValueError(f"not a `python -m core VERB` command: {command[:80]!r}")
    module_name, verb, _ = DELEGATED[words[3]]
    parser = __import__(module_name, fromlist=["build_parser"]).build_parser()
    parser.exit = lambda status=0, message=None: (_ for _ in ()).throw(ValueError(message or "bad arguments"))
    parser.error = lambda message: (_ for _ in ()).throw(ValueError(message))
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for sub in action.choices.values():
            sub.error = parser.error
    return words[3], parser.parse_args(([verb] if verb else []) + words[4:])


def evaluate_ensemble(folders: list[str], data_dir: str | None = None, tta: bool = False) -> dict:
    """The report of several classifier checkpoints of one data set whose probabilities are averaged."""
    from core.trainer.classify import report_metrics
    from core.trainer.evaluate import ensemble_report

    members = [load_checkpoint(folder) for folder in folders]
    if any(card.task != "classification" or card.dataset.name == "imagenet" for _, card in members):
        raise ValueError("an ensemble averages classifiers measured here: every checkpoint must be a classifier "
                         "of a data set on this machine.")
    report = ensemble_report(members, load_dataset(members[0][1].dataset.name, data_dir), tta)
    metrics = {**report_metrics(report), "members_test_accuracy": [round(a, 5) for a in report["members"]],
               **({"tta": True} if tta else {})}
    return {"checkpoint": " + ".join(map(str, folders)), "task": "classification", "model": "ensemble of "
            + ", ".join(card.model.name for _, card in members), "dataset": members[0][1].dataset.name,
            "measured": True, "metrics": metrics,
            "headline": {"name": "test_accuracy", "value": metrics["test_accuracy"], "label": "test accuracy",
                         "higher_is_better": True}}


def evaluate_checkpoint(folder: str, data_dir: str | None = None, n: int = 0, tta: bool = False) -> dict:
    """{task, headline: {name, value, label}, metrics, ...} of any checkpoint on its own test data.

    `n` caps how many test images are composed for the Multi-MNIST and caption models (0: their
    defaults, 10,000 and 1,000); classifiers and autoencoders use their whole test split. `tta` averages a
    classifier's outputs over each test image and its mirror image (photos only).
    """
    model, card = load_checkpoint(folder)
    if tta and card.task != "classification":
        raise ValueError(f"--tta is for classifiers; {folder} is a {card.task} model.")
    out = {"checkpoint": str(folder), "task": card.task, "model": card.model.name, "dataset": card.dataset.name}
    if card.task == "classification" and card.dataset.name == "imagenet":
        metrics, measured = dict(card.metrics), False  # ImageNet is never on this machine: the reported figure
    elif card.task == "classification":
        from core.trainer.classify import report_metrics
        from core.trainer.evaluate import evaluate_classifier

        metrics = report_metrics(evaluate_classifier(model, load_dataset(card.dataset.name, data_dir),
                                                     card.dataset.mean, card.dataset.std, tta=tta))
        metrics.update({"tta": True} if tta else {})
        measured = True
    elif card.task == "reconstruction":
        from core.latent.autoencode import reconstruction_report

        data = load_dataset(card.dataset.name, data_dir)
        metrics, measured = {f"test_{k}": v for k, v in reconstruction_report(model, data.test_x).items()}, True
        metrics["test_n"] = len(data.test_x)
    elif card.task in ("multi_digit", "digit_string"):
        from core.composer.multidigit import test_metrics

        metrics, measured = test_metrics(model, card, load_dataset("mnist", data_dir), n or 10_000), True
    else:
        from core.captions.captioning import SPECIALS, Vocabulary, evaluate_scenes, scene_makers

        _, test_maker = scene_makers(data_dir)
        held = {tuple(p) for p in card.held_out_pairs or []}
        metrics = {"greedy": evaluate_scenes(model, Vocabulary(card.vocabulary[len(SPECIALS):]), test_maker, held,
                                             n=n or 1000)}
        measured = True
    card.metrics = metrics
    headline = headline_of(card)
    out.update(measured=measured, metrics=metrics,
               headline={"name": headline.name, "value": headline.value, "label": headline.label,
                         "higher_is_better": headline.higher_is_better} if headline else None)
    return out


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        module_name, verb, _ = DELEGATED[argv[0]]
        module = __import__(module_name, fromlist=["main"])
        return module.main(([verb] if verb else []) + argv[1:])
    parser = argparse.ArgumentParser(prog="python -m core", description="CNN Studio's command line.",
                                     epilog="verbs that train: " + "; ".join(f"{k}: {v[2]}" for k, v in DELEGATED.items()))
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, (_, _, text) in DELEGATED.items():
        sub.add_parser(verb, help=text, add_help=False)
    ev = sub.add_parser("evaluate", help="measure checkpoints of any kind on their test data")
    ev.add_argument("checkpoints", nargs="+")
    ev.add_argument("--json", action="store_true", help="print one JSON object per checkpoint (a list if several)")
    ev.add_argument("--n", type=int, default=0, help="composed test images for Multi-MNIST / caption models")
    ev.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    ev.add_argument("--tta", action="store_true", help="classifiers of photos: average each test image's outputs "
                    "with its mirror image's (test-time augmentation)")
    ev.add_argument("--ensemble", action="store_true", help="average the probabilities of the classifiers given "
                    "(same data set) and report the ensemble next to each member")
    sm = sub.add_parser("samples", help="write the small sample sets the pages open on (checkpoints/samples)")
    sm.add_argument("names", nargs="*", help="data sets (default: every one the pages use)")
    sm.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    cd = sub.add_parser("card", help="print a checkpoint's validated model card (JSON)")
    cd.add_argument("checkpoint")
    cd.add_argument("--migrate", action="store_true", help="rewrite card.json in the current schema (weights untouched)")
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 2
    try:
        if args.verb == "samples":
            from core.data.samples import SIZES, make_sample

            for name in args.names or SIZES:
                print(f"{name}: {make_sample(name, args.data_dir)}")
            return 0
        if args.verb == "card":
            card = read_card(args.checkpoint)
            if args.migrate:
                write_card(resolve(args.checkpoint), card)
            print(json.dumps(card.to_dict(), indent=2))
            return 0
        if args.n < 0:
            raise ValueError("--n must be 0 (the default) or a positive number of test images")
        if args.ensemble:
            if len(args.checkpoints) < 2:
                raise ValueError("--ensemble needs two or more classifier checkpoints")
            reports = [evaluate_ensemble(args.checkpoints, args.data_dir, args.tta)]
        else:
            reports = [evaluate_checkpoint(folder, args.data_dir, args.n, args.tta) for folder in args.checkpoints]
    except (CheckpointError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0


def entry() -> None:
    """The `cnn-studio` command of an installed CNN Studio: `cnn-studio app` starts the app (quiet when idle:
    no file watching, no usage statistics), anything else is a `python -m core` verb."""
    argv = sys.argv[1:]
    if argv[:1] == ["app"]:
        import subprocess
        from pathlib import Path

        app = Path(__file__).resolve().parent.parent / "streamlit_app.py"
        flags = ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        sys.exit(subprocess.call([sys.executable, "-m", "streamlit", "run", str(app), *flags, *argv[1:]]))
    sys.exit(main(argv))

