"""The third round of hostile inputs (issue 26): uploads that would make the server read or show its own files,
names that would write outside their folder, files whose failure would reach the user as a traceback or a
library's words, graphs built to hang the importer, inputs accepted and then silently wrong, and refusals a user
could not act on. Each class has several cases; `tests/test_hostile.py` feeds them to the entry points with the
first rounds' cases (`tests/hostile_corpus.py`), by the same rules.
"""
from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from tests.hostile_corpus import (Case, _assert, _card_zip, _checkpoint_files, _png, _zip, onnx_chain, small_onnx)

FOLDER_CARDS = ["folder:/", "folder:/etc", "folder:../../..", "folder:checkpoints/samples", "folder:/proc/self",
                "folder:~/.ssh", "mnist@../../etc", "folder:C:\\Windows", "tiny_imagenet/../../x"]


def _uploaded(mc) -> None:
    """A checkpoint upload whose card named a path: read as the upload's own data, no server path kept."""
    model, card = mc
    _assert(card.dataset.name == "uploaded" and not card.dataset.has_test_set and card.dataset.source == "")
    _assert(any("not one CNN Studio knows" in n for n in card.upload.get("notes", [])))


def card_cases() -> list[Case]:
    cases = [Case("model", f"card_names_{i}.zip", _card_zip(lambda c, n=name: c["dataset"].update(name=n)), _uploaded)
             for i, name in enumerate(FOLDER_CARDS)]
    cases.append(Case("model", "card_names_a_known_set.zip", _card_zip(lambda c: c["dataset"].update(name="mnist")),
                      lambda mc: _assert(mc[1].dataset.name == "mnist" and mc[1].dataset.has_test_set)))
    cases.append(Case("model", "card_sources_are_paths.zip",
                      _card_zip(lambda c: c["dataset"].update(sources=["/etc/passwd", "mnist"], source="/root/x")),
                      lambda mc: _assert(mc[1].dataset.sources == ["mnist"] and mc[1].dataset.source == "")))
    huge_int = json.dumps(json.loads(_checkpoint_files()["m/card.json"])).replace('"metrics": {', '"metrics": {"n": '
                                                                                   + "9" * 5001 + ", ", 1)
    refusals = [
        ("card_5001_digit_integer.zip", _zip({**_checkpoint_files(), "m/card.json": huge_int.encode()}), "JSON"),
        ("card_mean_1e308.zip", _card_zip(lambda c: c["dataset"].update(mean=[1e308])), "mean"),
        ("card_std_tiny.zip", _card_zip(lambda c: c["dataset"].update(std=[1e-300])), "std"),
        ("card_std_huge.zip", _card_zip(lambda c: c["dataset"].update(std=[1e300])), "std"),
        ("card_pair_task.zip", _card_zip(lambda c: c.update(task="multi_digit", generator={"width": 64})),
         "classifiers|weights do not match|generator"),
        ("card_widths_huge.zip", _card_zip(lambda c: c["model"]["kwargs"].update(widths=[100_000] * 3)), "GB"),
        ("card_unknown_option.zip", _card_zip(lambda c: c["model"]["kwargs"].update(bogus=1)), "no option"),
        ("card_option_nested.zip", _card_zip(lambda c: c["model"]["kwargs"].update(widths=[[[[[[1]]]]]])),
         "nested|deep"),
        ("weights_are_a_pickle.zip", _zip({**_checkpoint_files(), "m/model.safetensors": pickle.dumps({"w": 1})}),
         "pickle"),
        ("weights_are_a_torch_zip.zip", _zip({**_checkpoint_files(), "m/model.safetensors": _zip({"a/data.pkl": b"x"})}),
         "zip file"),
    ]
    return cases + [Case("model", name, data, pattern) for name, data, pattern in refusals]


def _external(tensor, location: str) -> None:
    import onnx

    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def _constant_graph(value_attr) -> bytes:
    """x * c with c a Constant node carrying `value_attr` (an AttributeProto maker)."""
    from onnx import TensorProto, helper

    node = helper.make_node("Constant", [], ["c"])
    node.attribute.append(value_attr())
    graph = helper.make_graph([node, helper.make_node("Flatten", ["x"], ["f"], axis=1),
                               helper.make_node("Mul", ["f", "c"], ["m"]),
                               helper.make_node("Gemm", ["m", "W"], ["y"], transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor("W", TensorProto.FLOAT, [3, 64], [0.01] * 192)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _constant_external(location: str) -> bytes:
    from onnx import helper, numpy_helper

    def attr():
        tensor = numpy_helper.from_array(np.full((1,), 2.0, np.float32), "c")
        _external(tensor, location)
        return helper.make_attribute("value", tensor)
    return _constant_graph(attr)


def _attribute_tensor_external() -> bytes:
    """A Conv carrying an (unused) tensor attribute whose data lives in a file of the server."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_model_from_string(small_onnx())
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), "t")
    _external(tensor, "core/paths.py")
    model.graph.node[0].attribute.append(helper.make_attribute("extra", tensor))
    return model.SerializeToString()


def _claims(dims: list[int]) -> bytes:
    """A Gemm whose weight claims `dims` numbers and holds none."""
    from onnx import TensorProto, helper

    weight = TensorProto(name="W", data_type=TensorProto.FLOAT)  # dims, and no data at all
    weight.dims.extend(dims)
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], axis=1),
                               helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _long_chain(n: int) -> bytes:
    nodes = [("Relu", ["x" if i == 0 else f"r{i - 1}"], [f"r{i}"], {}) for i in range(n)]
    nodes += [("Flatten", [f"r{n - 1}"], ["f"], {"axis": 1}), ("Gemm", ["f", "W"], ["y"], {"transB": 1})]
    return onnx_chain(nodes, {"W": np.full((3, 64), 0.01)})


def _flat(nodes: list[tuple], weights: dict, **kw) -> bytes:
    return onnx_chain([("Flatten", ["x"], ["f"], {"axis": 1})] + nodes, weights, **kw)


def onnx_cases() -> list[Case]:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(6)
    W, B = rng.normal(size=(3, 64)), np.zeros(3)
    conv_w = rng.normal(size=(4, 1, 3, 3))
    refuse = {
        "onnx_constant_external_relative.onnx": (_constant_external("core/paths.py"), "external file"),
        "onnx_constant_external_absolute.onnx": (_constant_external("/etc/passwd"), "external file"),
        "onnx_constant_external_climbing.onnx": (_constant_external("../../../../etc/hostname"), "external file"),
        "onnx_attribute_tensor_external.onnx": (_attribute_tensor_external(), "external file"),
        "onnx_node_without_inputs.onnx": (_flat([("Relu", [], ["r"], {}), ("Gemm", ["f", "W"], ["y"], {"transB": 1})],
                                                {"W": W}), "no input"),
        "onnx_maxpool_without_kernel.onnx": (onnx_chain([("MaxPool", ["x"], ["p"], {}), ("Flatten", ["p"], ["f"], {}),
                                                         ("Gemm", ["f", "W"], ["y"], {"transB": 1})], {"W": W}),
                                             "kernel_shape"),
        "onnx_conv_group_0.onnx": (onnx_chain([("Conv", ["x", "w"], ["c"], {"group": 0})], {"w": conv_w}), "group"),
        "onnx_conv_group_3.onnx": (onnx_chain([("Conv", ["x", "w"], ["c"], {"group": 3})], {"w": conv_w}), "group"),
        "onnx_conv_3d_weight.onnx": (onnx_chain([("Conv", ["x", "w"], ["c"], {})], {"w": rng.normal(size=(4, 1, 3))}),
                                     "2-d"),
        "onnx_constant_string.onnx": (_constant_graph(lambda: helper.make_attribute("value_string", "rm -rf")),
                                      "not a number"),
        "onnx_constant_string_tensor.onnx": (_constant_graph(lambda: helper.make_attribute(
            "value", helper.make_tensor("c", TensorProto.STRING, [1], [b"x"]))), "string"),
        "onnx_tensor_claims_1e10.onnx": (_claims([100_000, 100_000]), "claims"),
        "onnx_tensor_claims_more_than_held.onnx": (_claims([3, 64]), "claims"),
        "onnx_negative_dimension.onnx": (_claims([3, -64]), "negative"),
        "onnx_100000_nodes.onnx": (_long_chain(100_000), "operators"),
        "onnx_reshape_mixes_batch.onnx": (_flat([("Reshape", ["f", "s"], ["r"], {}), ("Gemm", ["r", "W"], ["y"],
                                                                                      {"transB": 1})],
                                                {"W": W, "s": np.array([2, 32])}), "batch"),
        "onnx_transpose_moves_batch.onnx": (onnx_chain([("Transpose", ["x"], ["t"], {"perm": [1, 0, 2, 3]})], {}),
                                            "batch"),
        "onnx_softmax_over_batch.onnx": (_flat([("Gemm", ["f", "W"], ["z"], {"transB": 1}),
                                                ("Softmax", ["z"], ["y"], {"axis": 0})], {"W": W}), "batch"),
        "onnx_reflect_pad.onnx": (onnx_chain([("Pad", ["x", "p"], ["q"], {"mode": "reflect"})],
                                             {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}), "constant padding"),
        "onnx_gemm_trans_a.onnx": (_flat([("Gemm", ["f", "W"], ["y"], {"transA": 1})], {"W": W}), "transA"),
        "onnx_add_two_constants.onnx": (_flat([("Add", ["a", "b"], ["c"], {}), ("Gemm", ["f", "W"], ["y"],
                                                                                 {"transB": 1})],
                                              {"a": B, "b": B, "W": W}), "constants"),
        "onnx_batchnorm_wrong_stats.onnx": (onnx_chain([("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"], {})],
                                                       {k: np.ones(5) for k in "gbmv"}), "statistics"),
        "onnx_out_of_order.onnx": (_flat([("Gemm", ["r", "W"], ["y"], {"transB": 1}), ("Relu", ["f"], ["r"], {})],
                                         {"W": W}), "order"),
        "onnx_input_4_pixels.onnx": (small_onnx(input_dims=["N", 1, 4, 4]), "8 to"),
        "onnx_if_subgraph.onnx": (onnx_chain([("If", ["x"], ["y"], {})], {}), "If"),
    }
    cases = [Case("model", name, data, pattern) for name, (data, pattern) in refuse.items()]
    residual = onnx_chain([("Conv", ["x", "w"], ["c"], {"pads": [1, 1, 1, 1]}), ("Relu", ["c"], ["r"], {}),
                           ("Add", ["r", "c"], ["s"], {}), ("GlobalAveragePool", ["s"], ["g"], {}),
                           ("Flatten", ["g"], ["f"], {"axis": 1}), ("Gemm", ["f", "W2"], ["y"], {"transB": 1})],
                          {"w": conv_w, "W2": rng.normal(size=(3, 4))})
    concat = onnx_chain([("Relu", ["x"], ["a"], {}), ("Sigmoid", ["x"], ["b"], {}), ("Concat", ["a", "b"], ["c"],
                                                                                       {"axis": 1}),
                         ("GlobalMaxPool", ["c"], ["g"], {}), ("Flatten", ["g"], ["f"], {"axis": 1}),
                         ("Gemm", ["f", "W2"], ["y"], {"transB": 1})], {"W2": rng.normal(size=(3, 2))})
    scaled = _constant_graph(lambda: helper.make_attribute("value_float", 0.5))
    cases += [Case("model", "onnx_residual_block.onnx", residual, lambda mc: _assert(len(mc[0].steps) == 6)),
              Case("model", "onnx_two_branches_concatenated.onnx", concat,
                   lambda mc: _assert(mc[1].model.kwargs["num_classes"] == 3)),
              Case("model", "onnx_constant_value_float.onnx", scaled, lambda mc: _assert(len(mc[0].steps) == 3)),
              Case("model", "onnx_2000_relus.onnx", _long_chain(2000), lambda mc: _assert(len(mc[0].steps) == 2002))]
    return cases


def keras_cases() -> list[Case]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    good = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with __import__("tempfile").TemporaryDirectory() as tmp:
        good.save(Path(tmp) / "m.keras")
        files = __import__("zipfile").ZipFile(Path(tmp) / "m.keras")
        members = {n: files.read(n) for n in files.namelist()}
    deep = dict(members, **{"config.json": ('{"a": ' * 100_000 + "1" + "}" * 100_000).encode()})
    wide = json.loads(members["config.json"])
    wide["config"]["layers"][0]["config"]["batch_shape"] = [None, 1024, 1024, 3]
    wide["config"]["layers"][-1]["config"]["units"] = 1_000_000
    return [Case("model", "keras_config_100000_deep.keras", _zip(deep), "nested"),
            Case("model", "keras_dense_of_a_trillion.keras",
                 _zip(dict(members, **{"config.json": json.dumps(wide).encode()})), "GB of weights")]


def image_cases() -> list[Case]:
    eps = io.BytesIO()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(eps, "EPS")
    ico = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(ico, "ICO")
    ps = b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    return [Case("image", "photo.eps", eps.getvalue(), "EPS format"),
            Case("image", "postscript.ps", ps, "EPS format|not a readable image"),
            Case("image", "icon.ico", ico.getvalue(), "ICO format")]


def photo_cases() -> list[Case]:
    """Images a page turns into a model input: decodable, but too small or thin to show anything once square."""
    shapes = {"strip_10000x1.png": (1, 10_000), "strip_1x100000.png": (100_000, 1), "tiny_5x5.png": (5, 5),
              "one_pixel_photo.png": (1, 1), "ribbon_30x2000.png": (30, 2000)}
    cases = [Case("photo", name, _png(np.full(shape, 90, np.uint8)), "too small or too thin")
             for name, shape in shapes.items()]
    return cases + [Case("photo", "ordinary_40x60.png", _png(np.full((40, 60), 90, np.uint8)),
                         lambda image: _assert(image.shape == (40, 60, 3)))]


def dataset_cases() -> list[Case]:
    good = _png(np.full((8, 8), 100, np.uint8))
    junk = {f"train/a/junk{i:03d}.png": b"not a png at all" for i in range(70)}
    files = {**junk, **{f"{s}/{c}/{i}.png": good for s in ("train", "test") for c in "ab" for i in range(2)}}
    tiny = {f"{s}/{c}/{i}.png": _png(np.full((1, 1), 100, np.uint8)) for s in ("train", "test") for c in "ab"
            for i in range(2)}
    return [Case("dataset", "first_70_entries_junk.zip", _zip(files),
                 lambda ds: _assert(len(ds.train_y) == 4 and any("skipped 70" in n for n in ds.notes))),
            Case("dataset", "one_pixel_images.zip", _zip(tiny), "pixels")]


def args_cases(tmp: Path) -> list[Case]:
    """Command lines of the third round: each refused with words before any work."""
    device = tmp / "flickr_device"
    (device / "Images").mkdir(parents=True, exist_ok=True)
    if not (device / "captions.txt").exists():
        os.symlink("/dev/zero", device / "captions.txt")
    out = ["--out", str(tmp / "out")]
    lines = {
        "evaluate --n 10^12": (["evaluate", "checkpoints/mnist_fast_cnn", "--n", "1000000000000"], "--n must"),
        "evaluate --n 1e12": (["evaluate", "checkpoints/mnist_fast_cnn", "--n", "1e12"], "invalid int"),
        "samples digits": (["samples", "digits"], "no sample set"),
        "train --model-option deep": (["train", "--model-option", "widths=" + "[" * 50_000 + "]" * 50_000, *out],
                                      "nested"),
        "train --model-option in_channels": (["train", "--model-option", "in_channels=3", *out], "set by CNN Studio"),
        "train --model-option bogus": (["train", "--model-option", "bogus=1", *out], "no option"),
        "train --model-option huge widths": (["train", "--dataset", "mnist", "--model-option",
                                              "widths=[4096,4096,4096]", "--batch-size", "512", *out], "GB"),
        "train --device cuda0": (["train", "--device", "cuda0", *out], "device must"),
        "train --device gpu:1": (["train", "--device", "gpu:1", *out], "device must"),
        "train --dataset folder:/": (["train", "--dataset", "folder:/", *out], "no images"),
        "train --dataset folder:/etc/passwd": (["train", "--dataset", "folder:/etc/passwd", *out], "not a .zip"),
        "train --out 5000 characters": (["train", "--epochs", "1", "--out", str(tmp / ("o" * 5000))], "cannot write"),
        "train-pair --n-train 10^7": (["train-pair", "--n-train", "10000000", *out], "GB"),
        "train-captioner --n-train 10^7": (["train-captioner", "--n-train", "10000000", *out], "GB"),
        "train-autoencoder huge widths": (["train-autoencoder", "--widths", "4096,4096,4096", *out], "GB"),
        "train-captioner device captions": (["train-captioner", "--flickr8k", str(device), "--epochs", "1", *out],
                                            "not a text file"),
        "sweep unknown kind": (["sweep", "--kind", "nope", "--trials", "1"], "unknown model kind"),
        "sweep autoencoder": (["sweep", "--kind", "autoencoder", "--space", "lr=uniform:0.001:0.01", "--trials", "1"],
                              "not swept"),
    }
    return [Case("args", name, argv, pattern) for name, (argv, pattern) in lines.items()]


def settings_cases() -> list[Case]:
    """Trainer settings that would start a run which then fails in its worker."""
    return [Case("settings", f"{kind}: {field}={str(value)[:40]}", (kind, field, value), pattern)
            for kind, field, value, pattern in (
                ("classifier", "dataset", "no_such_set", "unknown data set"),
                ("classifier", "dataset", "folder:/", "no images"),
                ("classifier", "dataset", "folder:/proc/self/environ", "not a .zip"),
                ("classifier", "model_options", {"widths": [4096] * 6}, "GB"),
                ("classifier", "model_options", {"in_channels": 3}, "set by CNN Studio"),
                ("classifier", "config.device", "gpu", "device must"),
                ("classifier", "model", "no_such_model", "model must be one of"),
                ("autoencoder", "widths", (4096, 4096, 4096), "GB"),
                ("autoencoder", "dataset", "folder:/", "no images"),
                ("pair", "n_train", 10_000_000, "GB"),
                ("crnn", "n_train", 10_000_000, "GB"),
                ("captioner", "n_train", 10_000_000, "GB"))]


RUN_NAMES = ["../../x", "a" * 5000, "/etc/passwd", "..", "\x00evil", "run name with spaces", "../", "~root", "%2e%2e"]
