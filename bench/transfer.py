"""Transfer learning on CIFAR-10: frozen EfficientNet-Lite0 features + a linear head, and the data-efficiency
comparison with a CNN trained from scratch, side by side in one run.

Every run is a classifier recipe through `core.engine.run.run` (the pretrained model's frozen part runs
once per image and is cached). Rows of the first table: extracting the pretrained features of the 50,000
train and 10,000 test images (cold cache: a fresh temporary cache folder; timed as the seconds before the
first step) and training the linear head on them, a second run on the same data (the features come from
the cache), and, with --fine-tune K, the last K blocks fine-tuned on cached block inputs of
`--fine-tune-per-class` images per class. Second table: test accuracy against training
images per class (10, 100, 1000, all) for the linear head on the pretrained features and for the
from-scratch CNN (`resnet_small`, shifts + flips, one-cycle Adam) under the same subsets; the from-scratch
runs get a CPU time budget each (see --scratch-budget), which the table reports.

    python -m bench.transfer [--resolution 160] [--fine-tune 1] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from core.data import AugmentConfig, load_dataset
from core.engine import TrainConfig
from core.engine.run import run
from core.classifier import ClassifierRecipe

SUBSETS = (10, 100, 1000, 0)  # images per class; 0 = all


def head_config(n: int, seed: int = 0) -> TrainConfig:
    """Adam on the linear head: enough epochs for about 2,000 steps, at least 10 passes."""
    steps_per_epoch = max(1, n // 256)
    return TrainConfig(epochs=max(10, min(200, 2000 // steps_per_epoch)), batch_size=256, optimizer="adam", lr=1e-3,
                       weight_decay=1e-4, schedule="cosine", keep_best=False, seed=seed, channels_last=False)


def timed(spec: ClassifierRecipe) -> tuple[float, float, float, int]:
    """(test accuracy, seconds before the first step (feature extraction), training seconds, epochs) of one run."""
    started, first = time.perf_counter(), []

    def on_event(event):
        if event.kind == "step" and not first:
            first.append(time.perf_counter() - started)

    card = run(spec, on_event)
    return (card.metrics["test_accuracy"], first[0] if first else 0.0, card.training["train_seconds"],
            card.training["epochs"])


def transfer(data_dir, resolution: int, per_class: int = 0, fine_tune: int = 0, config=None) -> tuple:
    """The pretrained network with a linear head (and the last `fine_tune` blocks) on `per_class` images a class."""
    n = per_class * 10 or 50_000
    spec = ClassifierRecipe(dataset="cifar10", model="efficientnet_lite0", data_dir=data_dir, per_class=per_class,
                     model_options={"resolution": resolution, **({"fine_tune": fine_tune} if fine_tune else {})},
                     config=config or head_config(n))
    return timed(spec)


def scratch(data_dir, per_class: int, budget: float) -> tuple:
    """resnet_small from scratch with shifts and flips, one-cycle Adam, under a training-time budget."""
    n = per_class * 10 or 50_000
    cfg = TrainConfig(epochs=max(3, min(150, 60_000 // n)), batch_size=min(128, n), optimizer="adam", lr=2e-3,
                      weight_decay=5e-4, schedule="onecycle", keep_best=False, time_budget_s=budget, seed=0)
    return timed(ClassifierRecipe(dataset="cifar10", model="resnet_small", data_dir=data_dir, per_class=per_class,
                           augment=AugmentConfig(translate=4, hflip=True), config=cfg))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=160, help="input side the 32 px images are resized to")
    parser.add_argument("--scratch-budget", type=float, nargs=4, default=[60, 180, 300, 600],
                        metavar=("S10", "S100", "S1000", "SALL"), help="seconds of training per from-scratch run")
    parser.add_argument("--fine-tune", type=int, default=0, help="also fine-tune the last K blocks (0 = skip)")
    parser.add_argument("--fine-tune-per-class", type=int, default=1000)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "transfer.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    results: dict = {"resolution": args.resolution, "threads": torch.get_num_threads(), "rows": [], "efficiency": []}
    load_dataset("cifar10", args.data_dir)  # decoded once here, so no run's timing includes reading the JPEGs
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # a cold feature cache: the first extraction is timed in full
        for what in ("frozen features + linear head, all 50,000", "the same, second run (features from the cache)"):
            acc, extract, head, _ = transfer(args.data_dir, args.resolution)
            results["rows"].append({"what": what, "test_accuracy": round(acc, 4), "extract_s": round(extract, 1),
                                    "train_s": round(head, 1), "total_s": round(extract + head, 1),
                                    "images_per_s": round(60_000 / max(extract, 1e-9))})
        print_rows(results)
        for per_class, budget in zip(SUBSETS, args.scratch_budget):
            t_acc, _, t_s, _ = transfer(args.data_dir, args.resolution, per_class)
            s_acc, _, s_s, s_epochs = scratch(args.data_dir, per_class, budget)
            results["efficiency"].append({"per_class": per_class or 5000, "images": per_class * 10 or 50_000,
                                          "transfer_accuracy": round(t_acc, 4), "transfer_head_s": round(t_s, 1),
                                          "scratch_accuracy": round(s_acc, 4), "scratch_s": round(s_s, 1),
                                          "scratch_epochs": s_epochs, "scratch_budget_s": budget})
            print(results["efficiency"][-1], flush=True)
        if args.fine_tune:
            cfg = TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=1e-3, schedule="onecycle", keep_best=False)
            acc, extract, train, _ = transfer(args.data_dir, args.resolution, args.fine_tune_per_class, args.fine_tune,
                                              cfg)
            results["rows"].append({"what": f"last {args.fine_tune} block(s) fine-tuned, "
                                            f"{args.fine_tune_per_class * 10:,} images, 3 epochs",
                                    "test_accuracy": round(acc, 4), "extract_s": round(extract, 1),
                                    "train_s": round(train, 1), "total_s": round(extract + train, 1)})
    print_rows(results)
    print("\n| images per class | transfer (linear head) | from scratch (resnet_small) | difference |\n|---:|---:|---:|---:|")
    for r in results["efficiency"]:
        print(f"| {r['per_class']:,} | {r['transfer_accuracy']:.2%} ({r['transfer_head_s']:.0f} s) | "
              f"{r['scratch_accuracy']:.2%} ({r['scratch_s']:.0f} s, {r['scratch_epochs']} epochs) | "
              f"{(r['transfer_accuracy'] - r['scratch_accuracy']) * 100:+.1f} pts |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def print_rows(results: dict) -> None:
    print(f"\nCIFAR-10, EfficientNet-Lite0 at {results['resolution']} px, {results['threads']} threads")
    print("| run | test accuracy | features (s) | head (s) | total (s) |\n|---|---:|---:|---:|---:|")
    for r in results["rows"]:
        print(f"| {r['what']} | {r['test_accuracy']:.2%} | {r['extract_s']:.1f} | {r['train_s']:.1f} | "
              f"{r['total_s']:.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
