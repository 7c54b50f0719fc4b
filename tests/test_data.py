"""Data layer: every reader on tiny files in the official formats, errors, splits, augmentation."""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import (AugmentConfig, CorruptDataError, DataError, MissingDataError, augment_batch,
                       load_dataset, load_image_folder, stratified_split)
from core.data.base import _load_cached
from core.data.cifar import read_cifar_tarball
from core.data.idx import FILE_NAMES, parse_idx, write_idx


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    _load_cached.cache_clear()
    yield
    _load_cached.cache_clear()


def write_mnist_fixture(root, n_train=30, n_test=10, folder="MNIST/raw"):
    rng = np.random.default_rng(0)
    target = root / folder
    target.mkdir(parents=True)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10]
    for name, arr in zip(FILE_NAMES, arrays):
        write_idx(target / name, arr)
    return arrays


def test_idx_reader_on_official_format(tmp_path):
    arrays = write_mnist_fixture(tmp_path)
    ds = load_dataset("mnist", tmp_path)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert torch.equal(ds.train_x[:, 0], torch.from_numpy(arrays[0].astype(np.uint8)))
    assert ds.train_y.tolist() == list(arrays[1]) and ds.test_y.dtype == torch.int64
    assert ds.class_names == [str(i) for i in range(10)] and ds.mean == (0.1307,)


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    write_mnist_fixture(tmp_path, folder="FashionMNIST/raw")
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.class_names[0] == "T-shirt/top" and ds.test_x.shape == (10, 1, 28, 28)


def test_truncated_idx_file_is_reported(tmp_path):
    write_mnist_fixture(tmp_path)
    path = tmp_path / "MNIST/raw" / FILE_NAMES[0]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptDataError, match="truncated") as err:
        load_dataset("mnist", tmp_path)
    assert FILE_NAMES[0] in str(err.value)


def test_idx_header_must_match_payload():
    header = bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    with pytest.raises(CorruptDataError, match="shape"):
        parse_idx(header + bytes(100), "x")
    with pytest.raises(CorruptDataError, match="magic"):
        parse_idx(b"PK\x03\x04" + bytes(10), "x")


def test_missing_files_name_directory_and_files(tmp_path):
    with pytest.raises(MissingDataError) as err:
        load_dataset("mnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in msg
    assert all(name in msg for name in FILE_NAMES) and "CNN_STUDIO_DATA" in msg


def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}


def write_cifar10_fixture(root):
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        members = {f"cifar-10-batches-py/data_batch_{i}": _cifar_batch(4, i) for i in range(1, 6)}
        members["cifar-10-batches-py/test_batch"] = _cifar_batch(3, 9)
        members["cifar-10-batches-py/batches.meta"] = {b"label_names": [f"c{i}".encode() for i in range(10)]}
        for name, obj in members.items():
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return members


def test_cifar10_tarball_reader(tmp_path):
    members = write_cifar10_fixture(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    first = members["cifar-10-batches-py/data_batch_1"][b"data"][0]
    assert torch.equal(ds.train_x[0], torch.from_numpy(first.reshape(3, 32, 32)))
    assert ds.class_names[:2] == ["c0", "c1"] and ds.hflip


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/cnn_studio_pwned",))


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        data = pickle.dumps({b"data": _Evil()}, protocol=2)
        info = tarfile.TarInfo("cifar-100-python/train")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CorruptDataError, match="refusing"):
        read_cifar_tarball(path, {"train": ["cifar-100-python/train"]}, "fine_labels", "m", "n")
    assert not (tmp_path / "cnn_studio_pwned").exists()


def test_truncated_cifar_tarball(tmp_path):
    write_cifar10_fixture(tmp_path)
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CorruptDataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", tmp_path)


def _png(value, mode="RGB", size=(12, 12)):
    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_zip_with_prefix_serves_cifar10(tmp_path):
    with zipfile.ZipFile(tmp_path / "cifar10-jpg.zip", "w") as zf:
        for split, n in (("train", 3), ("test", 2)):
            for cls, colour in (("cat", (255, 0, 0)), ("airplane", (0, 0, 255))):
                for i in range(n):
                    zf.writestr(f"cifar10/{split}/{cls}/{i:04d}.png", _png(colour))
        zf.writestr("cifar10/train/cat/broken.png", b"not an image")
    ds = load_dataset("cifar10", tmp_path)
    assert ds.class_names == ["airplane", "cat"]
    assert ds.train_x.shape == (6, 3, 12, 12) and ds.test_x.shape == (4, 3, 12, 12)
    red = ds.train_x[ds.train_y == 1][0]
    assert red[0].float().mean() == 255 and red[2].float().mean() == 0
    assert any("unreadable" in n for n in ds.notes) and ds.hflip


def test_image_folder_single_split_is_stratified(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "imgs" / cls / f"{i}.png").write_bytes(_png(i * 20, mode="L", size=(8, 10)))
    ds = load_image_folder(str(tmp_path / "imgs"), image_size=8)
    assert ds.channels == 1 and ds.image_size == 8
    assert ds.test_y.bincount().tolist() == [2, 2] and ds.train_y.bincount().tolist() == [8, 8]


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(str(tmp_path / "empty"))
    (tmp_path / "fake.zip").write_bytes(b"hello")
    with pytest.raises(DataError, match="not a readable zip"):
        load_image_folder(str(tmp_path / "fake.zip"))
    with pytest.raises(MissingDataError):
        load_dataset(f"folder:{tmp_path / 'nowhere'}")


def test_folder_check_reads_the_layout_and_survives_unreadable_entries(tmp_path, monkeypatch):
    """A folder is a data set only if images sit in train/ or test/ class folders or in two class folders; an
    entry the server may not read (a process's cwd under /proc for a non-root user) is skipped, not raised."""
    from pathlib import Path

    from core.data.folder import folder_problem
    Image.new("L", (8, 8)).save(tmp_path / "stray.png")
    (tmp_path / "tmp").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "tmp" / "one.png")
    assert "two or more class folders" in folder_problem(str(tmp_path))  # one loose image folder: not a data set
    (tmp_path / "cat").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "cat" / "c.png")
    assert folder_problem(str(tmp_path)) is None
    real_is_file = Path.is_file

    def denied(self):
        if self.name == "c.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)
    monkeypatch.setattr(Path, "is_file", denied)
    assert "no images" in folder_problem(str(tmp_path))


def test_digits_needs_no_files():
    ds = load_dataset("digits")
    assert ds.train_x.shape[1:] == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.train_x) + len(ds.test_x) == 1797 and int(ds.train_x.max()) > 200
    from sklearn.datasets import load_digits  # read from scikit-learn's file directly: the same images and labels

    bunch = load_digits()
    images = torch.cat([ds.train_x, ds.test_x])[:, 0].numpy()
    labels = torch.cat([ds.train_y, ds.test_y]).numpy()
    scaled = np.clip(bunch.images * 16.0, 0, 255).astype(np.uint8)  # 0..16 -> 0..255
    as_sklearn = sorted(zip(scaled.reshape(-1, 64).tolist(), bunch.target.tolist()))
    assert sorted(zip(images.reshape(-1, 64).tolist(), labels.tolist())) == as_sklearn


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError, match="mnist"):
        load_dataset("imagenet")


def test_stratified_split_keeps_class_shares():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, held = stratified_split(labels, 0.2, seed=1)
    assert labels[held].bincount().tolist() == [10, 6, 4]
    assert len(set(keep.tolist()) | set(held.tolist())) == 100 and not set(keep.tolist()) & set(held.tolist())
    assert torch.equal(stratified_split(labels, 0.2, seed=1)[1], held)
    assert not torch.equal(stratified_split(labels, 0.2, seed=2)[1], held)


def test_translation_is_an_exact_pixel_shift():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    out = augment_batch(x, AugmentConfig(translate=2))
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)  # the pixel moved, nothing was blurred
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5


def test_flip_rotate_scale_keep_shape_and_mass():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32)
    assert torch.equal(augment_batch(x, AugmentConfig()), x)
    flipped = augment_batch(x, AugmentConfig(hflip=True))
    per_image = [torch.equal(f, i) or torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x)]
    assert all(per_image) and not torch.equal(flipped, x)
    warped = augment_batch(x, AugmentConfig(rotate=10, scale=0.1))
    assert warped.shape == x.shape and torch.isfinite(warped).all()


def test_real_mnist_and_fashion(real_data):
    mnist = load_dataset("mnist", real_data)
    assert mnist.train_x.shape == (60000, 1, 28, 28) and mnist.test_x.shape == (10000, 1, 28, 28)
    assert mnist.train_y[:5].tolist() == [5, 0, 4, 1, 9]
    fashion = load_dataset("fashion_mnist", real_data)
    assert fashion.train_y[:3].tolist() == [9, 0, 0] and fashion.num_classes == 10
    assert fashion.hflip and not mnist.hflip  # mirrored clothes keep their class; mirrored digits do not


def test_real_cifar10_from_zip(real_data):
    if not (real_data / "cifar10-jpg.zip").is_file():
        pytest.skip("cifar10-jpg.zip not in the data directory")
    ds = load_dataset("cifar10", real_data)
    assert ds.train_x.shape == (50000, 3, 32, 32) and ds.test_x.shape == (10000, 3, 32, 32)
    assert ds.class_names[0] == "airplane" and ds.train_y.bincount().tolist() == [5000] * 10


def test_download_verifies_checksum(tmp_path, monkeypatch):
    from core.data.files import RemoteFile, find_or_download, md5_of_bytes

    monkeypatch.delenv("CNN_STUDIO_OFFLINE")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.bin").write_bytes(b"official bytes")
    good = RemoteFile("a.bin", (f"file://{tmp_path}/nowhere/", f"file://{mirror}/"), md5_of_bytes(b"official bytes"))
    [path] = find_or_download("Test", [good], [tmp_path / "data"], download_to=tmp_path / "data")
    assert path.read_bytes() == b"official bytes"  # the second mirror served it
    bad = RemoteFile("a.bin", (f"file://{mirror}/",), "0" * 32)
    with pytest.raises(MissingDataError, match="does not match the official file"):
        find_or_download("Test", [bad], [tmp_path / "other"], download_to=tmp_path / "other")
    assert not list((tmp_path / "other").iterdir())  # nothing half-written is left behind


def test_cifar10_missing_suggests_both_layouts(tmp_path):
    with pytest.raises(MissingDataError) as err:
        load_dataset("cifar10", tmp_path)
    assert "cifar-10-python.tar.gz" in str(err.value) and "cifar10-jpg.zip" in str(err.value)


def test_uploaded_zip_is_stored_checked_and_named(tmp_path):
    from core.data.folder import store_uploaded_zip

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for cls, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            for i in range(5):
                zf.writestr(f"shapes/{cls}/{i}.png", _png(colour))
    name = store_uploaded_zip(buffer.getvalue(), "my shapes!.zip", tmp_path / "uploads")
    assert name.startswith("folder:") and name.endswith(".zip") and "my_shapes_" in name
    ds = load_dataset(name)
    assert ds.class_names == ["blue", "red"] and len(ds.train_x) + len(ds.test_x) == 10
    assert store_uploaded_zip(buffer.getvalue(), "my shapes!.zip", tmp_path / "uploads") == name  # same content
    with pytest.raises(DataError, match="not a readable zip"):
        store_uploaded_zip(b"PK\x03\x04junk", "bad.zip", tmp_path / "uploads")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    with pytest.raises(DataError, match="no images"):
        store_uploaded_zip(empty.getvalue(), "empty.zip", tmp_path / "uploads")
    assert len(list((tmp_path / "uploads").glob("*.zip"))) == 1  # refused uploads are not kept


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _image(mode: str, size: tuple[int, int], fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, (100, 100, 100, 255) if mode == "RGBA" else 100).save(buffer, format=fmt)  # opaque
    return buffer.getvalue()


@pytest.mark.parametrize("files,match", [
    ({"a.png": _image("L", (8, 8)), "b.png": _image("L", (8, 8))}, "no images in a class folder"),
    ({"cat/a.txt": b"hello", "dog/b.csv": b"1,2"}, "no images in a class folder"),
    ({f"cat/{i}.png": _image("L", (8, 8)) for i in range(6)}, "one class folder"),
])
def test_bad_uploaded_zips_are_refused_with_the_users_file_name(tmp_path, files, match):
    from core.data.folder import store_uploaded_zip

    with pytest.raises(DataError, match=match) as err:
        store_uploaded_zip(_zip(files), "holiday photos.zip", tmp_path)
    assert "holiday photos.zip" in str(err.value) and not list(tmp_path.glob("*.zip"))


def test_zip_of_mixed_sizes_and_modes_reads(tmp_path):
    from core.data.folder import store_uploaded_zip

    files = {**{f"cat/{i}.png": _image("RGBA", (10 + i, 20)) for i in range(5)},
             **{f"dog/{i}.jpg": _image("CMYK", (30, 5 + i), "JPEG") for i in range(5)},
             "dog/x.gif": _image("P", (9, 9), "GIF"), "dog/notes.txt": b"ignored"}
    ds = load_dataset(store_uploaded_zip(_zip(files), "mixed.zip", tmp_path))
    assert ds.class_names == ["cat", "dog"] and len(ds.train_x) + len(ds.test_x) == 11
    assert ds.train_x.shape[1:] == ds.test_x.shape[1:] and ds.train_x.shape[-1] == ds.train_x.shape[-2]
