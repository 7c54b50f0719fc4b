"""Feature visualisation measured: for every channel of every conv layer of the shipped MNIST and CIFAR-10 CNNs,
does the optimised image excite its channel more than the most exciting of 1,000 test images, and how long does
one channel take?

Table 1 (per layer): channels, the share whose visualisation beats the best test image (activation = the mean of
the channel's map after its activation function, the same number for both), the median ratio of the two, the
seconds per channel when the whole layer is optimised in batches of 32 (the atlas), and the seconds for one
channel alone (median of `--singles` channels). Targets: a share of at least 95 % over all channels; one
channel in at most 3 s (MNIST) and 10 s (CIFAR-10) on this machine. The test images are the first 1,000 of the
official test set (`$CNN_STUDIO_DATA`), else the shipped sample (500 for CIFAR-10, said in the table).

    python -m bench.featvis [--models mnist_fast_cnn cifar10_fast_cifar] [--singles 3]
                            [--json bench/reference/featvis.json] [--atlas docs/atlas_cifar10.png]
    python -m bench.featvis --timing-only   # one channel's time again (an idle machine), into the same JSON

The whole run takes about half an hour on two cores (CIFAR-10's 1,176 channels); `--timing-only` a few minutes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import core.kinds  # noqa: F401  (registers the model kinds a checkpoint may name)
from core import paths
from core.engine.checkpoint import load_checkpoint
from core.inside.atlas import CHUNK, search_images
from core.inside.explain import conv_layer_names
from core.inside.featvis import visualize
from core.inside.units import channel_summary


def measure_layer(model, card, layer: str, images: torch.Tensor, singles: int) -> tuple[dict, np.ndarray]:
    channels = dict(model.named_modules())[layer].out_channels
    best = channel_summary(model, card, layer, images).mean.max(0).values.numpy()
    reached, pictures, start = [], [], time.perf_counter()
    for first in range(0, channels, CHUNK):
        result = visualize(model, card, layer, list(range(first, min(channels, first + CHUNK))))
        reached.append(result.activations)
        pictures.append(result.images)
    batched = (time.perf_counter() - start) / channels
    reached = np.concatenate(reached)
    alone = [visualize(model, card, layer, [c]).seconds for c in np.linspace(0, channels - 1, singles).astype(int)]
    ratio = reached / np.maximum(best, 1e-6)
    row = {"layer": layer, "channels": channels, "beat": int((reached > best).sum()),
           "median_ratio": float(np.median(ratio)), "s_per_channel_batched": batched,
           "s_one_channel": statistics.median(alone)}
    return row, np.concatenate(pictures)


def timing_only(args) -> None:
    """One channel's time (median of `--singles`) per layer, written over the JSON's figures."""
    report = json.loads(Path(args.json).read_text())
    for name, entry in report["models"].items():
        model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / name)
        for row in entry["layers"]:
            picks = np.linspace(0, row["channels"] - 1, args.singles).astype(int)
            row["s_one_channel"] = statistics.median(visualize(model, card, row["layer"], [int(c)]).seconds
                                                     for c in picks)
            print(f"{name:<20} {row['layer']:<12} one channel {row['s_one_channel']:.2f} s", flush=True)
        entry["max_s_one_channel"] = max(r["s_one_channel"] for r in entry["layers"])
        print(f"{name}: one channel at most {entry['max_s_one_channel']:.2f} s")
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


def atlas_picture(pictures: np.ndarray, path: str, cols: int = 16, scale: int = 3) -> None:
    from PIL import Image

    from core.viz import image_grid

    grid = image_grid(pictures, cols)
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["mnist_fast_cnn", "cifar10_fast_cifar"])
    parser.add_argument("--singles", type=int, default=3, help="channels timed alone per layer")
    parser.add_argument("--json", default="bench/reference/featvis.json")
    parser.add_argument("--atlas", default="docs/atlas_cifar10.png", help="a picture of one CIFAR-10 layer's atlas")
    parser.add_argument("--atlas-layer", default="features.9")
    parser.add_argument("--timing-only", action="store_true", help="time single channels again, keep the shares")
    parser.add_argument("--classes", default="docs/classes_cifar10.png", help="a picture of the CIFAR-10 model's "
                        "ten classes, each by feature visualisation ('' for none)")
    args = parser.parse_args()
    if args.classes:
        model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "cifar10_fast_cifar")
        atlas_picture(visualize(model, card, None, list(range(10))).images, args.classes, cols=10, scale=4)
    if args.timing_only:
        return timing_only(args)
    torch.manual_seed(0)
    previous = Path(args.json)  # the models measured before stay (a run of one model updates its entry)
    report = {"models": {}, **(json.loads(previous.read_text()) if previous.is_file() else {}),
              "threads": torch.get_num_threads()}
    print(f"{'model':<20} {'layer':<12} {'channels':>8} {'beat':>6} {'share':>7} {'median x':>9} "
          f"{'s/ch batched':>12} {'s one ch':>9}")
    for name in args.models:
        model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / name)
        images, what = search_images(card)
        rows = []
        for layer in conv_layer_names(model):
            row, pictures = measure_layer(model, card, layer, images, args.singles)
            rows.append(row)
            print(f"{name:<20} {layer:<12} {row['channels']:>8} {row['beat']:>6} {row['beat'] / row['channels']:>7.1%} "
                  f"{row['median_ratio']:>9.2f} {row['s_per_channel_batched']:>12.3f} {row['s_one_channel']:>9.2f}",
                  flush=True)
            if card.dataset.name == "cifar10" and layer == args.atlas_layer and args.atlas:
                atlas_picture(pictures[:64], args.atlas)
        total, beat = sum(r["channels"] for r in rows), sum(r["beat"] for r in rows)
        print(f"{name}: {beat} of {total} channels ({beat / total:.1%}) beat the most exciting of {what}; one "
              f"channel at most {max(r['s_one_channel'] for r in rows):.2f} s")
        report["models"][name] = {"layers": rows, "share": beat / total, "compared_with": what,
                                  "max_s_one_channel": max(r["s_one_channel"] for r in rows)}
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
