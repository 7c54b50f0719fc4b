"""Uploaded ONNX classifiers, read as data and rebuilt from PyTorch layers.

An ONNX file is a protobuf: a graph of named operators with their weights. Nothing in it is executed. Every
operator must be on an allow-list of plain tensor maths (convolution, dense, pooling, batch norm, the common
activations, element-wise arithmetic, reshapes, concatenation), every tensor anywhere in the file (weights,
a Constant node's value, an attribute) must hold its data inside the file (an `external_data` reference would
make the loader read a path on this server: refused before any tensor is read), and the graph is bounded
before it is built (MAX_NODES operators, MAX_ELEMENTS numbers in its tensors, inputs of at most MAX_SIDE
pixels). Each operator becomes a `torch.nn` module of an `OnnxGraph`, which runs them in the file's order,
so feature maps and Grad-CAM work on it as on CNN Studio's own models (branches such as residual blocks
included); building it runs each new operator once on the previous ones' outputs (linear in the graph's
size). The result is checked against ONNX's own reference evaluator before it is used. A final softmax is
dropped (the pages apply softmax to logits). Every refusal is a `ModelFileError` naming the operator or
tensor and the problem.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.models.keras_import import ModelFileError
from core.models.onnx_ops import ALLOWED, layer_of

MAX_SIDE = 1024  # input images up to this size; larger inputs would allocate without bound
MAX_NODES = 5_000  # operators: a classifier never needs more; a 100,000-node chain is an attack on the importer
MAX_ELEMENTS = 100_000_000  # numbers in all the file's tensors together (400 MB as float32)
MAX_ACTIVATION = 50_000_000  # numbers in any one layer's output for one image
NUMERIC = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16}  # TensorProto types that are numbers or booleans


class OnnxGraph(nn.Module):
    """An ONNX graph as torch modules: `steps` are (module name, input value names, output value name), run in
    order; values named in `constants` are buffers."""

    def __init__(self, input_name: str, output_name: str):
        super().__init__()
        self.input_name, self.output_name = input_name, output_name
        self.layers = nn.ModuleDict()
        self.steps: list[tuple[str, list[str], str]] = []

    def forward(self, x):  # (B, C, H, W) -> (B, classes)
        values = {self.input_name: x}
        for label, inputs, output in self.steps:
            values[output] = self.layers[label](*[values[name] for name in inputs])
        return values[self.output_name]


def _tensors(graph, where: str = "the graph"):
    """(tensor, where it sits) for every TensorProto in the graph: initializers, sparse ones, node attributes
    (a Constant's value among them) and the tensors of any subgraph, however deep (iteratively)."""
    todo = [(graph, where)]
    while todo:
        g, at = todo.pop()
        for t in g.initializer:
            yield t, f"weight {t.name!r}"
        for s in g.sparse_initializer:
            yield s.values, f"sparse weight {s.values.name!r}"
            yield s.indices, f"sparse weight {s.values.name!r}"
        for node in g.node:
            name = f"operator {node.name or node.op_type}"
            for a in node.attribute:
                yield from ((t, f"{name}, attribute {a.name!r}") for t in ([a.t] if a.HasField("t") else []))
                yield from ((t, f"{name}, attribute {a.name!r}") for t in a.tensors)
                for s in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
                    yield s.values, f"{name}, attribute {a.name!r}"
                todo += [(sub, name) for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs)]


def _check_tensors(graph) -> None:
    """Refuse before reading any tensor: data outside the file, non-numeric data, sizes beyond the bounds, dims
    that claim more numbers than the file holds."""
    import onnx

    total = 0
    for t, where in _tensors(graph):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            raise ModelFileError(f"{where} refers to data in an external file ({_location(t)}); a model must hold all "
                                 "its numbers inside the file (onnx.save(model, path, save_as_external_data=False)).")
        if t.data_type not in NUMERIC:
            raise ModelFileError(f"{where} holds {onnx.TensorProto.DataType.Name(t.data_type).lower()} data; only "
                                 "numbers are read.")
        if any(d < 0 for d in t.dims):
            raise ModelFileError(f"{where} has a negative dimension {list(t.dims)}.")
        count = int(np.prod([int(d) for d in t.dims], dtype=object)) if len(t.dims) else 1
        total += count
        if count > MAX_ELEMENTS or total > MAX_ELEMENTS:
            raise ModelFileError(f"{where} claims {count:,} numbers (the file's tensors {total:,} in all); models of "
                                 f"up to {MAX_ELEMENTS:,} numbers are read.")
        stored = _stored(t)
        if stored is not None and stored < count:
            raise ModelFileError(f"{where} claims {count:,} numbers ({list(t.dims)}) but the file holds {stored:,}.")


def _location(t) -> str:
    entries = {e.key: e.value for e in t.external_data}
    return repr(entries.get("location", "?")[:80])


def _stored(t) -> int | None:
    """How many numbers the tensor's data fields hold (None when that cannot be told without reading them)."""
    from onnx import helper

    if t.raw_data:
        size = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        return len(t.raw_data) // max(size, 1)
    fields = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")
    held = sum(len(getattr(t, f)) for f in fields)
    return held if held or not any(t.dims) else 0


def _constants(graph) -> dict[str, np.ndarray]:
    """The graph's constants by name (initializers and Constant nodes), finite, as arrays (read after checking)."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            if len(node.output) != 1 or len(node.attribute) != 1:
                raise ModelFileError(f"operator {node.name or 'Constant'}: a Constant needs one output and one value.")
            values[node.output[0]] = _constant_value(node)
    for name, value in values.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ModelFileError(f"weight {name!r} holds NaN or infinite values; every prediction would be meaningless.")
    return values


def _constant_value(node) -> np.ndarray:
    from onnx import helper, numpy_helper

    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name in ("value_float", "value_floats", "value_int", "value_ints"):
        return np.asarray(helper.get_attribute_value(a), np.float32 if "float" in a.name else np.int64)
    raise ModelFileError(f"operator {node.name or 'Constant'}: a constant of kind {a.name!r} is not a number.")


def _parse(data: bytes):
    try:
        import onnx
    except ImportError:
        raise ModelFileError("reading ONNX files needs the `onnx` package (pip install -e . in the project folder).") from None
    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelFileError(f"not a readable ONNX model ({str(exc)[:160] or type(exc).__name__}).") from None


def _input(graph, constants: dict) -> tuple[str, int, int]:
    """(input name, channels, side) of the one image input."""
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelFileError(f"the model has {len(inputs)} inputs and {len(graph.output)} outputs; one image in, "
                             "one row of class scores out is supported.")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or None in dims[1:] or dims[1] not in (1, 3) or dims[2] != dims[3]:
        raise ModelFileError(f"the input is {dims}; one square image (batch, 1 or 3 channels, side, side) is supported.")
    if not 8 <= dims[2] <= MAX_SIDE:
        raise ModelFileError(f"the input is {dims[2]}x{dims[2]} pixels; models taking 8 to {MAX_SIDE} pixels are "
                             "supported.")
    return inputs[0].name, dims[1], dims[2]


def load_onnx(data: bytes) -> tuple[nn.Module, int, int, int, list[str], dict | None]:
    """ONNX bytes -> (PyTorch `OnnxGraph` in eval mode, input channels, input side, outputs, layer names, the
    file's CNN Studio metadata or None: see `core.models.onnx_export`)."""
    from core.models.onnx_export import metadata_of

    proto = _parse(data)
    graph = proto.graph
    if len(graph.node) > MAX_NODES:
        raise ModelFileError(f"the graph has {len(graph.node):,} operators; models of up to {MAX_NODES:,} are read.")
    unknown = sorted({n.op_type for n in graph.node
                      if n.op_type not in ALLOWED | {"Constant"} or n.domain not in ("", "ai.onnx")})
    if unknown:
        raise ModelFileError(f"the model uses operator(s) {', '.join(u[:40] for u in unknown[:5])}, which are not on "
                             f"the allow-list of layers CNN Studio rebuilds ({', '.join(sorted(ALLOWED))}).")
    _check_tensors(graph)
    constants = _constants(graph)
    name, channels, size = _input(graph, constants)
    model, names = _build(graph, constants, name, torch.zeros(1, channels, size, size))
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, channels, size, size))
    if out.dim() != 2:
        raise ModelFileError(f"the graph ends in an output of shape {list(out.shape)}; one row of class scores per "
                             "image is supported.")
    _check_same(proto, model, channels, size)
    return model, channels, size, int(out.shape[1]), names, metadata_of(proto)


def _build(graph, constants: dict, input_name: str, example: torch.Tensor) -> tuple[OnnxGraph, list[str]]:
    """The graph as an OnnxGraph, each operator run once on the example's values as it is added."""
    model, names = OnnxGraph(input_name, graph.output[0].name), []
    values = {input_name: example}
    for i, node in enumerate(n for n in graph.node if n.op_type != "Constant"):
        where = f"operator {node.name or node.op_type} ({node.op_type})"
        inputs = [x for x in node.input if x]
        if not inputs or len(node.output) < 1:
            raise ModelFileError(f"{where} has no input or no output.")
        live = [x for x in inputs if x in values]
        missing = [x for x in inputs if x not in values and x not in constants]
        if not live and not missing and node.op_type == "Identity":  # an exporter's alias of a weight
            constants[node.output[0]] = constants[inputs[0]]
            continue
        if not live and not missing:
            raise ModelFileError(f"{where}: all its inputs are constants; fold it into one constant before exporting "
                                 "(onnx-simplifier does).")
        if missing or not live:
            raise ModelFileError(f"{where} reads {missing[0] if missing else inputs[0]!r}, which no earlier operator "
                                 "made from the image (the operators must be in order, from the input).")
        layer = layer_of(node, constants, [tuple(values[x].shape[1:]) for x in live], where)
        label = f"{i}_{node.op_type.lower()}"
        model.layers[label] = layer
        model.steps.append((label, live, node.output[0]))
        names.append(f"{label}: {type(layer).__name__}")
        values[node.output[0]] = _run(layer, [values[x] for x in live], where)
    if graph.output[0].name not in values:
        raise ModelFileError("no operator makes the graph's output from the image: a model must compute one row of class "
                             "scores from its input.")
    last = model.steps[-1] if model.steps else None
    if last is not None and last[2] == model.output_name and isinstance(model.layers[last[0]], nn.Softmax):
        del model.layers[last[0]]  # the pages apply softmax to logits themselves
        model.steps.pop()
        model.output_name = last[1][0]
        names.pop()
    return model, names


def _run(layer: nn.Module, inputs: list[torch.Tensor], where: str) -> torch.Tensor:
    try:
        with torch.no_grad():
            out = layer.eval()(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        raise ModelFileError(f"{where} does not fit its input {[list(t.shape) for t in inputs]} "
                             f"({str(exc).splitlines()[0][:120]}).") from None
    if out.numel() > MAX_ACTIVATION:
        raise ModelFileError(f"{where} outputs {out.numel():,} numbers for one image; at most {MAX_ACTIVATION:,} fit.")
    return out


def _check_same(proto, model: nn.Module, channels: int, size: int) -> None:
    """The rebuilt model must give ONNX's reference evaluator's probabilities, or it is not used."""
    from onnx.reference import ReferenceEvaluator

    x = np.random.default_rng(0).random((2, channels, size, size), dtype=np.float32)
    try:
        want = np.asarray(ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: x})[0], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - the reference evaluator refuses what the file does not define
        raise ModelFileError(f"ONNX's own evaluator cannot run this model ({str(exc).splitlines()[0][:120]}).") from None
    with torch.no_grad():
        got = torch.softmax(model(torch.from_numpy(x)), dim=1).double().numpy()
    if not np.allclose(want.sum(1), 1, atol=1e-3):
        want = torch.softmax(torch.from_numpy(want), dim=1).numpy()
    if want.shape != got.shape or not np.allclose(want, got, atol=1e-4):
        raise ModelFileError("the rebuilt model does not reproduce the ONNX model's outputs; it is not used.")
