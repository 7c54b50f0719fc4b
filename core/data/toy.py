"""`digits`: scikit-learn's bundled 8x8 handwritten digits, the offline data set.

Needs no file and no network, so tests and a first run of the trainer always have real data. The
1,797 images (pixel values 0..16) are scaled to uint8 and split 75/25 by a seeded stratified split.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from core.data.base import Dataset, channel_stats, register_dataset, stratified_split


def digits_file() -> Path:
    """scikit-learn's bundled digits table, read without importing scikit-learn (a second on this machine, the
    bulk of the Trainer's first open)."""
    return Path(importlib.util.find_spec("sklearn").origin).parent / "datasets" / "data" / "digits.csv.gz"


@register_dataset("digits", "scikit-learn 8x8 digits, 1,347/450, bundled (no download; for tests and demos)",
                  (1, 8, 10))
def load_digits(data_dir: Path) -> Dataset:
    with gzip.open(digits_file(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",")  # 1,797 rows: 64 pixels (0..16), then the label
    images = np.clip(table[:, :-1].reshape(-1, 8, 8) * 16.0, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    x = torch.from_numpy(images[:, None].copy())
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    train, test = stratified_split(y, 0.25, seed=0)
    mean, std = channel_stats(x[train])
    return Dataset(name="digits", train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test],
                   class_names=[str(i) for i in range(10)], mean=mean, std=std, hflip=False,
                   source="sklearn.datasets.load_digits")
