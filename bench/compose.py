"""Multi-MNIST speed: composing 60,000 images, and one composer-page update with the shipped models.

First table: `compose_pairs` and `compose_strings` making 60,000 images from MNIST's train digits
(median of 3 runs). Second table: what the composer page computes per widget change, p50 / p95 over
100 random compositions: compose + the multi-task CNN's answer + Grad-CAM for its four outputs; compose +
the CRNN's column probabilities + beam search (width 8) + the CTC alignment.

    python -m bench.compose [--n 60000] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from core import paths
from core.engine.checkpoint import load_checkpoint
from core.composer.ctc import align, beam_decode
from core.data import load_dataset
from core.data.multimnist import compose, compose_pairs, compose_strings
from core.composer.multidigit import head_cams, pair_prediction, pick_tiles, string_log_probs, string_offsets


def _median_seconds(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compose", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60_000)
    parser.add_argument("--interactions", type=int, default=100)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "compose.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    ds = load_dataset("mnist", args.data_dir)
    rows = []
    for name, fn in [("pairs (28x64, overlap <= 8)", lambda: compose_pairs(ds.train_x, ds.train_y, args.n, max_overlap=8)),
                     ("strings (28x192, 1-6 digits)", lambda: compose_strings(ds.train_x, ds.train_y, args.n))]:
        s = _median_seconds(fn)
        rows.append({"what": name, "images": args.n, "seconds": round(s, 3), "images_per_s": round(args.n / s)})
    print("| composing | images | s | images/s |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['what']} | {r['images']:,} | {r['seconds']:.2f} | {r['images_per_s']:,} |")

    pair, pair_card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_pair_cnn")
    crnn, crnn_card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_crnn")
    rng = np.random.default_rng(0)
    test_x, test_y = ds.test_x[:, 0].numpy(), ds.test_y.numpy()
    timings: dict[str, list[float]] = {"pair: compose + predict + 4 Grad-CAMs": [],
                                       "string: compose + CRNN + beam 8 + alignment": []}
    for i in range(args.interactions):
        a, b = rng.integers(len(test_x), size=2)
        start = time.perf_counter()
        image, _ = compose([test_x[a], test_x[b]], list(rng.integers(0, 37, size=2)), width=64, noise=0.1)
        probs, _ = pair_prediction(pair, pair_card, image)
        head_cams(pair, pair_card, image, tuple(int(p.argmax()) for p in probs))
        timings["pair: compose + predict + 4 Grad-CAMs"].append(time.perf_counter() - start)
        text = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(1, 7))))
        start = time.perf_counter()
        tiles = pick_tiles(text, test_x, test_y, seed=i)
        image, _ = compose(tiles, string_offsets(len(text), 0, 192), width=192)
        log_probs = string_log_probs(crnn, crnn_card, image)
        align(log_probs, beam_decode(log_probs, 8)[0][0])
        timings["string: compose + CRNN + beam 8 + alignment"].append(time.perf_counter() - start)
    latency = [{"what": k, "p50_ms": round(1000 * float(np.percentile(v, 50)), 2),
                "p95_ms": round(1000 * float(np.percentile(v, 95)), 2)} for k, v in timings.items()]
    print(f"\n| composer update ({args.interactions} random) | p50 ms | p95 ms |\n|---|---:|---:|")
    for r in latency:
        print(f"| {r['what']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"compose": rows, "composer_latency": latency, "threads": 2}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
