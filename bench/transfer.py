"""Transfer learning on CIFAR-10: frozen EfficientNet-Lite0 features + a linear head, and the data-efficiency
comparison with a CNN trained from scratch, side by side in one run.

Rows of the first table: extracting the pretrained features of the 50,000 train and 10,000 test images
(cold cache: a fresh temporary cache folder), training the linear head on them, a second run on the same
data (the features come from the cache), and, with --fine-tune K, the last K blocks fine-tuned on cached
block inputs of `--fine-tune-per-class` images per class. Second table: test accuracy against training
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
from core.engine import TensorLoader, TrainConfig, fit
from core.trainer.evaluate import classification_report, evaluate_classifier
from core.models import build_model
from core.engine.tasks import ClassificationTask
from core.trainer.transfer import FeatureTask, feature_sets, per_class_subset, suffix_logits

SUBSETS = (10, 100, 1000, 0)  # images per class; 0 = all


def head_config(n: int, seed: int = 0) -> TrainConfig:
    """Adam on the linear head: enough epochs for about 2,000 steps, at least 10 passes."""
    steps_per_epoch = max(1, n // 256)
    return TrainConfig(epochs=max(10, min(200, 2000 // steps_per_epoch)), batch_size=256, optimizer="adam", lr=1e-3,
                       weight_decay=1e-4, schedule="cosine", keep_best=False, seed=seed, channels_last=False)


def train_head(model, feats: dict, train_y: torch.Tensor, test_y: torch.Tensor, idx: torch.Tensor | None = None):
    parts = feats["train"] if idx is None else tuple(p[idx] for p in feats["train"])
    y = train_y if idx is None else train_y[idx]
    torch.nn.init.zeros_(model.fc.weight), torch.nn.init.zeros_(model.fc.bias)
    cfg = head_config(len(y))
    start = time.perf_counter()
    fit(model, FeatureTask(), TensorLoader(*parts, y, batch_size=cfg.batch_size, seed=0), None, cfg)
    seconds = time.perf_counter() - start
    acc = float((suffix_logits(model, feats["test"]).argmax(1) == test_y).float().mean())
    return acc, seconds


def scratch(data, idx: torch.Tensor, budget: float) -> tuple[float, float, int]:
    n = len(idx)
    epochs = max(3, min(150, 60_000 // n))  # ~60k images seen at least, capped by the time budget
    cfg = TrainConfig(epochs=epochs, batch_size=min(128, n), optimizer="adam", lr=2e-3, weight_decay=5e-4,
                      schedule="onecycle", keep_best=False, time_budget_s=budget, seed=0)
    model = build_model("resnet_small", in_channels=3, image_size=32, num_classes=10)
    task = ClassificationTask(data.mean, data.std, augment=AugmentConfig(translate=4, hflip=True))
    start = time.perf_counter()
    result = fit(model, task, TensorLoader(data.train_x[idx], data.train_y[idx], batch_size=cfg.batch_size,
                                           drop_last=n > cfg.batch_size, seed=0), None, cfg)
    seconds = time.perf_counter() - start
    return evaluate_classifier(model, data)["accuracy"], seconds, result.epochs


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
    data = load_dataset("cifar10", args.data_dir)
    results: dict = {"resolution": args.resolution, "threads": torch.get_num_threads(), "rows": [], "efficiency": []}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache  # a cold feature cache: the first extraction is timed in full
        model = build_model("efficientnet_lite0", in_channels=3, image_size=32, num_classes=10,
                            stats=(data.mean, data.std), resolution=args.resolution)
        sets = {"train": data.train_x, "test": data.test_x}
        start = time.perf_counter()
        feats = feature_sets(model, sets, data.mean, data.std)
        extract = time.perf_counter() - start
        acc, head = train_head(model, feats, data.train_y, data.test_y)
        results["rows"].append({"what": "frozen features + linear head, all 50,000", "test_accuracy": round(acc, 4),
                                "extract_s": round(extract, 1), "train_s": round(head, 1),
                                "total_s": round(extract + head, 1), "images_per_s": round(60_000 / extract)})
        start = time.perf_counter()
        feats = feature_sets(model, sets, data.mean, data.std)
        again = time.perf_counter() - start
        acc2, head2 = train_head(model, feats, data.train_y, data.test_y)
        results["rows"].append({"what": "the same, second run (features from the cache)", "test_accuracy": round(acc2, 4),
                                "extract_s": round(again, 1), "train_s": round(head2, 1), "total_s": round(again + head2, 1)})
        print_rows(results)
        for per_class, budget in zip(SUBSETS, args.scratch_budget):
            idx = per_class_subset(data.train_y, per_class) if per_class else torch.arange(len(data.train_y))
            t_acc, t_s = train_head(model, feats, data.train_y, data.test_y, idx)
            s_acc, s_s, s_epochs = scratch(data, idx, budget)
            results["efficiency"].append({"per_class": per_class or len(idx) // 10, "images": len(idx),
                                          "transfer_accuracy": round(t_acc, 4), "transfer_head_s": round(t_s, 1),
                                          "scratch_accuracy": round(s_acc, 4), "scratch_s": round(s_s, 1),
                                          "scratch_epochs": s_epochs, "scratch_budget_s": budget})
            print(results["efficiency"][-1], flush=True)
        if args.fine_tune:
            tuned = build_model("efficientnet_lite0", in_channels=3, image_size=32, num_classes=10,
                                stats=(data.mean, data.std), resolution=args.resolution, fine_tune=args.fine_tune)
            idx = per_class_subset(data.train_y, args.fine_tune_per_class)
            start = time.perf_counter()
            ft = feature_sets(tuned, {"train": data.train_x[idx], "test": data.test_x}, data.mean, data.std)
            extract = time.perf_counter() - start
            cfg = TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=1e-3, schedule="onecycle", keep_best=False)
            start = time.perf_counter()
            fit(tuned, FeatureTask(), TensorLoader(*ft["train"], data.train_y[idx], batch_size=128, seed=0), None, cfg)
            train = time.perf_counter() - start
            report = classification_report(suffix_logits(tuned, ft["test"]), data.test_y, data.class_names)
            results["rows"].append({"what": f"last {args.fine_tune} block(s) fine-tuned, {len(idx):,} images, 3 epochs",
                                    "test_accuracy": round(report["accuracy"], 4), "extract_s": round(extract, 1),
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
