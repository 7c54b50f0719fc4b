"""Few-shot teaching measured on a known case, and the Teach page's timing targets, in one run.

Table 1 (timing): the features of one new shot (the shot, mirrored and zoomed, in one forward pass; median of
`--repeats` shots, each new to the cache) and training the head the way the page does (5 classes x 10 shots,
with its leave-one-out check; median of `--repeats`). Targets: 0.5 s per shot, 5 s per training.

Table 2 (few-shot CIFAR-10): k = 1, 5, 10, 20 shots of each of the 10 classes drawn from the training set
(`--seeds` draws each; a draw's shots for k include those for smaller k), the head trained exactly as the page
trains it, scored on `--test-per-class` test images of each class (the first of each class in the official
order). The linear probe on all 50,000 images (README, `bench.transfer`) is 84.3 %.

    python -m bench.teach [--seeds 5] [--test-per-class 100] [--json bench/reference/teach.json]
                          [--chart docs/teach_fewshot.png]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from core.data import load_dataset
from core.teach.head import teach
from core.teach.shots import FeatureBank, as_shot
from core.engine.tasks import normalize
from core.models import evaluating
from core.models.pretrained import LITE_MEAN, LITE_STD

KS = (1, 5, 10, 20)


def _shot(image: torch.Tensor) -> np.ndarray:
    return as_shot(image.permute(1, 2, 0).numpy())


def timing(ds, bank: FeatureBank, repeats: int) -> dict:
    per_shot, training = [], []
    fresh = torch.randperm(len(ds.train_x), generator=torch.Generator().manual_seed(99))
    for i in range(repeats):
        shot = _shot(ds.train_x[fresh[i]])
        began = time.perf_counter()
        bank.features([shot], batch=1)
        per_shot.append(time.perf_counter() - began)
    pool = torch.cat([(ds.train_y == c).nonzero()[:10, 0] for c in range(5)])
    features = bank.features([_shot(ds.train_x[i]) for i in pool])
    for _ in range(repeats):
        began = time.perf_counter()
        teach(features, ds.train_y[pool], ds.class_names[:5])
        training.append(time.perf_counter() - began)
    return {"shot_features_s": statistics.median(per_shot), "shot_features_max_s": max(per_shot),
            "train_5x10_s": statistics.median(training), "train_5x10_max_s": max(training)}


def test_features(ds, bank: FeatureBank, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.cat([(ds.test_y == c).nonzero()[:per_class, 0] for c in range(len(ds.class_names))])
    x = torch.from_numpy(np.stack([_shot(ds.test_x[i]) for i in idx]))
    with evaluating(bank.model), torch.inference_mode():
        out = torch.cat([bank.model.prefix(normalize(x[i:i + 32], LITE_MEAN, LITE_STD))[0].float()
                         for i in range(0, len(x), 32)])
    return out, ds.test_y[idx]


def few_shot(ds, bank: FeatureBank, seeds: int, test: tuple) -> list[dict]:
    rows = {k: [] for k in KS}
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        order = {c: (ds.train_y == c).nonzero()[:, 0][torch.randperm(int((ds.train_y == c).sum()), generator=g)]
                 for c in range(len(ds.class_names))}
        for k in KS:
            idx = torch.cat([order[c][:k] for c in order])
            features = bank.features([_shot(ds.train_x[i]) for i in idx])
            if k == 1:  # one shot per class: no held-out check is possible, so train the final head directly
                taught = teach(torch.cat([features, features]), torch.cat([ds.train_y[idx]] * 2), ds.class_names)
            else:
                taught = teach(features, ds.train_y[idx], ds.class_names)
            acc = float((taught.logits(test[0]).argmax(1) == test[1]).float().mean())
            rows[k].append({"seed": seed, "test_accuracy": acc, "heldout_accuracy": taught.check["accuracy"],
                            "train_s": taught.seconds})
            print(f"seed {seed} k {k}: test {acc:.2%}, held-out check {taught.check['accuracy']:.2%}, "
                  f"{taught.seconds:.2f} s", flush=True)
    return [{"k": k, "test_mean": statistics.mean(r["test_accuracy"] for r in rs),
             "test_std": statistics.pstdev(r["test_accuracy"] for r in rs),
             "heldout_mean": statistics.mean(r["heldout_accuracy"] for r in rs),
             "train_s_median": statistics.median(r["train_s"] for r in rs), "runs": rs} for k, rs in rows.items()]


def chart(rows: list[dict], path: str) -> None:
    """Test accuracy against shots per class (mean and standard deviation over the draws), with the linear probe
    on every training image for reference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=120)
    ks = [r["k"] for r in rows]
    ax.errorbar(ks, [100 * r["test_mean"] for r in rows], yerr=[100 * r["test_std"] for r in rows], marker="o",
                capsize=4, label="Teach's head (frozen Lite0 features)")
    ax.axhline(84.29, color="#888", linestyle="--", label="linear probe, all 5,000 per class")
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("shots per class (CIFAR-10 training images)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default="bench/reference/teach.json")
    parser.add_argument("--chart", help="also draw accuracy against shots per class into this PNG")
    args = parser.parse_args()
    torch.manual_seed(0)
    ds, bank = load_dataset("cifar10"), FeatureBank()
    times = timing(ds, bank, args.repeats)
    print(f"| step | median s | max s | target |\n|---|---:|---:|---:|\n"
          f"| features of one new shot (3 views) | {times['shot_features_s']:.2f} | {times['shot_features_max_s']:.2f} | 0.5 |\n"
          f"| train 5 classes x 10 shots + leave-one-out | {times['train_5x10_s']:.2f} | {times['train_5x10_max_s']:.2f} | 5 |")
    test = test_features(ds, bank, args.test_per_class)
    rows = few_shot(ds, bank, args.seeds, test)
    print(f"\n| shots per class | test accuracy (mean of {args.seeds}) | std | held-out check | head s |\n|---:|---:|---:|---:|---:|")
    for r in rows:
        check = "-" if r["k"] == 1 else f"{r['heldout_mean']:.1%}"
        print(f"| {r['k']} | {r['test_mean']:.2%} | {r['test_std']:.2%} | {check} | {r['train_s_median']:.2f} |")
    print("| 5,000 (all; linear probe, bench.transfer) | 84.29 % | | | |")
    Path(args.json).write_text(json.dumps({"timing": times, "few_shot": rows, "test_images": len(test[1]),
                                           "threads": torch.get_num_threads()}, indent=1))
    print(f"wrote {args.json}")
    if args.chart:
        chart(rows, args.chart)
        print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
