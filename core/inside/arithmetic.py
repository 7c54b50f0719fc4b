"""The arithmetic of one output: how a single number of a conv layer's map is computed from its input.

Owns the worked example CNN Explainer animates for its one fixed network, for any Conv2d of any model here (any
kernel, stride, dilation, padding mode and group count): the window of the conv's own input that the unit reads,
across its input channels, the kernel, their element-wise products, the sum, the bias; then the steps that follow
the conv in the forward pass as long as they map this one value (batch norm with its running statistics, an
activation, dropout, a pooling whose window holds it), each step checked against the value the model itself
produced there, so what is shown is what ran, not a reconstruction that might drift from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.inside.explain import ACTIVATIONS
from core.models import evaluating


@dataclass
class Step:
    name: str  # the module's path
    what: str  # the operation, in words, with its numbers
    value: float  # the value after this step
    position: tuple[int, int]  # where it sits in this step's output map


@dataclass
class Arithmetic:
    layer: str
    channel: int
    position: tuple[int, int]  # row, column in the conv's output map
    input_channels: list[int]  # the conv input's channels this unit reads (its group)
    window: np.ndarray  # (channels, kh, kw) the input values read (padding included)
    kernel: np.ndarray  # (channels, kh, kw)
    products: np.ndarray  # window x kernel
    bias: float
    conv_value: float  # the conv's own output at this position
    input_box: tuple[int, int, int, int]  # rows y0:y1, columns x0:x1 of the conv's input (may run into padding)
    reads_image: bool = False  # whether the conv's input is the (normalised) image itself
    steps: list[Step] = field(default_factory=list)  # what follows the conv, each checked against the model

    @property
    def total(self) -> float:
        return float(self.products.sum(dtype=np.float64))

    @property
    def per_channel(self) -> np.ndarray:
        """Each input channel's share of the sum."""
        return self.products.reshape(len(self.products), -1).sum(1, dtype=np.float64)

    @property
    def final(self) -> float:
        return self.steps[-1].value if self.steps else self.conv_value


def _pads(conv: nn.Conv2d) -> list[int]:
    """F.pad's [left, right, top, bottom] for the conv's padding (numbers, or 'same' / 'valid')."""
    if conv.padding == "valid":
        return [0, 0, 0, 0]
    if conv.padding == "same":
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        return [total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2]
    ph, pw = conv.padding
    return [pw, pw, ph, ph]


def _inner_padding(conv: nn.Module) -> nn.Module | None:
    """The padding module a conv applies to its input inside its own forward (EfficientNet's static 'same'
    padding), if it has one."""
    return next((m for m in conv.children() if "Pad" in type(m).__name__), None)


def _following(model: nn.Module, layer: str) -> list[tuple[str, nn.Module]]:
    """The leaf modules defined after `layer`, up to the first that does not map values one by one or by blocks."""
    leaves = [(n, m) for n, m in model.named_modules() if n and (n == layer or not list(m.children()))
              and not n.startswith(layer + ".")]
    names = [n for n, _ in leaves]
    out = []
    for name, module in leaves[names.index(layer) + 1:]:
        if not isinstance(module, ACTIVATIONS + (nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Identity,
                                                 nn.MaxPool2d, nn.AvgPool2d)):
            break
        out.append((name, module))
    return out


def _record(model: nn.Module, x: torch.Tensor, layer: str, after: list[str]) -> dict[str, torch.Tensor]:
    """One forward pass: the conv's input and the outputs of the conv and of the modules after it (copies: an
    in-place activation would overwrite them)."""
    modules, got, handles = dict(model.named_modules()), {}, []
    pad = _inner_padding(modules[layer])
    if pad is not None:  # a conv that pads its input itself (TensorFlow's 'same'): read the padded input
        handles.append(pad.register_forward_hook(lambda _m, _i, out: got.__setitem__("input", out.detach().clone())))
    else:
        handles.append(modules[layer].register_forward_pre_hook(
            lambda _m, inputs: got.__setitem__("input", inputs[0].detach().clone())))
    for name in [layer] + after:
        handles.append(modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: got.__setitem__(name, out.detach().clone())))
    try:
        with evaluating(model), torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return got


def _step(module: nn.Module, value: float, previous: torch.Tensor, channel: int, pos: tuple[int, int]):
    """(what, new value, new position) of one module applied to `value` at `pos` of `previous`; None when the
    module does not map this one value (an overlapping or padded pooling)."""
    if isinstance(module, nn.BatchNorm2d):
        mean, var = float(module.running_mean[channel]), float(module.running_var[channel])
        w = float(module.weight[channel].detach()) if module.affine else 1.0
        b = float(module.bias[channel].detach()) if module.affine else 0.0
        out = (value - mean) / np.sqrt(var + module.eps) * w + b
        return f"batch norm: ({value:.4f} - {mean:.4f}) / sqrt({var:.4f} + {module.eps:g}) x {w:.4f} + {b:.4f}", \
            out, pos
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = module.kernel_size, module.stride, module.padding
        k, s = (k, k) if isinstance(k, int) else tuple(k), (s, s) if isinstance(s, int) else tuple(s)
        if k != s or p not in (0, (0, 0)) or getattr(module, "dilation", 1) not in (1, (1, 1)):
            return None
        row, col = pos[0] // k[0], pos[1] // k[1]
        if (row + 1) * k[0] > previous.shape[2] or (col + 1) * k[1] > previous.shape[3]:
            return None  # a border unit the pooling drops
        block = previous[0, channel, row * k[0]:(row + 1) * k[0], col * k[1]:(col + 1) * k[1]]
        take = "max" if isinstance(module, nn.MaxPool2d) else "mean"
        out = float(block.max() if take == "max" else block.mean())
        cells = ", ".join(f"{v:.4f}" for v in block.flatten().tolist())
        return f"{take} of its {k[0]}x{k[1]} block [{cells}]", out, (row, col)
    if isinstance(module, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return f"{type(module).__name__} (does nothing in evaluation)", value, pos
    with torch.no_grad():
        out = float(module(torch.tensor([value], dtype=torch.float32))[0])
    return f"{type(module).__name__}({value:.4f})", out, pos


def explain_unit(model: nn.Module, x: torch.Tensor, layer: str, channel: int, row: int, col: int) -> Arithmetic:
    """The arithmetic of output (channel, row, col) of conv layer `layer` for the normalised input x (1, C, H, W)."""
    modules = dict(model.named_modules())
    conv = modules.get(layer)
    if not isinstance(conv, nn.Conv2d):
        raise KeyError(f"{layer!r} is not a conv layer of this model")
    after = _following(model, layer)
    got = _record(model, x, layer, [n for n, _ in after])
    out = got[layer]
    if not (0 <= channel < out.shape[1] and 0 <= row < out.shape[2] and 0 <= col < out.shape[3]):
        raise IndexError(f"no output ({channel}, {row}, {col}) in a {tuple(out.shape[1:])} map")
    pads = [0, 0, 0, 0] if _inner_padding(conv) is not None else _pads(conv)
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    padded = F.pad(got["input"], pads, mode=mode)
    per_group = conv.in_channels // conv.groups
    group = channel // (conv.out_channels // conv.groups)
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    y0, x0 = row * sh, col * sw
    window = padded[0, group * per_group:(group + 1) * per_group, y0:y0 + dh * (kh - 1) + 1:dh,
                    x0:x0 + dw * (kw - 1) + 1:dw].double()
    kernel = conv.weight[channel].detach().double()
    bias = float(conv.bias[channel].detach()) if conv.bias is not None else 0.0
    result = Arithmetic(layer, channel, (row, col), list(range(group * per_group, (group + 1) * per_group)),
                        window.numpy(), kernel.numpy(), (window * kernel).numpy(), bias,
                        float(out[0, channel, row, col]),
                        (y0 - pads[2], x0 - pads[0], y0 - pads[2] + dh * (kh - 1) + 1, x0 - pads[0] + dw * (kw - 1) + 1))
    result.reads_image = got["input"].shape == x.shape and bool(torch.equal(got["input"], x))
    value, pos, previous = result.conv_value, (row, col), out
    for name, module in after:
        done = _step(module, value, previous, channel, pos)
        if done is None:
            break
        what, new, new_pos = done
        seen = float(got[name][0, channel, new_pos[0], new_pos[1]])
        if abs(new - seen) > 1e-4 * max(1.0, abs(seen)):  # not what the model computed next: stop here
            break
        result.steps.append(Step(name, what, seen, new_pos))
        value, pos, previous = seen, new_pos, got[name]
    return result
