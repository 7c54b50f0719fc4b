"""A corpus of hostile and broken inputs for every entry point that takes a file or a setting from a stranger.

    python -m tests.hostile_corpus OUT_DIR     # writes every file case to OUT_DIR/<kind>/<name>

Each case is a `Case(kind, name, data, expect)`: `expect` is either a regular expression the refusal's
message must match, or a function that checks a successful conversion (it gets the result and raises
AssertionError when the pixels or the model are wrong). `tests/test_hostile.py` feeds every case to
every entry point of its kind. Kinds: image (any upload), model (Bring your own model), dataset (an
image-folder zip for the Trainer), args (command lines of every train verb), settings (the Trainer).
Everything is generated here, deterministically, in a few seconds; nothing is downloaded.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MARKER = "cnn_studio_hostile_marker"  # a file a hostile input would create in the temporary folder


@dataclass
class Case:
    kind: str
    name: str
    data: object  # bytes for files, a list of arguments for args, a dict of settings for settings
    expect: str | Callable  # refusal pattern, or a checker of the converted result

    @property
    def refused(self) -> bool:
        return isinstance(self.expect, str)


# --- images ---------------------------------------------------------------------------------------------

def _png(array: np.ndarray, **save) -> bytes:
    """`array` encoded (PNG unless format= says otherwise); its dtype picks the mode: uint16 -> I;16, float32 -> F."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=save.pop("format", "PNG"), **save)
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny (invalid) data chunk: a decompression bomb shape."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _expect_pixels(want: np.ndarray, atol: int = 1) -> Callable:
    def check(got: np.ndarray) -> None:
        assert got.shape == want.shape, (got.shape, want.shape)
        diff = np.abs(got.astype(int) - want.astype(int)).max()
        assert diff <= atol, f"pixels differ by up to {diff}"
    return check


def _grey3(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _stroke_mask(size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[6:26, 14:18] = True  # a vertical bar: a "1"
    return mask


def _exif_rotated(fmt: str) -> tuple[bytes, np.ndarray]:
    """A 20 wide x 10 high picture with a white block in its top-left corner, stored with EXIF orientation 6
    (rotate 90 degrees clockwise to view), and the upright 10 wide x 20 high picture a viewer shows."""
    stored = np.zeros((10, 20), np.uint8)
    stored[0:4, 0:6] = 255
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, exif=exif.tobytes(), **({"quality": 100} if fmt == "JPEG" else {}))
    return buffer.getvalue(), _grey3(np.rot90(stored, k=-1))


def image_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    cases = []
    refuse = lambda name, data, pattern: cases.append(Case("image", name, data, pattern))  # noqa: E731
    convert = lambda name, data, check: cases.append(Case("image", name, data, check))  # noqa: E731
    good = _png(rng.integers(0, 255, (16, 16), dtype=np.uint8))
    refuse("empty.png", b"", "empty")
    refuse("random.png", rng.bytes(2000), "not a readable image")
    refuse("text.png", b"hello, this is not an image\n" * 20, "not a readable image")
    refuse("html.jpg", b"<html><script>alert(1)</script></html>", "not a readable image")
    refuse("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10"/></svg>',
           "not a readable image")
    refuse("pickle.png", pickle.dumps({"a": 1}), "not a readable image")
    for cut in (8, 20, 40, len(good) // 2):
        refuse(f"truncated_png_{cut}.png", good[:cut], "not a readable image|damaged or truncated")
    pixels = np.asarray(Image.open(io.BytesIO(good)))  # only the end marker's checksum is cut: every pixel is there
    convert("png_without_end_checksum.png", good[:-5], _expect_pixels(_grey3(pixels)))
    jpeg = _png(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="JPEG")
    for cut in (2, 10, 100):
        refuse(f"truncated_jpeg_{cut}.jpg", jpeg[:cut], "not a readable image|damaged or truncated")
    refuse("png_bomb_20000.png", _png_header(20000, 20000), "megapixels")
    refuse("png_bomb_wide.png", _png_header(100000, 1000), "megapixels")
    refuse("png_bomb_65535.png", _png_header(65535, 65535), "megapixels")
    gif = bytearray(b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b";")
    refuse("gif_bomb.gif", bytes(gif), "megapixels|not a readable image|damaged")
    bad_data = bytearray(good)
    bad_data[len(good) // 2] ^= 0xFF  # a byte inside the compressed pixels
    refuse("png_corrupt_pixels.png", bytes(bad_data), "damaged")
    refuse("fully_transparent.png", _png(np.zeros((16, 16, 4), np.uint8)), "fully transparent")
    # conversions, checked against the pixels a viewer sees
    ramp16 = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    convert("grey16_full_range.png", _png(ramp16), _expect_pixels(_grey3(np.arange(256, dtype=np.uint8).reshape(16, 16))))
    dark16 = np.full((8, 8), 65535 // 4, np.uint16)
    convert("grey16_dark.png", _png(dark16), _expect_pixels(_grey3(np.full((8, 8), 64, np.uint8))))
    f01 = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    convert("float_0_1.tif", _png(f01, format="TIFF"), _expect_pixels(_grey3((f01 * 255).round().astype(np.uint8))))
    fwide = np.linspace(-5, 5, 64, dtype=np.float32).reshape(8, 8)
    convert("float_-5_5.tif", _png(fwide, format="TIFF"),
            _expect_pixels(_grey3(((fwide + 5) / 10 * 255).round().astype(np.uint8))))
    fnan = f01.copy()
    fnan[0, 0] = np.nan
    convert("float_with_nan.tif", _png(fnan, format="TIFF"), lambda got: None if got.shape == (8, 8, 3) else 1 / 0)
    refuse("float_all_nan.tif", _png(np.full((4, 4), np.nan, np.float32), format="TIFF"), "no finite")
    i32 = (np.arange(64, dtype=np.int32) * 1000).reshape(8, 8)
    convert("int32_within_16bit.tif", _png(i32, format="TIFF"),
            _expect_pixels(_grey3((i32 / 65535 * 255).round().astype(np.uint8))))
    mask = _stroke_mask()
    black_ink = np.zeros((32, 32, 4), np.uint8)
    black_ink[mask, 3] = 255  # black strokes, transparent elsewhere (what a drawing app exports)
    want = np.full((32, 32), 255, np.uint8)
    want[mask] = 0
    convert("black_ink_transparent.png", _png(black_ink), _expect_pixels(_grey3(want)))
    white_ink = np.zeros((32, 32, 4), np.uint8)
    white_ink[mask] = 255
    convert("white_ink_transparent.png", _png(white_ink), _expect_pixels(_grey3(mask.astype(np.uint8) * 255)))
    la = np.zeros((32, 32, 2), np.uint8)
    la[mask, 1] = 255
    convert("la_black_ink.png", _png(la), _expect_pixels(_grey3(want)))
    pal = Image.fromarray(mask.astype(np.uint8), mode="L").convert("P")
    buffer = io.BytesIO()
    pal.save(buffer, format="PNG", transparency=0)  # index 0 (the background) transparent, index 1 black ink
    convert("palette_transparency.png", buffer.getvalue(), _expect_pixels(_grey3(np.where(mask, 1, 255).astype(np.uint8))))
    for fmt in ("PNG", "JPEG"):
        data, upright = _exif_rotated(fmt)
        convert(f"exif_rotated.{fmt.lower()}", data, _expect_pixels(upright, atol=60 if fmt == "JPEG" else 0))
    cmyk = io.BytesIO()
    Image.new("CMYK", (12, 12), (0, 0, 0, 0)).save(cmyk, format="JPEG")
    convert("cmyk.jpg", cmyk.getvalue(), _expect_pixels(np.full((12, 12, 3), 255, np.uint8), atol=3))
    bilevel = io.BytesIO()
    Image.fromarray(mask).save(bilevel, format="PNG")
    convert("one_bit.png", bilevel.getvalue(), _expect_pixels(_grey3(mask.astype(np.uint8) * 255)))
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200)]
    anim = io.BytesIO()
    frames[0].save(anim, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    convert("animated.gif", anim.getvalue(), _expect_pixels(_grey3(np.full((8, 8), 10, np.uint8)), atol=2))
    convert("one_pixel.png", _png(np.array([[7]], np.uint8)), _expect_pixels(_grey3(np.array([[7]], np.uint8))))
    convert("thin_strip.png", _png(np.zeros((1, 5000), np.uint8)), _expect_pixels(np.zeros((1, 5000, 3), np.uint8)))
    broken_exif = _png(np.full((4, 4), 9, np.uint8), exif=b"Exif\x00\x00MM\x00*garbage")
    convert("broken_exif.png", broken_exif, _expect_pixels(_grey3(np.full((4, 4), 9, np.uint8))))
    for fmt in ("BMP", "WEBP", "TIFF"):
        arr = rng.integers(0, 255, (9, 9, 3), dtype=np.uint8)
        convert(f"plain.{fmt.lower()}", _png(arr, format=fmt, **({"lossless": True} if fmt == "WEBP" else {})),
                _expect_pixels(arr))
    return cases


# --- archives -------------------------------------------------------------------------------------------

def _zip(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _patched(data: bytes, *, flag_bits: int | None = None, method: int | None = None,
             size: int | None = None) -> bytes:
    """A zip whose central directory (and local headers) claim encryption, another method or another size."""
    out = bytearray(data)
    for sig, flag_at, method_at, size_at in ((b"PK\x03\x04", 6, 8, 22), (b"PK\x01\x02", 8, 10, 24)):
        start = 0
        while (i := out.find(sig, start)) != -1:
            if flag_bits is not None:
                out[i + flag_at:i + flag_at + 2] = struct.pack("<H", flag_bits)
            if method is not None:
                out[i + method_at:i + method_at + 2] = struct.pack("<H", method)
            if size is not None:
                out[i + size_at:i + size_at + 4] = struct.pack("<I", size)
            start = i + 4
    return bytes(out)


def _class_images(classes: dict[str, int], prefix: str = "", size: int = 8) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    files = {}
    for c, (cls, n) in enumerate(classes.items()):
        for i in range(n):
            array = np.clip(rng.normal(60 + 120 * (c % 2), 20, (size, size)), 0, 255).astype(np.uint8)
            files[f"{prefix}{cls}/{i}.png"] = _png(array)
    return files


def dataset_cases() -> list[Case]:
    cases = []
    refuse = lambda name, data, pattern: cases.append(Case("dataset", name, data, pattern))  # noqa: E731
    convert = lambda name, data, check: cases.append(Case("dataset", name, data, check))  # noqa: E731
    good = {**_class_images({"cat": 6, "dog": 6}, "train/"), **_class_images({"cat": 3, "dog": 3}, "test/")}
    good_zip = _zip(good)
    refuse("empty_bytes.zip", b"", "not a readable zip")
    refuse("not_a_zip.zip", b"hello" * 100, "not a readable zip")
    refuse("truncated.zip", good_zip[: len(good_zip) // 2], "not a readable zip|damaged|truncated")
    refuse("empty_archive.zip", _zip({}), "no images")
    refuse("encrypted.zip", _patched(good_zip, flag_bits=1), "encrypted")
    for method in (99, 97, 6, 19):
        refuse(f"method_{method}.zip", _patched(good_zip, method=method), f"compression method {method}")
    tiny = _zip({f"train/{c}/{i}.png": b"0" * 10 for c in ("a", "b") for i in range(1)})
    refuse("bomb_declared_8gb.zip", _patched(tiny, size=0xFFFFFFF0), "expand to")
    five = _zip({f"train/{c}/{i}.png": b"0" * 10 for c in "abcde" for i in range(1)})
    refuse("bomb_declared_5x450mb.zip", _patched(five, size=450 * 2**20), "expand to")
    refuse("member_lies_about_size.zip", _patched(tiny, size=1000), "could be read|damaged")
    refuse("one_class_only.zip", _zip(_class_images({"only": 5})), "one class")
    refuse("no_images_only_text.zip", _zip({"train/a/readme.txt": b"x", "train/b/notes.md": b"y"}), "no images")
    refuse("images_not_in_class_folders.zip", _zip({"a.png": _png(np.zeros((4, 4), np.uint8))}), "no images")
    refuse("traversal.zip", _zip({**good, "../../evil.png": _png(np.zeros((4, 4), np.uint8))}), "outside")
    refuse("absolute_path.zip", _zip({**good, "/etc/evil.png": b"x"}), "outside")
    unreadable = {f"train/{c}/{i}.png": b"not an image" for c in ("a", "b") for i in range(3)}
    refuse("all_images_unreadable.zip", _zip(unreadable), "could be read|no readable")
    bombs = {f"train/{c}/{i}.png": _png_header(20000, 20000) for c in ("a", "b") for i in range(3)}
    refuse("all_images_bombs.zip", _zip(bombs), "could be read|no readable")
    zeros = b"\0" * (30 * 2**20)  # deflates to ~30 KB: within the limits, and not images
    refuse("zeros_30mb_each.zip", _zip({f"train/{c}/big.png": zeros for c in ("a", "b")}), "no readable|could be read")
    # used, with a visible warning or a note
    mixed = {**good, "train/cat/bomb.png": _png_header(20000, 20000), "train/dog/junk.png": b"junk"}
    convert("some_bombs_and_junk_skipped.zip", _zip(mixed), lambda ds: _assert(
        any("skipped 2" in n for n in ds.notes) and len(ds.train_y) == 12))
    different = {**_class_images({"cat": 5, "dog": 5, "fox": 5}, "train/"), **_class_images({"cat": 3, "dog": 3}, "test/")}
    convert("test_lacks_a_class.zip", _zip(different), lambda ds: _assert(any("no test images of class fox" in p
                                                                             for p in ds.problems())))
    tiny = _class_images({"cat": 6, "dog": 1})
    convert("class_with_one_image.zip", _zip(tiny), lambda ds: _assert(any("dog" in p for p in ds.problems())))
    convert("macosx_junk_ignored.zip", _zip({**good, "__MACOSX/train/cat/._0.png": b"junk", ".DS_Store": b"x"}),
            lambda ds: _assert(len(ds.train_y) == 12 and not ds.notes))
    sixteen = {f"{c}/{i}.png": _png(np.full((8, 8), 65535 * (j + 1) // 3, np.uint16))
               for j, c in enumerate("ab") for i in range(5)}  # 1/3 and 2/3 of the 16-bit range: 85 and 170
    convert("sixteen_bit_pngs.zip", _zip(sixteen), lambda ds: _assert(
        set(ds.train_x.unique().tolist()) | set(ds.test_x.unique().tolist()) == {85, 170}))
    stored = _zip(good, zipfile.ZIP_STORED)
    convert("stored_not_deflated.zip", stored, lambda ds: _assert(len(ds.train_y) == 12))
    convert("lzma_compressed.zip", _zip(good, zipfile.ZIP_LZMA), lambda ds: _assert(len(ds.train_y) == 12))
    big = {f"{c}/{i}.png": _png(np.full((900, 700), 40 + 100 * j, np.uint8)) for j, c in enumerate("ab")
           for i in range(3)}
    refuse("train_without_test.zip", _zip(_class_images({"cat": 4, "dog": 4}, "train/")), "no test/ folder")
    convert("large_photos_resized.zip", _zip(big), lambda ds: _assert(ds.image_size <= 512))
    return cases


def _assert(ok: bool) -> None:
    assert ok


# --- models ---------------------------------------------------------------------------------------------

def _checkpoint_files() -> dict[str, bytes]:
    folder = ROOT / "checkpoints" / "mnist_fast_cnn"
    return {f"m/{p.name}": p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _card_zip(mutate: Callable[[dict], None]) -> bytes:
    files = _checkpoint_files()
    card = json.loads(files["m/card.json"])
    mutate(card)
    files["m/card.json"] = json.dumps(card).encode()
    return _zip(files)


def _nan_checkpoint() -> bytes:
    from safetensors.torch import load as st_load, save as st_save

    files = _checkpoint_files()
    tensors = st_load(files["m/model.safetensors"])
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[first] = tensors[first].clone().fill_(float("nan"))
    files["m/model.safetensors"] = st_save(tensors)
    return _zip(files)


def onnx_chain(nodes: list[tuple], weights: dict[str, np.ndarray], side: int = 8, channels: int = 1,
               outputs: int = 3, opset: int = 17, input_dims: list | None = None) -> bytes:
    """An ONNX model from (op, inputs, outputs, attributes) tuples; input 'x', output 'y'."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in nodes], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_dims or ["N", channels, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def small_onnx(side: int = 8, **kw) -> bytes:
    """Conv 3x3 (4 filters) -> ReLU -> max-pool -> flatten -> dense to 3 classes -> softmax."""
    rng = np.random.default_rng(2)
    flat = 4 * ((side - 2) // 2) ** 2
    return onnx_chain([("Conv", ["x", "w", "b"], ["c"], {"kernel_shape": [3, 3]}), ("Relu", ["c"], ["r"], {}),
                       ("MaxPool", ["r"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]}),
                       ("Flatten", ["p"], ["f"], {"axis": 1}),
                       ("Gemm", ["f", "W", "B"], ["z"], {"transB": 1}), ("Softmax", ["z"], ["y"], {"axis": 1})],
                      {"w": rng.normal(size=(4, 1, 3, 3)), "b": rng.normal(size=4), "W": rng.normal(size=(3, flat)),
                       "B": rng.normal(size=3)}, side=side, **kw)


def _torchscript(kind: str) -> bytes:
    import torch

    class Writes(torch.nn.Module):
        def forward(self, x):
            stolen = torch.from_file("/tmp/" + "cnn_studio_hostile_marker", shared=True, size=8)
            return x.flatten(1)[:, :10] + stolen.sum()

    class Loops(torch.nn.Module):
        def forward(self, x):
            while True:
                x = x + 1
            return x

    class Fine(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.fc(x.flatten(1))
    module = {"writes": Writes, "loops": Loops, "fine": Fine}[kind]()
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch /tmp/{MARKER}",))


def model_cases(with_keras: bool = True) -> list[Case]:
    import torch

    cases = []
    refuse = lambda name, data, pattern: cases.append(Case("model", name, data, pattern))  # noqa: E731
    convert = lambda name, data, check: cases.append(Case("model", name, data, check))  # noqa: E731
    refuse("empty.pt", b"", "empty")
    refuse("random.bin", np.random.default_rng(3).bytes(5000), "not a model file|not a readable")
    refuse("text.onnx", b"this is text, not a protobuf" * 10, "not a readable ONNX")
    refuse("pickle_os_system.pkl", pickle.dumps(_Evil()), "pickle")
    refuse("pickle_renamed.pt", pickle.dumps(_Evil()), "pickle")
    buffer = io.BytesIO()
    torch.save({"model": _Evil()}, buffer)
    refuse("torch_save_evil.pth", buffer.getvalue(), "torch.save")
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buffer)
    refuse("state_dict.pt", buffer.getvalue(), "torch.save")
    for kind in ("writes", "loops", "fine"):
        refuse(f"torchscript_{kind}.pt", _torchscript(kind), "TorchScript is a program")
    ckpt = _zip(_checkpoint_files())
    refuse("checkpoint_truncated.zip", ckpt[: len(ckpt) // 3], "truncated|not a readable zip")
    refuse("checkpoint_encrypted.zip", _patched(ckpt, flag_bits=1), "encrypted")
    refuse("checkpoint_method_99.zip", _patched(ckpt, method=99), "compression method 99")
    refuse("checkpoint_bomb.zip", _patched(ckpt, size=0xFFFFFFF0), "expand to")
    refuse("checkpoint_traversal.zip", _zip({**_checkpoint_files(), "../evil.txt": b"x"}), "outside")
    refuse("checkpoint_nan_weights.zip", _nan_checkpoint(), "NaN or infinite")
    refuse("card_without_dataset.zip", _card_zip(lambda c: c.pop("dataset")), "dataset")
    refuse("card_few_class_names.zip", _card_zip(lambda c: c["dataset"].update(class_names=["a"])), "class")
    refuse("card_string_mean.zip", _card_zip(lambda c: c["dataset"].update(mean="grey")), "mean")
    refuse("card_huge_image_size.zip", _card_zip(lambda c: c["dataset"].update(image_size=10**6)), "image_size|size")

    files = _checkpoint_files()
    deep = json.loads(files["m/card.json"])
    deep["training"] = "DEEP"
    text = json.dumps(deep).replace('"DEEP"', '{"x": ' * 5000 + "{}" + "}" * 5000)
    refuse("card_deeply_nested.zip", _zip({**files, "m/card.json": text.encode()}), "nest|deep")
    refuse("card_not_json.zip", _zip({**_checkpoint_files(), "m/card.json": b"{not json"}), "JSON|json")
    refuse("card_unknown_model.zip", _card_zip(lambda c: c["model"].update(name="os.system")), "model|unknown")
    refuse("checkpoint_without_weights.zip", _zip({"m/card.json": _checkpoint_files()["m/card.json"]}), "weights|safetensors")
    convert("checkpoint_good.zip", ckpt, lambda mc: _assert(mc[1].dataset.name == "mnist"))
    # ONNX
    convert("onnx_small.onnx", small_onnx(), lambda mc: _assert(mc[1].model.kwargs["num_classes"] == 3
                                                               and mc[1].upload["format"] == "ONNX"))
    convert("onnx_rgb_32.onnx", _rgb_onnx(), lambda mc: _assert(mc[1].dataset.channels == 3))
    rng = np.random.default_rng(4)
    w = {"W": rng.normal(size=(3, 64)), "B": rng.normal(size=3)}
    refuse("onnx_loop_op.onnx", onnx_chain([("Flatten", ["x"], ["f"], {"axis": 1}), ("Loop", ["f"], ["y"], {})], {}),
           "Loop")
    refuse("onnx_custom_domain.onnx", _custom_domain_onnx(), "Evil")
    refuse("onnx_external_data.onnx", _external_onnx(), "external file")
    refuse("onnx_huge_input.onnx", small_onnx(input_dims=["N", 1, 20000, 20000]), "20000x20000")
    refuse("onnx_non_square.onnx", small_onnx(input_dims=["N", 1, 8, 9]), "square")
    refuse("onnx_five_d.onnx", small_onnx(input_dims=["N", 1, 8, 8, 8]), "square")
    refuse("onnx_symbolic_side.onnx", small_onnx(input_dims=["N", 1, "H", "W"]), "square")
    convert("onnx_branch.onnx", onnx_chain([("Flatten", ["x"], ["f"], {"axis": 1}),  # branches are rebuilt too
                                            ("Gemm", ["f", "W", "B"], ["z"], {"transB": 1}),
                                            ("Add", ["z", "z"], ["y"], {})], w),
            lambda mc: _assert(len(mc[0].steps) == 3 and mc[0].steps[-1][1] == ["z", "z"]))
    refuse("onnx_nan_weights.onnx", onnx_chain([("Flatten", ["x"], ["f"], {"axis": 1}),
                                                ("Gemm", ["f", "W", "B"], ["y"], {"transB": 1})],
                                               {"W": np.full((3, 64), np.nan), "B": np.zeros(3)}), "NaN")
    refuse("onnx_wrong_weight_shape.onnx", onnx_chain([("Flatten", ["x"], ["f"], {"axis": 1}),
                                                       ("Gemm", ["f", "W", "B"], ["y"], {"transB": 1})],
                                                      {"W": np.zeros((3, 5)), "B": np.zeros(3)}), "does not fit")
    refuse("onnx_no_nodes.onnx", onnx_chain([], {}), "class scores|chain")
    refuse("onnx_truncated.onnx", small_onnx()[:100], "not a readable ONNX|chain|class scores|inputs")
    if with_keras:
        cases.extend(_keras_cases())
    return cases


def _rgb_onnx() -> bytes:
    rng = np.random.default_rng(5)
    return onnx_chain([("Sub", ["x", "m"], ["s"], {}), ("Conv", ["s", "w"], ["c"], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
                       ("BatchNormalization", ["c", "g", "b", "mu", "v"], ["n"], {}), ("Relu", ["n"], ["r"], {}),
                       ("GlobalAveragePool", ["r"], ["p"], {}), ("Flatten", ["p"], ["f"], {"axis": 1}),
                       ("Gemm", ["f", "W", "B"], ["y"], {"transB": 1})],
                      {"m": np.full((1, 3, 1, 1), 0.5), "w": rng.normal(size=(6, 3, 3, 3)), "g": np.ones(6),
                       "b": np.zeros(6), "mu": rng.normal(size=6), "v": np.ones(6) * 2, "W": rng.normal(size=(4, 6)),
                       "B": np.zeros(4)}, side=32, channels=3, outputs=4)


def _custom_domain_onnx() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Evil", ["x"], ["y"], domain="com.attacker")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)])
    return model.SerializeToString()


def _external_onnx() -> bytes:
    import onnx

    model = onnx.load_model_from_string(small_onnx())
    tensor = model.graph.initializer[2]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../../../../etc/passwd"), ("offset", "0"), ("length", "48")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def _keras_cases() -> list[Case]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    def saved(model, suffix: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"m{suffix}"
            model.save(path)
            return path.read_bytes()
    layers = keras.layers
    lam = keras.Sequential([keras.Input((8, 8, 1)), layers.Lambda(lambda t: t * 2), layers.Flatten(), layers.Dense(3)])
    huge = keras.Sequential([keras.Input((20000, 20000, 1)), layers.GlobalAveragePooling2D(), layers.Dense(3)])
    good = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(3)])
    cases = [Case("model", "keras_lambda.keras", saved(lam, ".keras"), "Lambda"),
             Case("model", "keras_huge_input.keras", saved(huge, ".keras"), "20000"),
             Case("model", "keras_huge_input.h5", saved(huge, ".h5"), "20000"),
             Case("model", "keras_good.keras", saved(good, ".keras"), lambda mc: _assert(mc[1].model.kwargs["image_size"] == 8))]
    keras_zip = cases[-1].data
    cases.append(Case("model", "keras_encrypted.keras", _patched(keras_zip, flag_bits=1), "encrypted"))
    return cases


# --- command lines and Trainer settings -----------------------------------------------------------------

def args_cases(tmp: Path) -> list[Case]:
    """Command lines that must be refused with one line of words, before any training starts."""
    a_file = tmp / "a_file"
    a_file.write_text("x")
    out = ["--out", str(tmp / "out")]
    bad = {
        "train": [["--batch-size", "0"], ["--batch-size", "-5"], ["--batch-size", "100000000"], ["--epochs", "0"],
                  ["--epochs", "-1"], ["--lr", "0"], ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-0.1"],
                  ["--val-split", "1.5"], ["--val-split", "-0.1"], ["--folds", "1"], ["--label-smoothing", "1"],
                  ["--momentum", "2"], ["--threads", "-1"], ["--seed", "-3"], ["--translate", "1000"],
                  ["--ema-decay", "1"], ["--weight-decay", "-1"], ["--dataset", "no_such_set"],
                  ["--dataset", "folder:/no/such/folder"], ["--model-option", "oops"]],
        "train-autoencoder": [["--epochs", "0"], ["--batch-size", "0"], ["--latent-dim", "0"], ["--latent-dim", "100000"],
                              ["--widths", "0,8"], ["--widths", "999999"], ["--lr", "nan"], ["--noise", "-1"]],
        "train-pair": [["--epochs", "0"], ["--n-train", "0"], ["--width", "3"], ["--lambda", "-1"], ["--batch-size", "0"]],
        "train-crnn": [["--epochs", "0"], ["--max-len", "0"], ["--gap", "5,-5"], ["--channels", "0"],
                       ["--hidden", "99999"]],
        "train-captioner": [["--epochs", "0"], ["--n-train", "0"], ["--test-share", "1.5"], ["--lr", "0"]],
    }
    cases = [Case("args", f"{verb} {' '.join(flags)}", [verb, *flags, *out], "must|needs|range|refus|choose|unknown|expects|not|invalid|cannot")
             for verb, lists in bad.items() for flags in lists]
    for verb in bad:
        cases.append(Case("args", f"{verb} --out <a file>", [verb, "--epochs", "1", "--out", str(a_file)], "cannot write"))
        cases.append(Case("args", f"{verb} --out /proc/...", [verb, "--epochs", "1", "--out", "/proc/cnn_studio/x"],
                          "cannot write"))
    return cases


def settings_cases() -> list[Case]:
    """Trainer settings (dataclass fields) that the page must refuse before it starts a worker."""
    return [Case("settings", f"{kind}: {field}={value!r}", (kind, field, value), "must|k-fold|unknown|range")
            for kind, field, value in (("classifier", "config.epochs", 0), ("classifier", "config.batch_size", 0),
                                       ("classifier", "config.lr", float("nan")), ("classifier", "val_split", 1.0),
                                       ("classifier", "folds", 1), ("classifier", "config.optimizer", "rmsprop"),
                                       ("autoencoder", "latent_dim", 0), ("autoencoder", "widths", (8, 0)),
                                       ("pair", "n_train", 0), ("crnn", "gap", (4, -4)), ("captioner", "epochs", 0))]


def all_file_cases(with_keras: bool = True) -> list[Case]:
    return image_cases() + dataset_cases() + model_cases(with_keras)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile_corpus")
    for case in all_file_cases():
        path = target / case.kind / case.name.replace("/", "_")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.data)
    print(f"wrote {len(all_file_cases())} files under {target}")
