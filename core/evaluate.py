"""Test-set evaluation of a classifier checkpoint: accuracy, per-class accuracy, confusion matrix.

    python -m core.evaluate CKPT [--data-dir DIR] [--json]

Owns classifier metrics on a data set's test split and the CLI that prints them. The data set and
normalisation come from the checkpoint's model card, so a checkpoint evaluates the way it was trained.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from core.checkpoint import CheckpointError, load_checkpoint
from core.data import DataError, Dataset, load_dataset
from core.tasks import normalize


def predict_logits(model: nn.Module, images: torch.Tensor, mean, std, batch_size: int = 1000) -> torch.Tensor:
    """Model outputs (N, ...), logits (N, classes) for a classifier, for uint8 images (N, C, H, W), in eval
    mode without gradients; the model's training mode is restored afterwards."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            out.append(model(normalize(images[i:i + batch_size].to(device), mean, std)).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def classification_report(logits: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> dict:
    """accuracy, per_class {name: accuracy}, confusion[true][pred] counts, n."""
    k = len(class_names)
    pred = logits.argmax(1)
    confusion = torch.bincount(labels * k + pred, minlength=k * k).view(k, k)
    support = confusion.sum(1).clamp_min(1)
    per_class = (confusion.diag().float() / support).tolist()
    return {"accuracy": float((pred == labels).float().mean()), "n": int(len(labels)),
            "per_class": {name: round(a, 4) for name, a in zip(class_names, per_class)},
            "confusion": confusion.tolist()}


def evaluate_classifier(model: nn.Module, data: Dataset, mean=None, std=None) -> dict:
    """The classification report of `model` on the test split, plus `probs`: (N, classes) softmax outputs."""
    logits = predict_logits(model, data.test_x, mean or data.mean, std or data.std)
    report = classification_report(logits, data.test_y, data.class_names)
    report["probs"] = torch.softmax(logits, dim=1)
    return report


def most_confused(confusion: list[list[int]], top: int = 5) -> list[tuple[int, int, int]]:
    """The largest off-diagonal cells as (true, predicted, count), biggest first."""
    cells = [(i, j, n) for i, row in enumerate(confusion) for j, n in enumerate(row) if i != j and n]
    return sorted(cells, key=lambda c: -c[2])[:top]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a CNN Studio classifier checkpoint on its test set.")
    parser.add_argument("checkpoint", help="checkpoint folder (with model.safetensors and card.json)")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $CNN_STUDIO_DATA or the cache)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        model, card = load_checkpoint(args.checkpoint)
        data = load_dataset(card["dataset"]["name"], args.data_dir)
    except (CheckpointError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = evaluate_classifier(model, data, card["dataset"]["mean"], card["dataset"]["std"])
    report.pop("probs")
    report.update({"checkpoint": str(args.checkpoint), "dataset": data.name, "model": card["model"]["name"]})
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{card['model']['name']} on {data.name} test ({report['n']} images): accuracy {report['accuracy']:.4%}")
    print("per-class accuracy:")
    for name, acc in report["per_class"].items():
        print(f"  {name:>14}: {acc:.2%}")
    width = max(5, max(len(str(v)) for row in report["confusion"] for v in row) + 1)
    print("confusion matrix (rows: true, columns: predicted):")
    print(" " * 15 + "".join(f"{i:>{width}}" for i in range(len(data.class_names))))
    for i, row in enumerate(report["confusion"]):
        name = data.class_names[i] if data.class_names[i] != str(i) else ""
        print(f"{i:>2} {name[:11]:>11} " + "".join(f"{v:>{width}}" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
