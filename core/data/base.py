"""The in-memory data set type, the data errors, and the name -> loader registry.

Owns `Dataset` (uint8 image tensors plus class names and normalisation constants), the error types
every reader raises, `load_dataset` and the registry that maps names to loaders. Does not own any file
format: readers in sibling modules register themselves here.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core import paths
from core.errors import ProjectError


class DataError(ProjectError):
    """Base class for every data problem; the message always says what to do about it."""


class MissingDataError(DataError):
    """The files of a data set are not in the data directory and could not be downloaded."""


class CorruptDataError(DataError):
    """A data file exists but is truncated, corrupt or not in the expected format."""


MIN_PER_CLASS = 2  # fewer images of a class in a split cannot be split, learnt from or scored meaningfully


@dataclass
class Dataset:
    """Train and test splits as uint8 tensors, shaped (N, C, H, W), with labels as int64 (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...]
    hflip: bool = False  # whether a horizontal flip keeps the label (true for photos, false for digits)
    source: str = ""  # where the data was read from, for model cards and messages
    notes: list[str] = field(default_factory=list)  # e.g. unreadable files that were skipped
    sample: bool = False  # the small sample shipped with CNN Studio (core.data.samples), not the whole set

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def problems(self) -> list[str]:
        """What would make training or scoring on this data set misleading, in words (empty when nothing):
        classes with no images in a split, and classes too small to learn from or to score."""
        found = []
        for split, labels in (("training", self.train_y), ("test", self.test_y)):
            counts = torch.bincount(labels, minlength=self.num_classes).tolist()
            missing = [str(self.class_names[c]) for c, n in enumerate(counts) if n == 0]
            small = [f"{self.class_names[c]} ({n})" for c, n in enumerate(counts) if 0 < n < MIN_PER_CLASS]
            if missing:
                found.append(f"no {split} images of class{'es' if len(missing) > 1 else ''} {', '.join(missing[:10])}"
                             + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
            if small:
                found.append(f"too few {split} images (under {MIN_PER_CLASS}) of {', '.join(small[:10])}")
        return found

    def describe(self) -> dict:
        """A JSON-ready summary, the `dataset` section of a model card."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "channels": self.channels,
            "image_size": self.image_size,
            "train_size": int(self.train_x.shape[0]),
            "test_size": int(self.test_x.shape[0]),
            "hflip": self.hflip,
            "source": self.source,
            **({"extra": {"problems": problems}} if (problems := self.problems()) else {}),
        }


def stratified_split(labels: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (keep, held_out): `fraction` of every class is held out, chosen by a seeded shuffle."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_held = int(round(len(idx) * fraction))
        if len(idx) > 1:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return torch.sort(torch.cat(keep)).values, torch.sort(torch.cat(held)).values


def channel_stats(images: torch.Tensor, max_images: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on the [0, 1] scale."""
    x = images[:max_images].float().div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


Loader = Callable[[Path], Dataset]
_LOADERS: dict[str, Loader] = {}
_PREFIX_LOADERS: dict[str, Callable[[str], "Dataset"]] = {}  # "folder:" -> reads "folder:PATH" (see data/folder.py)
_PREFIX_CHECKS: dict[str, Callable[[str], str | None]] = {}


def register_prefix(prefix: str, loader: Callable[[str], "Dataset"],
                    check: Callable[[str], str | None] | None = None) -> None:
    """Data sets named `prefix` + a location (e.g. folder:PATH) are read by `loader(location)`; `check(location)`
    says, cheaply and without reading the images, why a location cannot be one (None when it may)."""
    _PREFIX_LOADERS[prefix] = loader
    if check is not None:
        _PREFIX_CHECKS[prefix] = check
_DESCRIPTIONS: dict[str, str] = {}
_SHAPES: dict[str, tuple[int, int, int]] = {}


def register_dataset(name: str, description: str, shape: tuple[int, int, int] | None = None
                     ) -> Callable[[Loader], Loader]:
    """Decorator: register `loader(data_dir) -> Dataset` under `name`; `shape` = (channels, side, classes), known
    without reading the files (the settings check estimates a run's memory from it)."""

    def wrap(loader: Loader) -> Loader:
        _LOADERS[name] = loader
        _DESCRIPTIONS[name] = description
        if shape is not None:
            _SHAPES[name] = shape
        return loader

    return wrap


def dataset_shape(name: str) -> tuple[int, int, int] | None:
    """(channels, side, classes) of a registered data set (a class subset counts its whole set's classes), or None
    when it is only known once read (an image folder)."""
    return _SHAPES.get(split_subset(name)[0])


READABLE = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
            "imagenet": "ImageNet", "tiny_imagenet": "Tiny ImageNet", "digits": "8x8 digits"}


def readable_name(name: str) -> str:
    """A data set's name as people write it (`fashion_mnist` -> 'Fashion-MNIST'); others unchanged."""
    return READABLE.get(name, name)


def list_datasets() -> dict[str, str]:
    """Registered data set names with a one-line description (`folder:PATH` is accepted too)."""
    return dict(_DESCRIPTIONS)


def is_registered(name: str) -> bool:
    """Whether `name` is a registered data set (or a class subset of one): a name, never a path."""
    return split_subset(name)[0] in _LOADERS


def dataset_problem(name: str) -> str | None:
    """Why `name` names no data set a run can read (an unknown name, a folder that is not there), found without
    reading it; None when it can be tried."""
    base, _ = split_subset(name)
    prefix, sep, rest = base.partition(":")
    if sep and prefix + ":" in _PREFIX_LOADERS:
        check = _PREFIX_CHECKS.get(prefix + ":")
        return check(rest) if check is not None else None
    if base not in _LOADERS:
        return f"unknown data set {name[:80]!r}; known: {', '.join(sorted(_LOADERS))}, or folder:PATH"
    return None


def load_dataset(name: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a data set by registry name or as `folder:PATH`, optionally restricted to some classes with
    `NAME@N` (the first N classes) or `NAME@a,b,c` (classes by name or index); cached per process.

    The returned tensors are shared between callers: treat them as read-only.
    """
    return _load_cached(name, str(paths.data_dir(data_dir).resolve()))


def split_subset(name: str) -> tuple[str, str | None]:
    """'cifar10@cat,dog' -> ('cifar10', 'cat,dog'); 'tiny_imagenet@30' -> ('tiny_imagenet', '30')."""
    base, at, spec = name.rpartition("@")
    if not at or not base or "/" in spec or "\\" in spec:
        return name, None
    return base, spec


def class_subset(ds: Dataset, spec: str) -> Dataset:
    """The data set restricted to some classes, relabelled 0..k-1 in the order given: `spec` is N (the first
    N classes, as seed 002's 30-class Tiny ImageNet) or a comma-separated list of class names or indices."""
    names = [str(c) for c in ds.class_names]
    if spec.strip().isdigit():  # a lone number is a count (a subset of one class would be useless anyway)
        count = int(spec)
        if not 1 <= count <= len(names):
            raise DataError(f"{ds.name} has {len(names)} classes; cannot take the first {count}.")
        chosen = list(range(count))
    else:
        chosen = []
        for item in (p.strip() for p in spec.split(",") if p.strip()):
            if item in names:
                chosen.append(names.index(item))
            elif item.isdigit() and int(item) < len(names):
                chosen.append(int(item))
            else:
                raise DataError(f"{ds.name} has no class {item!r}. Its classes: {', '.join(names[:30])}"
                                f"{' ...' if len(names) > 30 else ''}.")
    if len(set(chosen)) < 2:
        raise DataError(f"A class subset needs at least two different classes (got {spec!r}).")
    remap = torch.full((len(names),), -1, dtype=torch.long)
    remap[torch.tensor(chosen)] = torch.arange(len(chosen))
    keep_train, keep_test = remap[ds.train_y] >= 0, remap[ds.test_y] >= 0
    return Dataset(f"{ds.name}@{spec}", ds.train_x[keep_train], remap[ds.train_y[keep_train]], ds.test_x[keep_test],
                   remap[ds.test_y[keep_test]], [ds.class_names[i] for i in chosen], ds.mean, ds.std, ds.hflip,
                   ds.source, list(ds.notes))


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, data_dir: str) -> Dataset:
    base, spec = split_subset(name)
    if spec is not None:
        return class_subset(_load_cached(base, data_dir), spec)
    prefix, sep, rest = name.partition(":")
    if sep and prefix + ":" in _PREFIX_LOADERS:
        return _PREFIX_LOADERS[prefix + ":"](rest)
    if name not in _LOADERS:
        known = ", ".join(sorted(_LOADERS)) + ", folder:PATH"
        raise DataError(f"Unknown data set {name!r}. Known data sets: {known}.")
    return _LOADERS[name](Path(data_dir))


def as_uint8_nchw(array: np.ndarray) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) uint8 array -> contiguous (N, C, H, W) uint8 tensor."""
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4:
        array = array.transpose(0, 3, 1, 2)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return torch.from_numpy(array if array.flags.writeable else array.copy())
