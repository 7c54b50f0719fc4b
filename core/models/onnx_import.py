"""Uploaded ONNX classifiers, read as data and rebuilt from PyTorch layers.

An ONNX file is a protobuf: a graph of named operators with their weights. Nothing in it is executed. The
graph must be one chain from the image input to the class scores, every operator on an allow-list
(convolution, dense, pooling, batch norm, the common activations, flatten/reshape, dropout, and constant
add/sub/mul/div for input scaling), every weight stored inside the file (an `external_data` reference would
make the loader read a path on this server: refused), and the input one square image of at most
MAX_SIDE pixels. Each operator becomes the matching `torch.nn` layer, so feature maps and Grad-CAM work on
it as on CNN Studio's own models, and the result is checked against ONNX's own reference evaluator on
random inputs before it is used. A final softmax is dropped (the pages apply softmax to logits).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.models.keras_import import ModelFileError

MAX_SIDE = 1024  # input images up to this size; larger inputs would allocate without bound
ALLOWED = {"Conv", "Gemm", "MatMul", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Softmax", "MaxPool",
           "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "BatchNormalization", "Flatten", "Reshape",
           "Dropout", "Identity", "Add", "Sub", "Mul", "Div"}


class Affine(nn.Module):
    """x op constant (input scaling or a bias): the constant is a buffer, so it moves with the model."""

    def __init__(self, op: str, value: torch.Tensor):
        super().__init__()
        self.op = op
        self.register_buffer("value", value)

    def forward(self, x):
        return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[self.op](x, self.value)

    def extra_repr(self) -> str:
        return f"{self.op} {tuple(self.value.shape)}"


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads(attrs: dict, node) -> tuple[int, int]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise ModelFileError(f"operator {node.name or node.op_type}: auto_pad SAME is not supported; export with "
                             "explicit pads.")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise ModelFileError(f"operator {node.name or node.op_type}: asymmetric padding {pads} is not supported.")
    return pads[0], pads[1]


def _layer(node, weights: dict[str, np.ndarray], shape: tuple) -> nn.Module:
    """The torch layer of one allow-listed operator; `shape` is its input's shape without the batch."""
    op, a, name = node.op_type, _attrs(node), node.name or node.op_type
    consts = [torch.from_numpy(np.array(weights[i], dtype=np.float32)) for i in node.input[1:] if i in weights]
    if op == "Conv":
        w = consts[0]
        if w.dim() != 4:
            raise ModelFileError(f"operator {name}: only 2-d convolutions are supported.")
        groups = a.get("group", 1)
        conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(a.get("strides", [1, 1])),
                         padding=_pads(a, node), dilation=tuple(a.get("dilations", [1, 1])), groups=groups,
                         bias=len(consts) > 1)
        conv.weight.data.copy_(w)
        if len(consts) > 1:
            conv.bias.data.copy_(consts[1])
        return conv
    if op in ("Gemm", "MatMul"):
        w = consts[0] if op == "Gemm" and a.get("transB", 0) else consts[0].T  # (out, in), as nn.Linear stores it
        if op == "Gemm" and (a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0):
            raise ModelFileError(f"operator {name}: Gemm with transA, alpha or beta is not supported.")
        linear = nn.Linear(w.shape[1], w.shape[0], bias=len(consts) > 1)
        linear.weight.data.copy_(w)
        if len(consts) > 1:
            linear.bias.data.copy_(consts[1].reshape(-1))
        return linear
    if op in ("MaxPool", "AveragePool"):
        kernel, stride = tuple(a["kernel_shape"]), tuple(a.get("strides", a["kernel_shape"]))
        pool = nn.MaxPool2d if op == "MaxPool" else nn.AvgPool2d
        return pool(kernel, stride, padding=_pads(a, node), ceil_mode=bool(a.get("ceil_mode", 0)))
    if op == "BatchNormalization":
        bn = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(len(consts[0]), eps=a.get("epsilon", 1e-5))
        for param, value in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), consts):
            param.data.copy_(value)
        return bn.eval()
    if op in ("Add", "Sub", "Mul", "Div"):
        if len(consts) != 1:
            raise ModelFileError(f"operator {name}: {op} of two activations (a branch, e.g. a residual block) is "
                                 "not supported; only one chain of layers is.")
        return Affine(op, consts[0])
    if op in ("Flatten", "Reshape"):
        return nn.Flatten()
    simple = {"Relu": nn.ReLU(), "Sigmoid": nn.Sigmoid(), "Tanh": nn.Tanh(), "Elu": nn.ELU(a.get("alpha", 1.0)),
              "LeakyRelu": nn.LeakyReLU(a.get("alpha", 0.01)), "Softmax": nn.Softmax(dim=1), "Dropout": nn.Identity(),
              "Identity": nn.Identity(), "GlobalAveragePool": nn.AdaptiveAvgPool2d(1),
              "GlobalMaxPool": nn.AdaptiveMaxPool2d(1)}
    return simple[op]


def _weights(graph) -> dict[str, np.ndarray]:
    """The graph's constants (initializers and Constant nodes) by name, checked: stored in the file, finite."""
    import onnx
    from onnx import numpy_helper

    for tensor in graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            raise ModelFileError(f"weight {tensor.name!r} is stored in an external file; upload a model with its "
                                 "weights inside (onnx.save(model, path, save_as_external_data=False)).")
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for name, value in weights.items():
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ModelFileError(f"weight {name!r} holds NaN or infinite values; every prediction would be meaningless.")
    for node in graph.node:
        if node.op_type == "Constant":
            weights[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    return weights


def load_onnx(data: bytes) -> tuple[nn.Module, int, int, int, list[str]]:
    """ONNX bytes -> (PyTorch nn.Sequential in eval mode, input channels, input side, outputs, layer names)."""
    try:
        import onnx
    except ImportError:
        raise ModelFileError("reading ONNX files needs the `onnx` package (pip install -e . in the project folder).") from None
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ModelFileError(f"not a readable ONNX model ({str(exc)[:160] or type(exc).__name__}).") from None
    graph = proto.graph
    weights = _weights(graph)
    unknown = sorted({n.op_type for n in graph.node
                      if n.op_type not in ALLOWED | {"Constant"} or n.domain not in ("", "ai.onnx")})
    if unknown:
        raise ModelFileError(f"the model uses operator(s) {', '.join(unknown)}, which are not on the allow-list "
                             f"of layers CNN Studio rebuilds ({', '.join(sorted(ALLOWED))}).")
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelFileError(f"the model has {len(inputs)} inputs and {len(graph.output)} outputs; one image in, "
                             "one row of class scores out is supported.")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or None in dims[1:] or dims[1] not in (1, 3) or dims[2] != dims[3]:
        raise ModelFileError(f"the input is {dims}; one square image (batch, 1 or 3 channels, side, side) is supported.")
    channels, size = dims[1], dims[2]
    if not 8 <= size <= MAX_SIDE:
        raise ModelFileError(f"the input is {size}x{size} pixels; models taking 8 to {MAX_SIDE} pixels are supported.")
    model, current, shape, names = nn.Sequential(), inputs[0].name, (channels, size, size), []
    for i, node in enumerate(n for n in graph.node if n.op_type != "Constant"):
        if node.input[0] != current or any(x not in weights for x in node.input[1:] if x):
            raise ModelFileError(f"operator {node.name or node.op_type} does not continue one chain of layers from "
                                 "the input (branches are not supported).")
        layer = _layer(node, weights, shape)
        label = f"{i}_{node.op_type.lower()}"
        model.add_module(label, layer)
        names.append(f"{label}: {type(layer).__name__}")
        current = node.output[0]
        with torch.no_grad():
            try:
                shape = tuple(model(torch.zeros(1, channels, size, size)).shape[1:])
            except RuntimeError as exc:
                raise ModelFileError(f"operator {node.name or node.op_type} does not fit its input "
                                     f"({str(exc).splitlines()[0][:120]}).") from None
    if current != graph.output[0].name or len(shape) != 1:
        raise ModelFileError("the chain does not end in one row of class scores per image.")
    if isinstance(model[-1], nn.Softmax):
        del model[-1]  # the pages apply softmax to logits themselves
        names.pop()
    model.eval()
    _check_same(proto, model, channels, size)
    return model, channels, size, int(shape[0]), names


def _check_same(proto, model: nn.Module, channels: int, size: int) -> None:
    """The rebuilt model must give ONNX's reference evaluator's probabilities, or it is not used."""
    from onnx.reference import ReferenceEvaluator

    x = np.random.default_rng(0).random((2, channels, size, size), dtype=np.float32)
    want = np.asarray(ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: x})[0], dtype=np.float64)
    with torch.no_grad():
        got = torch.softmax(model(torch.from_numpy(x)), dim=1).double().numpy()
    if not np.allclose(want.sum(1), 1, atol=1e-3):
        want = torch.softmax(torch.from_numpy(want), dim=1).numpy()
    if want.shape != got.shape or not np.allclose(want, got, atol=1e-4):
        raise ModelFileError("the rebuilt model does not reproduce the ONNX model's outputs; it is not used.")
