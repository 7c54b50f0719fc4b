"""The ONNX operators CNN Studio rebuilds, each as a `torch.nn` module: `layer_of(node, constants, shapes, where)`.

Only plain tensor maths is on the list (`ALLOWED`); each builder checks the attributes it reads and refuses, with a
`ModelFileError` naming the operator, what it cannot rebuild (a missing kernel shape, a group that does not divide
the channels, a reshape of the batch dimension, asymmetric padding that no layer expresses). Constants (weights,
shapes, axes) come from the graph's constant table; every other input is a value the image flows through.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.models.keras_import import ModelFileError
from core.models.onnx_layers import ARITHMETIC, FUNCTIONS, Arithmetic, Function

UNARY = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh, "Softplus": nn.Softplus, "HardSwish": nn.Hardswish,
         "Identity": nn.Identity, "Dropout": nn.Identity}
ALLOWED = {"Conv", "Gemm", "MatMul", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
           "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Pad", "Softmax",
           "LeakyRelu", "Elu", "Gelu", "HardSigmoid", "Clip", "ReduceMean", "ReduceMax", *ARITHMETIC, *UNARY,
           *FUNCTIONS}


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _const(node, constants: dict, index: int, where: str, what: str) -> np.ndarray:
    name = node.input[index] if len(node.input) > index else ""
    if name not in constants:
        raise ModelFileError(f"{where}: its {what} must be a constant in the file.")
    return constants[name]


def _ints(values, where: str, what: str) -> list[int]:
    try:
        return [int(v) for v in np.asarray(values).reshape(-1)]
    except (TypeError, ValueError):
        raise ModelFileError(f"{where}: its {what} must be whole numbers.") from None


def _float_tensor(value) -> torch.Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32))


def _padding(a: dict, shape: tuple, kernel: list[int], strides: list[int], dilations: list[int], where: str):
    """(symmetric padding for the layer, explicit (left, right, top, bottom) padding before it, or None)."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(shape[-2:], kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
        (t, b), (lft, r) = pads
    elif auto in ("NOTSET", "VALID"):
        p = _ints(a.get("pads", [0, 0, 0, 0]), where, "pads") if auto == "NOTSET" else [0, 0, 0, 0]
        if len(p) != 4 or min(p) < 0:
            raise ModelFileError(f"{where}: pads {p} are not four non-negative numbers.")
        t, lft, b, r = p
    else:
        raise ModelFileError(f"{where}: auto_pad {auto!r} is not an ONNX padding mode.")
    return ((t, lft), None) if (t, lft) == (b, r) else ((0, 0), (lft, r, t, b))


def _conv(node, a, constants, shapes, where) -> nn.Module:
    w = _float_tensor(_const(node, constants, 1, where, "weight"))
    if w.dim() != 4:
        raise ModelFileError(f"{where}: only 2-d convolutions are supported (its weight is {list(w.shape)}).")
    groups = int(a.get("group", 1))
    cin = shapes[0][0]
    if groups < 1 or cin % groups or w.shape[0] % groups or w.shape[1] * groups != cin:
        raise ModelFileError(f"{where}: group {groups} does not divide its {cin} input channels into weights "
                             f"{list(w.shape)}.")
    kernel = _ints(a.get("kernel_shape", w.shape[2:]), where, "kernel_shape")
    strides, dilations = _ints(a.get("strides", [1, 1]), where, "strides"), _ints(a.get("dilations", [1, 1]), where, "dilations")
    if kernel != list(w.shape[2:]) or min(strides + dilations) < 1:
        raise ModelFileError(f"{where}: kernel_shape {kernel}, strides {strides} or dilations {dilations} do not fit "
                             f"its weights {list(w.shape)}.")
    padding, before = _padding(a, shapes[0], kernel, strides, dilations, where)
    bias = len(node.input) > 2 and node.input[2] != ""
    conv = nn.Conv2d(cin, w.shape[0], tuple(kernel), tuple(strides), padding, tuple(dilations), groups, bias=bias)
    conv.weight.data.copy_(w)
    if bias:
        conv.bias.data.copy_(_float_tensor(_const(node, constants, 2, where, "bias")).reshape(-1))
    return conv if before is None else nn.Sequential(nn.ZeroPad2d(before), conv)


def _dense(node, a, constants, shapes, where) -> nn.Module:
    w = _float_tensor(_const(node, constants, 1, where, "weight"))
    if w.dim() != 2:
        raise ModelFileError(f"{where}: its weight is {list(w.shape)}; a dense layer's is a matrix.")
    if node.op_type == "Gemm":
        if a.get("transA", 0):
            raise ModelFileError(f"{where}: Gemm with transA is not supported.")
        w = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))  # (out, in), as nn.Linear stores it
    else:
        w = w.T
    bias = node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] != ""
    if shapes[0][-1] != w.shape[1]:
        raise ModelFileError(f"{where}: its weight {list(w.shape)} does not fit its input {list(shapes[0])}.")
    linear = nn.Linear(w.shape[1], w.shape[0], bias=bias)
    linear.weight.data.copy_(w)
    if bias:
        b = _float_tensor(_const(node, constants, 2, where, "bias")).reshape(-1) * float(a.get("beta", 1.0))
        linear.bias.data.copy_(b.expand(w.shape[0]) if b.numel() == 1 else b)
    return linear


def _batch_norm(node, a, constants, shapes, where) -> nn.Module:
    parts = [_float_tensor(_const(node, constants, i, where, what)).reshape(-1)
             for i, what in enumerate(("scale", "bias", "mean", "variance"), 1)]
    channels = shapes[0][0]
    if any(len(p) != channels for p in parts) or (parts[3] < 0).any():
        raise ModelFileError(f"{where}: its statistics do not fit {channels} channels (or a variance is negative).")
    bn = (nn.BatchNorm2d if len(shapes[0]) == 3 else nn.BatchNorm1d)(channels, eps=float(a.get("epsilon", 1e-5)))
    for param, value in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), parts):
        param.data.copy_(value)
    return bn.eval()


def _pool(node, a, constants, shapes, where) -> nn.Module:
    if "kernel_shape" not in a:
        raise ModelFileError(f"{where}: a pooling layer needs kernel_shape.")
    kernel = _ints(a["kernel_shape"], where, "kernel_shape")
    strides = _ints(a.get("strides", [1] * len(kernel)), where, "strides")
    if len(kernel) != 2 or min(kernel + strides) < 1 or len(shapes[0]) != 3:
        raise ModelFileError(f"{where}: kernel {kernel} and strides {strides} are not a 2-d pooling window.")
    padding, before = _padding(a, shapes[0], kernel, strides, [1, 1], where)
    if before is not None or any(2 * p > k for p, k in zip(padding, kernel)):
        raise ModelFileError(f"{where}: padding that is uneven or wider than half the window is not supported.")
    ceil = bool(a.get("ceil_mode", 0))
    if node.op_type == "MaxPool":
        return nn.MaxPool2d(tuple(kernel), tuple(strides), padding, ceil_mode=ceil)
    return nn.AvgPool2d(tuple(kernel), tuple(strides), padding, ceil_mode=ceil,
                        count_include_pad=bool(a.get("count_include_pad", 0)))


def _arithmetic(node, a, constants, shapes, where) -> nn.Module:
    if len(node.input) != 2:
        raise ModelFileError(f"{where}: {node.op_type} takes two inputs.")
    first, second = (name in constants for name in node.input)
    if first and second:
        raise ModelFileError(f"{where}: both inputs are constants; fold them before exporting.")
    if not (first or second):
        return Arithmetic(node.op_type)
    constant = _float_tensor(constants[node.input[0 if first else 1]])
    if constant.dim() > len(shapes[0]) and constant.shape[0] != 1:
        raise ModelFileError(f"{where}: its constant {list(constant.shape)} would change the batch dimension.")
    return Arithmetic(node.op_type, constant, constant_first=first)


def _axes(node, a, constants, where, rank: int, index: int = 1) -> list[int]:
    """The axes of a Squeeze/Unsqueeze/Reduce (attribute, or constant input from opset 13), never the batch's."""
    raw = a["axes"] if "axes" in a else (_const(node, constants, index, where, "axes") if len(node.input) > index
                                         and node.input[index] else None)
    axes = list(range(1, rank)) if raw is None else [v % rank if v < 0 else v for v in _ints(raw, where, "axes")]
    if 0 in axes or any(not 0 <= v < rank for v in axes):
        raise ModelFileError(f"{where}: axes {axes} include the batch dimension or lie outside the tensor.")
    return axes


def _shape_op(node, a, constants, shapes, where) -> nn.Module:
    rank, op = len(shapes[0]) + 1, node.op_type
    if op == "Reshape":
        shape = _ints(_const(node, constants, 1, where, "shape"), where, "shape")
        each = shape[1:]  # one image's shape; the batch dimension must stay what it is
        if len(shape) < 2 or shape[0] not in (0, 1, -1) or each.count(-1) > (shape[0] != -1) or min(each) < -1:
            raise ModelFileError(f"{where}: a reshape to {shape} would mix images of the batch.")
        return Function("Reshape", shape=tuple(each))
    if op == "Transpose":
        perm = _ints(a.get("perm", list(range(rank))[::-1]), where, "perm")
        if sorted(perm) != list(range(rank)) or perm[0] != 0:
            raise ModelFileError(f"{where}: the permutation {perm} moves the batch dimension.")
        return Function("Transpose", dims=tuple(perm))
    if op == "Flatten":
        axis = int(a.get("axis", 1))
        if not 1 <= axis < rank + (axis == rank):
            raise ModelFileError(f"{where}: flattening from axis {axis} would mix images of the batch.")
        return nn.Flatten(axis) if axis == 1 else Function("Flatten", start=axis)
    if op in ("Squeeze", "Unsqueeze"):
        axes = _axes(node, a, constants, where, rank if op == "Squeeze" else rank + 1)
        return Function(op, dim=tuple(axes)) if op == "Squeeze" else Function(op, dims=tuple(axes))
    if op == "Concat":
        axis = int(a.get("axis", 1)) % rank
        if axis == 0 or len(shapes) != len([x for x in node.input if x]):
            raise ModelFileError(f"{where}: concatenation along the batch, or of constants, is not supported.")
        return Function("Concat", dim=axis)
    keep = bool(a.get("keepdims", 1))
    axes = _axes(node, a, constants, where, rank)
    return Function(op, dim=tuple(axes), keepdim=keep)


def _pad(node, a, constants, shapes, where) -> nn.Module:
    mode = a.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        raise ModelFileError(f"{where}: only constant padding is supported.")
    pads = _ints(a["pads"] if "pads" in a else _const(node, constants, 1, where, "pads"), where, "pads")
    rank = len(shapes[0]) + 1
    if len(pads) != 2 * rank or pads[0] or pads[rank] or min(pads) < 0:
        raise ModelFileError(f"{where}: pads {pads} pad the batch dimension or are negative.")
    value = float(np.asarray(constants[node.input[2]]).reshape(-1)[0]) if len(node.input) > 2 and node.input[2] \
        in constants else float(a.get("value", 0.0))
    torch_pads = [p for d in range(rank - 1, 0, -1) for p in (pads[d], pads[d + rank])]  # last dimension first
    return Function("Pad", pad=tuple(torch_pads), value=value)


def _activation(node, a, constants, shapes, where) -> nn.Module:
    op = node.op_type
    if op == "Softmax":
        axis = int(a.get("axis", -1))
        if axis % (len(shapes[0]) + 1) == 0:
            raise ModelFileError(f"{where}: a softmax across the batch mixes images.")
        return nn.Softmax(dim=axis)
    if op == "LeakyRelu":
        return nn.LeakyReLU(float(a.get("alpha", 0.01)))
    if op == "Elu":
        return nn.ELU(float(a.get("alpha", 1.0)))
    if op == "Gelu":
        approx = a.get("approximate", b"none")
        return nn.GELU(approximate=approx.decode() if isinstance(approx, bytes) else approx)
    if op == "HardSigmoid":
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        return nn.Sequential(Arithmetic("Mul", torch.tensor(alpha)), Arithmetic("Add", torch.tensor(beta)),
                             Function("Clip", min=0.0, max=1.0))
    bounds = [float(np.asarray(constants[x]).reshape(-1)[0]) if x in constants else None
              for x in list(node.input[1:3]) + [""] * (3 - len(node.input))]
    low = bounds[0] if bounds[0] is not None else a.get("min")
    high = bounds[1] if bounds[1] is not None else a.get("max")
    return Function("Clip", min=None if low is None else float(low), max=None if high is None else float(high))


BUILDERS = {"Conv": _conv, "Gemm": _dense, "MatMul": _dense, "BatchNormalization": _batch_norm, "MaxPool": _pool,
            "AveragePool": _pool, "Pad": _pad,
            **dict.fromkeys(ARITHMETIC, _arithmetic),
            **dict.fromkeys(("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "ReduceMean",
                             "ReduceMax"), _shape_op),
            **dict.fromkeys(("Softmax", "LeakyRelu", "Elu", "Gelu", "HardSigmoid", "Clip"), _activation)}


def layer_of(node, constants: dict, shapes: list[tuple], where: str) -> nn.Module:
    """The torch module of one allow-listed operator; `shapes` are its live inputs' shapes without the batch."""
    op = node.op_type
    if op in UNARY:
        return UNARY[op]()
    if op in FUNCTIONS:
        return Function(op)
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        if len(shapes[0]) != 3:
            raise ModelFileError(f"{where}: global pooling needs an image-shaped input, not {list(shapes[0])}.")
        return nn.AdaptiveAvgPool2d(1) if op == "GlobalAveragePool" else nn.AdaptiveMaxPool2d(1)
    try:
        return BUILDERS[op](node, _attrs(node), constants, shapes, where)
    except ModelFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: its attributes do not describe a layer ({str(exc)[:80]}).") from None
