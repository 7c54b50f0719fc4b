"""Server-side latency of the draw page's work: canvas image -> preprocessed -> prediction + all feature maps.

Draws 200 random stroke drawings on a 280x280 RGBA canvas (as the canvas component returns them) and
times, per drawing, MNIST-style preprocessing, the prediction, and one forward pass that records every
layer's output. Prints p50 / p95 / max per stage and in total, and writes JSON.

    python -m bench.latency [--checkpoint checkpoints/mnist_fast_cnn] [--n 200] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from core import paths
from core.checkpoint import load_checkpoint
from core.explain import activations
from core.inference import predict_proba, to_batch
from core.preprocess import preprocess_digit, render_strokes


def random_drawing(rng: np.random.Generator) -> np.ndarray:
    strokes = [[tuple(rng.uniform(30, 250, 2)) for _ in range(int(rng.integers(2, 6)))]
               for _ in range(int(rng.integers(1, 4)))]
    grey = render_strokes(strokes, size=280, width=int(rng.integers(12, 30)))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 255
    return rgba


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--json", default="bench/results/latency.json")
    args = parser.parse_args(argv)
    model, card = load_checkpoint(args.checkpoint)
    rng = np.random.default_rng(0)
    drawings = [random_drawing(rng) for _ in range(args.n)]
    for d in drawings[:5]:  # warm-up: first calls allocate and pick kernels
        activations(model, to_batch(preprocess_digit(d).image, card))
    times = {"preprocess": [], "predict": [], "feature maps": [], "total": []}
    for d in drawings:
        t0 = time.perf_counter()
        image = preprocess_digit(d).image
        t1 = time.perf_counter()
        predict_proba(model, card, image)
        t2 = time.perf_counter()
        activations(model, to_batch(image, card))
        t3 = time.perf_counter()
        for key, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            times[key].append(seconds * 1000)
    rows = {k: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95)),
                "max_ms": float(np.max(v))} for k, v in times.items()}
    print(f"Draw-page latency, {args.n} drawings, {card['model']['name']} ({torch.get_num_threads()} threads)")
    print("| stage | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_ms']:.2f} |")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": args.checkpoint, "n": args.n, "stages": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
