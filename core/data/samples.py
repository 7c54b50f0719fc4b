"""The small sample sets shipped with CNN Studio, so every page opens on real images with no data set present.

`checkpoints/samples/<name>.npz` holds a seeded, class-balanced selection of a data set's test images (and,
where a page needs them, some training images), with the full set's class names and normalisation
statistics. Made from the real files by `python -m core samples`. Pages read data through
`load_or_sample(name)`: the whole data set when its files are on this machine (never downloading), else the
sample, marked `Dataset.sample` so the page can say so. Training and evaluation never use a sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core import paths
from core.data.base import Dataset, MissingDataError, load_dataset
from core.data.files import DOWNLOADS

SAMPLES_DIR = paths.SHIPPED_CHECKPOINTS / "samples"
SIZES = {"mnist": (500, 1000), "fashion_mnist": (2000, 1000), "cifar10": (200, 500)}  # (train, test) images kept


def _balanced(labels: torch.Tensor, n: int, classes: int, seed: int) -> np.ndarray:
    """Indices of `n` images, as many of each class as possible, chosen by a seeded shuffle, sorted."""
    rng = np.random.default_rng(seed)
    y = labels.numpy()
    per_class = [rng.permutation(np.nonzero(y == c)[0])[: max(1, n // classes)] for c in range(classes)]
    return np.sort(np.concatenate(per_class))


def make_sample(name: str, data_dir: str | None = None, out: Path = SAMPLES_DIR) -> Path:
    """Write the sample of data set `name` (read from the real files) to `out/<name>.npz`."""
    ds = load_dataset(name, data_dir)
    n_train, n_test = SIZES[name]
    train = _balanced(ds.train_y, n_train, ds.num_classes, seed=0)
    test = _balanced(ds.test_y, n_test, ds.num_classes, seed=1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.npz"
    np.savez_compressed(path, train_x=ds.train_x[train].numpy(), train_y=ds.train_y[train].numpy(),
                        test_x=ds.test_x[test].numpy(), test_y=ds.test_y[test].numpy(),
                        class_names=np.array([str(c) for c in ds.class_names]), mean=np.array(ds.mean),
                        std=np.array(ds.std), hflip=np.array(ds.hflip))
    return path


def load_sample(name: str) -> Dataset:
    """The shipped sample of data set `name`; MissingDataError when none is shipped."""
    path = SAMPLES_DIR / f"{name}.npz"
    if not path.is_file():
        raise MissingDataError(f"no data set {name!r} here and no shipped sample of it ({path}).")
    with np.load(path, allow_pickle=False) as z:
        return Dataset(name=name, train_x=torch.from_numpy(z["train_x"]), train_y=torch.from_numpy(z["train_y"]),
                       test_x=torch.from_numpy(z["test_x"]), test_y=torch.from_numpy(z["test_y"]),
                       class_names=[str(c) for c in z["class_names"]], mean=tuple(float(v) for v in z["mean"]),
                       std=tuple(float(v) for v in z["std"]), hflip=bool(z["hflip"]), source=str(path),
                       notes=[f"the {len(z['test_y']):,} test images shipped with CNN Studio"], sample=True)


def load_or_sample(name: str, data_dir: str | None = None) -> Dataset:
    """The whole data set if its files are on this machine (nothing is downloaded), else its shipped sample."""
    token = DOWNLOADS.set(False)
    try:
        return load_dataset(name, data_dir)
    except MissingDataError:
        if (SAMPLES_DIR / f"{name}.npz").is_file():
            return load_sample(name)
        raise
    finally:
        DOWNLOADS.reset(token)
