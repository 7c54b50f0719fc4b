"""Training-speed benchmark on MNIST: the `fast_cnn` recipe against the seed 004 recipe, in one run.

Both train through the one pipeline (`core.engine.recipe.run`) on this machine. Test accuracy is measured every `--eval-every`
fraction of an epoch (evaluation time is not counted as training time). Reports, per recipe: training
seconds to first reach 99.0 % test accuracy, test accuracy within a 20 s training budget, accuracy when
the run ends (the seed recipe stops once it reaches 99.0 %), images/s and parameters; prints a table
and writes JSON (default bench/results/train_speed.json).

    python -m bench.train_speed [--data-dir DIR] [--threads 2] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from core.data import AugmentConfig
from core.engine import RunControl, TrainConfig
from core.engine.recipe import run
from core.trainer.classify import FAST_MNIST_RECIPE, TrainSpec

TARGET = 0.99
BUDGET_S = 20.0

RECIPES = {
    "fast_cnn (one-cycle)": FAST_MNIST_RECIPE,
    "seed 004 (seed004_cnn, Adam 1e-3, batch 64)": {
        "model": "seed004_cnn",
        "config": TrainConfig(epochs=8, batch_size=64, optimizer="adam", lr=1e-3, schedule="constant"),
        "stop_at": TARGET,  # nothing left to measure once it reaches the target
    },
}


def run_recipe(name: str, recipe: dict, data_dir, eval_every: float, threads: int, max_seconds: float) -> dict:
    """One recipe through `core.engine.recipe.run`, its test accuracy scored every `eval_every` epoch."""
    cfg = TrainConfig(**{**recipe["config"].to_dict(), "threads": threads, "time_budget_s": max_seconds})
    spec = TrainSpec(dataset="mnist", model=recipe["model"], config=cfg, augment=recipe.get("augment", AugmentConfig()),
                     label_smoothing=recipe.get("label_smoothing", 0.0), data_dir=data_dir, test_curve=eval_every)
    curve: list[tuple[float, float]] = []
    control = RunControl()

    def on_event(event):
        if event.kind == "eval":
            curve.append((event.train_seconds, event.metrics["accuracy"]))
            print(f"  {name}: {event.train_seconds:6.1f} s  test acc {event.metrics['accuracy']:.4f}", flush=True)
            if event.metrics["accuracy"] >= recipe.get("stop_at", 2.0):
                control.stop()

    card = run(spec, on_event, control)
    training, final = card.training, card.metrics["test_accuracy"]
    curve.append((training["train_seconds"], final))
    reach = next((t for t, a in curve if a >= TARGET), None)
    within = [a for t, a in curve if t <= BUDGET_S]
    return {"recipe": name, "model": recipe["model"], "params": card.params,
            "seconds_to_99": reach, "acc_at_20s": within[-1] if within else None, "final_acc": final,
            "train_seconds": training["train_seconds"], "epochs": training["epochs"], "steps": training["steps"],
            "images_per_s": training["steps"] * cfg.batch_size / max(training["train_seconds"], 1e-9),
            "config": cfg.to_dict(), "curve": curve}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $CNN_STUDIO_DATA)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--eval-every", type=float, default=0.1, help="evaluate every this fraction of an epoch")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="training-time cap per recipe")
    parser.add_argument("--only", choices=["fast", "seed"], default=None)
    parser.add_argument("--json", default="bench/results/train_speed.json")
    args = parser.parse_args(argv)
    rows = []
    for name, recipe in RECIPES.items():
        if args.only and not name.startswith(args.only):
            continue
        rows.append(run_recipe(name, recipe, args.data_dir, args.eval_every, args.threads, args.max_seconds))

    fmt = lambda v, spec: "never" if v is None else format(v, spec)  # noqa: E731
    print(f"\nMNIST training speed, {args.threads} CPU thread(s), {platform.processor() or platform.machine()}")
    print(f"| recipe | params | s to 99.0 % | acc @ 20 s | final acc | train s | img/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['recipe']} | {r['params']:,} | {fmt(r['seconds_to_99'], '.1f')} | "
              f"{fmt(r['acc_at_20s'], '.4f')} | {r['final_acc']:.4f} | {r['train_seconds']:.1f} | "
              f"{r['images_per_s']:.0f} |")
    if len(rows) == 2 and rows[0]["seconds_to_99"] and rows[1]["seconds_to_99"]:
        print(f"\nfast_cnn reaches 99.0 % {rows[1]['seconds_to_99'] / rows[0]['seconds_to_99']:.1f}x sooner.")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
                               "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
