"""MNIST and Fashion-MNIST from their four official IDX `.gz` files.

Owns the IDX format (magic number, dimensions, payload) and the two data sets that use it. Downloads
are verified by the MD5 of their decompressed payload, so a re-gzipped copy (as Debian's Fashion-MNIST
is) verifies the same as the mirror's file. Files already in the data directory are checked by
structure (gzip CRC, IDX header against payload size), so truncation and corruption are reported
while a user's own files in the same format still load.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from core.data.base import CorruptDataError, Dataset, as_uint8_nchw, register_dataset
from core.data.files import RemoteFile, find_or_download, gunzip

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
FILE_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# MD5 of each file's decompressed payload, in FILE_NAMES order.
MNIST_MD5 = ("6bbc9ace898e44ae57da46a324031adb", "a25bea736e30d166cdddb491f175f624",
             "2646ac647ad5339dbf082846283269ea", "27ae3e4e09519cfbb04c329615203637")
FASHION_MD5 = ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "9018921c3c673c538a1fc5bad174d6f9",
               "8181f5470baa50b63fa0f6fddb340f0a", "15d484375f8d13e6eb1aabb0c3f46965")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse an IDX payload: 2 zero bytes, a type code, a dimension count, big-endian sizes, then data."""
    if len(payload) < 4 or payload[0] != 0 or payload[1] != 0 or payload[2] not in _IDX_DTYPES:
        raise CorruptDataError(f"{source} is not an IDX file (bad magic number {payload[:4].hex()}).")
    ndim = payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise CorruptDataError(f"{source} is truncated: its IDX header is incomplete.")
    shape = tuple(int.from_bytes(payload[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[payload[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(payload) - header != expected:
        raise CorruptDataError(f"{source} is truncated or corrupt: header says shape {shape} "
                               f"({expected} bytes) but {len(payload) - header} bytes follow.")
    return np.frombuffer(payload, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (used by tests and fixtures)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(gunzip(path), str(path))


def _load_idx_dataset(name: str, label: str, subdir: str, mirrors, md5s, class_names, mean, std,
                      data_dir: Path, hflip: bool = False) -> Dataset:
    remotes = [RemoteFile(n, mirrors, m, "gunzipped") for n, m in zip(FILE_NAMES, md5s)]
    folders = [data_dir / subdir / "raw", data_dir / subdir, data_dir / subdir.lower(), data_dir]
    files = find_or_download(label, remotes, folders, download_to=data_dir / subdir / "raw")
    train_x, train_y, test_x, test_y = (read_idx(f) for f in files)
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if images.shape[0] != labels.shape[0]:
            raise CorruptDataError(f"{label} {split}: {images.shape[0]} images but {labels.shape[0]} labels.")
    return Dataset(
        name=name,
        train_x=as_uint8_nchw(train_x), train_y=torch.from_numpy(train_y.astype(np.int64)),
        test_x=as_uint8_nchw(test_x), test_y=torch.from_numpy(test_y.astype(np.int64)),
        class_names=list(class_names), mean=mean, std=std, hflip=hflip, source=str(files[0].parent),
    )


@register_dataset("mnist", "MNIST handwritten digits, 60k/10k, 28x28 grey (official IDX files)",
                  (1, 28, 10))
def load_mnist(data_dir: Path) -> Dataset:
    return _load_idx_dataset("mnist", "MNIST", "MNIST", MNIST_MIRRORS, MNIST_MD5,
                             [str(i) for i in range(10)], (0.1307,), (0.3081,), data_dir)


@register_dataset("fashion_mnist", "Fashion-MNIST clothing, 60k/10k, 28x28 grey (official IDX files)",
                  (1, 28, 10))
def load_fashion_mnist(data_dir: Path) -> Dataset:
    return _load_idx_dataset("fashion_mnist", "Fashion-MNIST", "FashionMNIST", FASHION_MIRRORS, FASHION_MD5,
                             FASHION_CLASSES, (0.2860,), (0.3530,), data_dir,
                             hflip=True)  # a mirrored shirt or shoe is still a shirt or shoe; a mirrored 3 is not a 3
