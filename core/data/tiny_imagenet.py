"""Tiny ImageNet: 200 classes of 64x64 colour photos, from the official `tiny-imagenet-200.zip` layout.

Owns the reader of that layout, zipped or extracted: `wnids.txt` (the 200 class ids), `words.txt`
(id -> names), `train/<wnid>/images/*.JPEG` (500 per class) and `val/images/*.JPEG` labelled by
`val/val_annotations.txt` (file, wnid, box). The official test images have no labels, so the
validation images are this data set's test split. Readable class names are the first name in
words.txt. Decoded arrays are cached like image folders.
"""
from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from core import paths
from core.data.archive import open_zip
from core.data.base import CorruptDataError, Dataset, MissingDataError, channel_stats, register_dataset
from core.data.files import RemoteFile, find_or_download
from core.data.images import ImageError, decode_image

ZIP_NAME = "tiny-imagenet-200.zip"
REMOTE = RemoteFile(ZIP_NAME, ("http://cs231n.stanford.edu/",), md5="90528d7ca1a48142e341f4ef8d21d0de")


class _Source:
    """Read files by their path below the `tiny-imagenet-200/` root, from a folder or an open GuardedZip."""

    def __init__(self, path: Path, archive=None):
        if archive is None:
            root = path / "tiny-imagenet-200" if (path / "tiny-imagenet-200").is_dir() else path
            self.names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            self.read = lambda n: (root / n).read_bytes()
        else:
            prefix = "tiny-imagenet-200/" if any(i.startswith("tiny-imagenet-200/") for i in archive.names) else ""
            self.names = [n[len(prefix):] for n in archive.names if n.startswith(prefix)]
            self.read = lambda n: archive.read(prefix + n)
        self.present = set(self.names)

    def text(self, name: str) -> list[str]:
        if name not in self.present:
            raise CorruptDataError(f"Tiny ImageNet: {name} is missing; the archive is incomplete.")
        return self.read(name).decode("utf-8", errors="replace").splitlines()


def read_tiny_imagenet(path: Path) -> Dataset:
    """The data set from a `tiny-imagenet-200.zip` (opened by the guarded zip reader) or its extracted folder."""
    if path.is_dir():
        return _read(path, _Source(path))
    with open_zip(path) as archive:
        return _read(path, _Source(path, archive))


def _read(path: Path, src: _Source) -> Dataset:
    wnids = [w.strip() for w in src.text("wnids.txt") if w.strip()]
    words = dict(line.split("\t", 1) for line in src.text("words.txt") if "\t" in line) if "words.txt" in src.present else {}
    names = [words.get(w, w).split(",")[0].strip() for w in wnids]
    index = {w: i for i, w in enumerate(wnids)}
    train = [(n, index[PurePosixPath(n).parts[1]]) for n in src.names
             if n.startswith("train/") and n.lower().endswith((".jpeg", ".jpg", ".png"))
             and len(PurePosixPath(n).parts) == 4 and PurePosixPath(n).parts[1] in index]
    test, problems = [], []
    for number, line in enumerate(src.text("val/val_annotations.txt"), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            if line.strip():
                problems.append(f"val_annotations.txt line {number}: malformed")
            continue
        file, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in index or f"val/images/{file}" not in src.present:
            problems.append(f"val_annotations.txt line {number}: {file} / {wnid} not found")
            continue
        test.append((f"val/images/{file}", index[wnid]))
    if not train or not test:
        raise CorruptDataError(f"{path}: no {'training' if not train else 'validation'} images in the Tiny ImageNet "
                               "layout (train/<wnid>/images/*.JPEG, val/images/ + val/val_annotations.txt).")
    arrays = {}
    for split, items in (("train", sorted(train)), ("test", test)):
        images, labels = [], []
        for n, label in items:
            try:
                images.append(decode_image(src.read(n), size=64))
                labels.append(label)
            except ImageError as exc:
                problems.append(f"{n}: {exc}, skipped")
        if not images:
            raise CorruptDataError(f"{path}: none of the {len(items):,} {split} images could be read "
                                   f"(first problem: {problems[-1]}); the archive is damaged, download it again.")
        arrays[split] = (torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy()), torch.tensor(labels))
    mean, std = channel_stats(arrays["train"][0])
    return Dataset("tiny_imagenet", *arrays["train"], *arrays["test"], names, mean, std, hflip=True,
                   source=str(path), notes=problems[:100])


@register_dataset("tiny_imagenet", "Tiny ImageNet, 200 classes, 100k/10k (the val split), 64x64 colour "
                                   "(official tiny-imagenet-200.zip)", (3, 64, 200))
def load_tiny_imagenet(data_dir: Path) -> Dataset:
    for candidate in (data_dir / ZIP_NAME, data_dir / "tiny-imagenet-200", data_dir / "tiny_imagenet" / ZIP_NAME):
        if candidate.exists():
            return _cached(candidate)
    path = find_or_download("tiny_imagenet", [REMOTE], [data_dir, data_dir / "tiny_imagenet"], data_dir)[0]
    return _cached(path)


def _cached(path: Path) -> Dataset:
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|tiny-v1".encode()).hexdigest()[:20]
    cache = paths.cache_dir("folders") / f"tiny_imagenet_{key}.pt"
    if cache.is_file():
        try:
            return Dataset(**torch.load(cache, weights_only=True))
        except Exception:  # noqa: BLE001 - a broken cache is rebuilt
            cache.unlink(missing_ok=True)
    ds = read_tiny_imagenet(path)
    fields = {k: getattr(ds, k) for k in ("name", "train_x", "train_y", "test_x", "test_y", "class_names", "mean", "std",
                                          "hflip", "source", "notes")}
    paths.replace_atomically(cache, lambda tmp: torch.save(fields, tmp))
    return ds


__all__ = ["read_tiny_imagenet", "load_tiny_imagenet", "MissingDataError"]
