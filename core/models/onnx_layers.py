"""The torch modules an uploaded ONNX graph is rebuilt from, besides `torch.nn`'s own layers: element-wise arithmetic
with a constant on either side (a buffer, so it moves with the model) and the shape and maths functions ONNX names
(`core.models.onnx_ops` chooses them, `core.models.onnx_import` runs them).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARITHMETIC = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow,
              "Max": torch.maximum, "Min": torch.minimum}
FUNCTIONS = {"Erf": torch.erf, "Exp": torch.exp, "Sqrt": torch.sqrt, "Neg": torch.neg, "Abs": torch.abs,
             "Reciprocal": torch.reciprocal}


class Arithmetic(nn.Module):
    """x op y between two values, or a value and a constant (a buffer, on either side)."""

    def __init__(self, op: str, constant: torch.Tensor | None = None, constant_first: bool = False):
        super().__init__()
        self.op, self.constant_first = op, constant_first
        self.register_buffer("constant", constant)

    def forward(self, x, y=None):
        if self.constant is not None:
            x, y = (self.constant, x) if self.constant_first else (x, self.constant)
        return ARITHMETIC[self.op](x, y)

    def extra_repr(self) -> str:
        return self.op + ("" if self.constant is None else f" {tuple(self.constant.shape)}")


class Function(nn.Module):
    def __init__(self, op: str, **options):
        super().__init__()
        self.op, self.options = op, options

    def forward(self, *xs):
        return {**FUNCTIONS, "Clip": torch.clamp, "Reshape": _reshape, "Transpose": torch.permute,
                "Concat": lambda *t, dim: torch.cat(t, dim), "Squeeze": torch.squeeze, "Unsqueeze": _unsqueeze,
                "ReduceMean": torch.mean, "ReduceMax": torch.amax, "Pad": F.pad,
                "Flatten": lambda x, start: x.flatten(start)}[self.op](*xs, **self.options)

    def extra_repr(self) -> str:
        return f"{self.op} {self.options}" if self.options else self.op


def _reshape(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    """ONNX Reshape of one image's shape: 0 copies the input's dimension; the batch dimension stays."""
    return x.reshape(x.shape[0], *[x.shape[i + 1] if d == 0 else d for i, d in enumerate(shape)])


def _unsqueeze(x: torch.Tensor, dims: tuple) -> torch.Tensor:
    for d in sorted(dims):
        x = x.unsqueeze(d)
    return x
