"""Server-side latency of the draw page's work: canvas image -> preprocessed -> prediction + all feature maps.

Draws 200 random stroke drawings on a 280x280 RGBA canvas (as the canvas component returns them) and
times, per drawing, MNIST-style preprocessing, the prediction, and one forward pass that records every
layer's output. Prints p50 / p95 / max per stage and in total, and writes JSON.

Second table: the latent explorer's slider interaction with the shipped autoencoder: move a code along
random principal-direction steps, decode it, and render the picture the page shows (enlarged + PNG-encoded,
as Streamlit sends it), 200 times.

    python -m bench.latency [--checkpoint checkpoints/mnist_fast_cnn] [--autoencoder checkpoints/fashion_ae]
                            [--n 200] [--json PATH]
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
from core.inside.explain import activations
from core.engine.predict import predict_proba, to_batch
from core.draw.preprocess import preprocess_digit, render_strokes


def random_drawing(rng: np.random.Generator) -> np.ndarray:
    strokes = [[tuple(rng.uniform(30, 250, 2)) for _ in range(int(rng.integers(2, 6)))]
               for _ in range(int(rng.integers(1, 4)))]
    grey = render_strokes(strokes, size=280, width=int(rng.integers(12, 30)))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = grey[..., None]
    rgba[..., 3] = 255
    return rgba


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "max_ms": float(np.max(values))}


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(title)
    print("| stage | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['max_ms']:.2f} |")


def decode_latency(folder: str, n: int) -> dict[str, dict]:
    """Slider step -> decoded image -> rendered PNG, as the latent explorer does it."""
    import io

    from PIL import Image

    from core.latent.autoencode import decode, latent_map
    from core.data import load_dataset

    model, card = load_checkpoint(folder)
    data = load_dataset(card.dataset.name)
    lmap = latent_map(model, data.test_x, data.test_y, n=500)
    rng = np.random.default_rng(1)
    times = {"decode": [], "render": [], "total": []}
    for i in range(n + 5):
        steps = list(rng.uniform(-3, 3, len(lmap.stds)))
        t0 = time.perf_counter()
        img = decode(model, lmap.walk(lmap.z[i % len(lmap.z)], steps))[0]
        t1 = time.perf_counter()
        big = Image.fromarray(img).resize((280, 280), Image.Resampling.NEAREST)
        big.save(io.BytesIO(), format="PNG")
        t2 = time.perf_counter()
        if i >= 5:  # the first calls warm up
            for key, seconds in zip(times, (t1 - t0, t2 - t1, t2 - t0)):
                times[key].append(seconds * 1000)
    return {k: stats(v) for k, v in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn"))
    parser.add_argument("--autoencoder", default=str(paths.SHIPPED_CHECKPOINTS / "fashion_ae"))
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
    rows = {k: stats(v) for k, v in times.items()}
    print_table(f"Draw-page latency, {args.n} drawings, {card.model.name} ({torch.get_num_threads()} threads)",
                rows)
    result = {"checkpoint": args.checkpoint, "n": args.n, "stages": rows}
    if Path(args.autoencoder).is_dir():
        decode_rows = decode_latency(args.autoencoder, args.n)
        print_table(f"\nLatent-explorer slider latency, {args.n} moves, {Path(args.autoencoder).name}", decode_rows)
        result["decode"] = {"checkpoint": args.autoencoder, "stages": decode_rows}
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
