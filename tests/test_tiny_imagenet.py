"""Tiny ImageNet's official layout (zipped and extracted) on a small fixture, and class subsets of any data set."""
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import DataError, load_dataset
from core.data.base import class_subset, split_subset
from core.data.tiny_imagenet import read_tiny_imagenet

WNIDS = ["n01443537", "n01629819", "n02123045"]
WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander",
         "n02123045": "tabby, tabby cat", "n09999999": "not one of ours"}


def jpeg(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buf, format="JPEG")
    return buf.getvalue()


def write_fixture(zf_or_dir, as_zip: bool):
    files = {"tiny-imagenet-200/wnids.txt": "\n".join(WNIDS) + "\n",
             "tiny-imagenet-200/words.txt": "\n".join(f"{k}\t{v}" for k, v in WORDS.items()) + "\n"}
    for c, w in enumerate(WNIDS):
        for k in range(4):
            files[f"tiny-imagenet-200/train/{w}/images/{w}_{k}.JPEG"] = jpeg((80 * c, 40 * k, 200))
        files[f"tiny-imagenet-200/train/{w}/{w}_boxes.txt"] = "ignored"
    lines = []
    for k in range(6):
        files[f"tiny-imagenet-200/val/images/val_{k}.JPEG"] = jpeg((10 * k, 10, 10))
        lines.append(f"val_{k}.JPEG\t{WNIDS[k % 3]}\t0\t0\t63\t63")
    lines += ["garbage line", "val_99.JPEG\tn01443537\t0\t0\t1\t1"]  # malformed; missing image
    files["tiny-imagenet-200/val/val_annotations.txt"] = "\n".join(lines) + "\n"
    files["tiny-imagenet-200/test/images/test_0.JPEG"] = jpeg((0, 0, 0))  # unlabelled: not used
    for name, data in files.items():
        data = data.encode() if isinstance(data, str) else data
        if as_zip:
            zf_or_dir.writestr(name, data)
        else:
            (zf_or_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (zf_or_dir / name).write_bytes(data)


@pytest.mark.parametrize("as_zip", [True, False])
def test_official_layout_reads_train_and_validation(tmp_path, as_zip):
    if as_zip:
        path = tmp_path / "tiny-imagenet-200.zip"
        with zipfile.ZipFile(path, "w") as zf:
            write_fixture(zf, True)
    else:
        write_fixture(tmp_path, False)
        path = tmp_path / "tiny-imagenet-200"
    ds = read_tiny_imagenet(path)
    assert ds.class_names == ["goldfish", "European fire salamander", "tabby"]
    assert ds.train_x.shape == (12, 3, 64, 64) and ds.test_x.shape == (6, 3, 64, 64)
    assert sorted(ds.train_y.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.test_y.tolist() == [0, 1, 2, 0, 1, 2]  # labels from val_annotations.txt
    assert int(ds.test_x[3, 0, 32, 32]) == pytest.approx(30, abs=6)  # val_3 is the image labelled by line 4
    assert any("line 7" in n for n in ds.notes) and any("line 8" in n for n in ds.notes)


def test_registry_finds_it_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with zipfile.ZipFile(tmp_path / "tiny-imagenet-200.zip", "w") as zf:
        write_fixture(zf, True)
    ds = load_dataset("tiny_imagenet@2", tmp_path)
    assert ds.class_names == ["goldfish", "European fire salamander"] and set(ds.train_y.tolist()) == {0, 1}


def test_class_subsets_by_count_name_and_index():
    digits = load_dataset("digits")
    assert split_subset("cifar10@cat,dog") == ("cifar10", "cat,dog")
    assert split_subset("folder:/data/a@b/x") == ("folder:/data/a@b/x", None)
    three = load_dataset("digits@3")
    assert three.class_names == ["0", "1", "2"] and set(three.test_y.tolist()) == {0, 1, 2}
    named = class_subset(digits, "7,1")  # digit names are names, in the order given
    assert named.class_names == ["7", "1"]
    assert (digits.train_y == 7).sum() == (named.train_y == 0).sum()
    np.testing.assert_array_equal(named.train_x[named.train_y == 0][0].numpy(), digits.train_x[digits.train_y == 7][0].numpy())
    with pytest.raises(DataError, match="no class 'cat'"):
        class_subset(digits, "cat,dog")
    with pytest.raises(DataError, match="at least two"):
        class_subset(digits, "4,4")
    with pytest.raises(DataError, match="cannot take the first 11"):
        class_subset(digits, "11")
