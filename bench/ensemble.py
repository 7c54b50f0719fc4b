"""Several short runs averaged against one long run of the same total training time (CIFAR-10 by default).

    python -m bench.ensemble [--recipe fast_cifar10] [--runs 3] [--epochs 6] [--long checkpoints/cifar10_fast_cifar]

Trains `--runs` copies of a speed recipe (`core/classifier/fast.py`) with `--epochs` each and seeds 0, 1, 2...,
through the project's pipeline, then measures each alone, their ensemble (probabilities averaged, as
`python -m core evaluate A B C --ensemble` does) and the long run's checkpoint, with and without flip TTA.
Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from core.data import load_dataset
from core.engine.checkpoint import load_checkpoint
from core.engine.run import run
from core.classifier.evaluate import ensemble_report, evaluate_classifier
from core.classifier.presets import fast


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast_cifar10")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--long", default="checkpoints/cifar10_fast_cifar", help="the long run to compare with")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", default="bench/results/ensemble.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cnn_studio_ensemble_"))
    members, seconds = [], 0.0
    for seed in range(args.runs):
        spec = fast(args.recipe)
        spec = dataclasses.replace(spec, data_dir=args.data_dir, config=dataclasses.replace(
            spec.config, epochs=args.epochs, seed=seed))
        card = run(spec, out=work / f"seed{seed}")
        seconds += card.training["train_seconds"]
        members.append(load_checkpoint(work / f"seed{seed}"))
        print(f"seed {seed}: {card.metrics['test_accuracy']:.2%} in {card.training['train_seconds']:.0f} s", flush=True)
    data = load_dataset(members[0][1].dataset.name, args.data_dir)
    long_model, long_card = load_checkpoint(args.long)
    rows = []
    for tta in (False, True):
        together = ensemble_report(members, data, tta=tta)
        long = evaluate_classifier(long_model, data, long_card.dataset.mean, long_card.dataset.std, tta=tta)
        rows.append({"tta": tta, "members": together["members"], "ensemble": together["accuracy"],
                     "long_run": long["accuracy"]})
    print("\n| | train s | test accuracy | with flip TTA |\n|---|---:|---:|---:|")
    for i in range(args.runs):
        print(f"| short run, seed {i} ({args.epochs} epochs) | | {rows[0]['members'][i]:.2%} | {rows[1]['members'][i]:.2%} |")
    print(f"| ensemble of the {args.runs} short runs | {seconds:.0f} | {rows[0]['ensemble']:.2%} | "
          f"{rows[1]['ensemble']:.2%} |")
    print(f"| one long run ({long_card.training['epochs']} epochs) | {long_card.training['train_seconds']:.0f} | "
          f"{rows[0]['long_run']:.2%} | {rows[1]['long_run']:.2%} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"recipe": args.recipe, "epochs": args.epochs, "runs": args.runs,
                                           "ensemble_train_seconds": seconds, "long": args.long, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
