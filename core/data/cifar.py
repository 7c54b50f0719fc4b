"""CIFAR-10 and CIFAR-100 from the official python-pickle tarballs, or CIFAR-10 from an image folder.

Owns the tarball layout and a restricted unpickler: the batches are pickles, so only the few numpy
reconstruction functions an ndarray needs are allowed and anything else in the file is refused
(never unpickle arbitrary objects). When the tarball is absent, `cifar10` is also served from the
image-folder zip `cifar10-jpg.zip` (JPEG re-encodings of the same images) in the data directory.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from core.data.base import CorruptDataError, Dataset, MissingDataError, as_uint8_nchw, register_dataset
from core.data.files import RemoteFile, find_or_download

CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_FILE = RemoteFile("cifar-10-python.tar.gz", CIFAR_MIRRORS, "c58f30108f718f92721af3b95e74349a")
CIFAR100_FILE = RemoteFile("cifar-100-python.tar.gz", CIFAR_MIRRORS, "eb9058c3a382ffc7106e4002c42a8d85")
CIFAR10_ZIP = "cifar10-jpg.zip"
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
    ("_codecs", "encode"),  # how Python 3 pickles bytes at protocol 2: a pure function, no side effects
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if module.startswith("numpy"):
            module = "numpy._core.multiarray" if name in ("_reconstruct", "scalar") else "numpy"
        elif module in ("copy_reg", "__builtin__"):
            module = {"copy_reg": "copyreg", "__builtin__": "builtins"}[module]
        return super().find_class(module, name)


def safe_unpickle(data: bytes, source: str) -> dict:
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # any parse failure means the member is not a CIFAR batch
        raise CorruptDataError(f"{source}: not a valid CIFAR batch ({exc}).") from exc
    if not isinstance(obj, dict):
        raise CorruptDataError(f"{source}: expected a dict, found {type(obj).__name__}.")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def read_cifar_tarball(path: Path, members: dict[str, list[str]], label_key: str, meta: str, names_key: str):
    """Return {split: (images NHWC uint8, labels int64)} and the class names from a CIFAR tarball."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            def member(name: str) -> dict:
                fh = tar.extractfile(name)
                if fh is None:
                    raise CorruptDataError(f"{path}: {name} is not a regular file.")
                return safe_unpickle(fh.read(), f"{path}:{name}")

            splits = {}
            for split, names in members.items():
                batches = [member(n) for n in names]
                data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
                labels = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
                if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
                    raise CorruptDataError(f"{path}: {split} data has shape {data.shape}, expected (N, 3072).")
                splits[split] = (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels)
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in member(meta)[names_key]]
    except (tarfile.TarError, EOFError, OSError, KeyError) as exc:
        raise CorruptDataError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}). "
                               f"Delete it so it is downloaded again, or replace it with the official file.")
    return splits, class_names


def _tarball_dataset(name, remote, data_dir, members, label_key, meta, names_key, mean, std) -> Dataset:
    path = find_or_download(name.upper(), [remote], [data_dir, data_dir / name], download_to=data_dir)[0]
    splits, class_names = read_cifar_tarball(path, members, label_key, meta, names_key)
    (train_x, train_y), (test_x, test_y) = splits["train"], splits["test"]
    return Dataset(name=name, train_x=as_uint8_nchw(train_x), train_y=torch.from_numpy(train_y),
                   test_x=as_uint8_nchw(test_x), test_y=torch.from_numpy(test_y), class_names=class_names,
                   mean=mean, std=std, hflip=True, source=str(path))


@register_dataset("cifar10", "CIFAR-10 photos, 50k/10k, 32x32 colour (official tarball, or cifar10-jpg.zip)",
                  (3, 32, 10))
def load_cifar10(data_dir: Path) -> Dataset:
    members = {"train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
               "test": ["cifar-10-batches-py/test_batch"]}
    has_tarball = any((d / CIFAR10_FILE.name).is_file() for d in (data_dir, data_dir / "cifar10"))
    zips = [p for p in (data_dir / CIFAR10_ZIP, data_dir / "cifar10" / CIFAR10_ZIP) if p.is_file()]
    if not has_tarball and zips:
        from core.data.folder import load_image_folder

        ds = load_image_folder(str(zips[0]), name="cifar10")
        ds.mean, ds.std, ds.hflip = CIFAR10_MEAN, CIFAR10_STD, True
        return ds
    try:
        return _tarball_dataset("cifar10", CIFAR10_FILE, data_dir, members, "labels",
                                "cifar-10-batches-py/batches.meta", "label_names", CIFAR10_MEAN, CIFAR10_STD)
    except MissingDataError as exc:
        raise MissingDataError(f"{exc} Alternatively put the image-folder zip {CIFAR10_ZIP} "
                               f"(cifar10/train/<class>/*.jpg, cifar10/test/<class>/*.jpg) into {data_dir}.")


@register_dataset("cifar100", "CIFAR-100 photos, 50k/10k, 32x32 colour, 100 fine classes (official tarball)",
                  (3, 32, 100))
def load_cifar100(data_dir: Path) -> Dataset:
    members = {"train": ["cifar-100-python/train"], "test": ["cifar-100-python/test"]}
    return _tarball_dataset("cifar100", CIFAR100_FILE, data_dir, members, "fine_labels",
                            "cifar-100-python/meta", "fine_label_names", CIFAR100_MEAN, CIFAR100_STD)
