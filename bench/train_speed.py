"""Training-speed benchmark: the project's fast recipes against the seeds' own, on MNIST, Fashion-MNIST and
CIFAR-10, in one table and one JSON file.

Every PyTorch row trains through the one pipeline (`core.engine.run.run`) in this process, one after the
other, so the rows of a run share the machine's state. Test accuracy is measured every `eval_every` of an epoch
(evaluation time is not counted as training time). Per row: parameters, training seconds until each target
of its data set is first reached, test accuracy at the data set's time budget, accuracy when the run ends,
training seconds and images/s; with `--seeds 3` the mean over seeds 0, 1, 2 (and the spread). The seed 004
recipe also trains on Keras with TensorFlow for MNIST (`bench.keras_compare`), as a framework comparison.

    python -m bench.train_speed [--datasets mnist fashion_mnist cifar10] [--only TEXT] [--seeds N]
                                [--threads 2] [--keras] [--json PATH]

Targets (2-core CPU, training seconds, fresh process): MNIST 99.0 % within 7 s and 99.5 % within 20 s,
Fashion-MNIST 93.0 % within 3 min, CIFAR-10 90 % within 20 min.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from core.data import AugmentConfig
from core.engine import RunControl, TrainConfig
from core.engine.run import run
from core.classifier import ClassifierRecipe
from core.classifier.fast import FAST_CIFAR_RECIPE, FAST_FASHION_RECIPE, FAST_MNIST_BF16_RECIPE, FAST_MNIST_RECIPE
from core.classifier.recipe import from_recipe

# data set -> ([(target accuracy, seconds allowed)], evaluation every this fraction of an epoch)
TARGETS = {"mnist": ([(0.99, 7.0), (0.995, 20.0)], 0.1), "fashion_mnist": ([(0.93, 180.0)], 0.25),
           "cifar10": ([(0.90, 1200.0)], 1.0)}
SEED_004 = {"model": "seed004_cnn", "config": TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)}
ROWS = {
    "mnist": {"fast_cnn wide (bf16, batch 256, one-cycle)": FAST_MNIST_BF16_RECIPE,
              "fast_cnn (float32, the shipped recipe)": FAST_MNIST_RECIPE, "seed 004 CNN (Adam 1e-3, batch 64)": SEED_004,
              "seed 003 CNN (one conv layer of 8)": {"model": "seed003_cnn", "config": SEED_004["config"]}},
    "fashion_mnist": {"fast_cifar net, narrow (bf16, one-cycle)": FAST_FASHION_RECIPE, "seed 004 CNN (Adam 1e-3, batch 64)":
                      SEED_004},
    "cifar10": {"fast_cifar (airbench94 net, bf16)": FAST_CIFAR_RECIPE,
                "seed 001/003 CNN (6 conv, BatchNorm, dropout; Adam)": {
                    "model": "seed001_cnn", "augment": AugmentConfig(translate=4, hflip=True),
                    "config": TrainConfig(epochs=30, batch_size=64, optimizer="adam", lr=1e-3, schedule="cosine")}},
}


def run_row(dataset: str, name: str, recipe: dict, *, seed: int, data_dir, threads: int) -> dict:
    """One recipe on one data set, its test accuracy scored every `eval_every` epoch; stops at the last target
    or when the data set's time budget is spent (the seed recipes' full schedules would take much longer)."""
    targets, eval_every = TARGETS[dataset]
    budget = max(s for _, s in targets)
    cfg = dataclasses.replace(recipe["config"], threads=threads, seed=seed, time_budget_s=budget)
    spec = from_recipe(dataset, {**recipe, "config": cfg}, data_dir=data_dir, test_curve=eval_every)
    curve: list[tuple[float, float]] = []
    control = RunControl()

    def on_event(event):
        if event.kind == "eval":
            curve.append((event.train_seconds, event.metrics["accuracy"]))
            print(f"  {dataset} / {name} / seed {seed}: {event.train_seconds:7.1f} s  test acc "
                  f"{event.metrics['accuracy']:.4f}", flush=True)
            if event.metrics["accuracy"] >= max(t for t, _ in targets):
                control.stop()  # every target reached: nothing left to measure

    card = run(spec, on_event, control)
    training, final = card.training, card.metrics["test_accuracy"]
    curve.append((training["train_seconds"], final))
    within = [a for t, a in curve if t <= budget]
    return {"dataset": dataset, "recipe": name, "model": recipe["model"], "seed": seed, "params": card.params,
            "seconds_to": {f"{t:.3f}": next((s for s, a in curve if a >= t), None) for t, _ in targets},
            "acc_at_budget": within[-1] if within else None, "final_acc": final,
            "final_acc_tta": card.metrics.get("test_accuracy_tta"), "train_seconds": training["train_seconds"],
            "images_per_s": training["steps"] * cfg.batch_size / max(training["train_seconds"], 1e-9),
            "config": cfg.to_dict(), "curve": curve}


def keras_row(data_dir, threads: int) -> dict:
    """Seed 004's recipe (5 epochs, Adam 1e-3, batch 64) on Keras with TensorFlow, on the same MNIST batches."""
    from bench.keras_compare import train_keras

    spec = ClassifierRecipe(dataset="mnist", model="seed004_cnn", data_dir=data_dir,
                     config=dataclasses.replace(SEED_004["config"], threads=threads))
    _, result, test, card = train_keras(spec)
    return {"dataset": "mnist", "recipe": "seed 004 CNN on Keras/TensorFlow (5 epochs)", "model": "seed004_cnn",
            "seed": 0, "params": card.params, "seconds_to": {}, "acc_at_budget": None, "final_acc": test["accuracy"],
            "final_acc_tta": None, "train_seconds": result.train_seconds,
            "images_per_s": result.steps * spec.config.batch_size / max(result.train_seconds, 1e-9), "curve": []}


def summarise(rows: list[dict]) -> list[dict]:
    """One line per (data set, recipe): means over seeds, the spread of the final accuracy."""
    lines = []
    for key in dict.fromkeys((r["dataset"], r["recipe"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["recipe"]) == key]
        mean = lambda values: statistics.mean(values) if values else None  # noqa: E731
        reached = {t: [r["seconds_to"][t] for r in group] for t in group[0]["seconds_to"]}
        lines.append({
            "dataset": key[0], "recipe": key[1], "params": group[0]["params"], "seeds": len(group),
            "seconds_to": {t: mean(v) if None not in v else None for t, v in reached.items()},
            "acc_at_budget": mean([r["acc_at_budget"] for r in group if r["acc_at_budget"] is not None]),
            "final_acc": mean([r["final_acc"] for r in group]),
            "final_acc_spread": max(r["final_acc"] for r in group) - min(r["final_acc"] for r in group),
            "final_acc_tta": mean([r["final_acc_tta"] for r in group if r["final_acc_tta"] is not None]),
            "train_seconds": mean([r["train_seconds"] for r in group]),
            "images_per_s": mean([r["images_per_s"] for r in group])})
    return lines


def table(lines: list[dict]) -> str:
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    out = ["| data set | recipe | params | seeds | s to targets | acc @ budget | final acc | with flips | train s "
           "| img/s |", "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in lines:
        reach = ", ".join(f"{float(t):.1%}: {fmt(s, '.1f')}" for t, s in r["seconds_to"].items()) or "-"
        out.append(f"| {r['dataset']} | {r['recipe']} | {r['params']:,} | {r['seeds']} | {reach} | "
                   f"{fmt(r['acc_at_budget'], '.2%')} | {r['final_acc']:.2%} | {fmt(r['final_acc_tta'], '.2%')} | "
                   f"{r['train_seconds']:.1f} | {r['images_per_s']:,.0f} |")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--only", default=None, help="rows whose recipe name contains this text")
    parser.add_argument("--seeds", type=int, default=1, help="train each row with seeds 0..N-1 and average")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $CNN_STUDIO_DATA)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--keras", action="store_true", help="add seed 004 on Keras/TensorFlow (MNIST)")
    parser.add_argument("--json", default="bench/results/train_speed.json")
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.datasets:
        for name, recipe in ROWS[dataset].items():
            if args.only and args.only not in name:
                continue
            for seed in range(args.seeds):
                rows.append(run_row(dataset, name, recipe, seed=seed, data_dir=args.data_dir, threads=args.threads))
    if args.keras and "mnist" in args.datasets:
        rows.append(keras_row(args.data_dir, args.threads))
    lines = summarise(rows)
    print(f"\nTraining speed, {args.threads} CPU thread(s), {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}; targets: " + "; ".join(
              f"{d} " + ", ".join(f"{t:.1%} in {s:g} s" for t, s in TARGETS[d][0]) for d in args.datasets))
    print(table(lines))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
                               "torch": torch.__version__, "summary": lines, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
