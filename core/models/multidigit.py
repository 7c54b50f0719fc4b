"""Models that read more than one digit: a multi-task CNN for digit pairs and a CRNN for digit strings.

Owns `pair_cnn` (kind "multitask": a shared conv backbone with a classification head for both digits
and a regression head for both x-centres) and `crnn` (kind "sequence": conv features -> a
bidirectional GRU over image columns -> per-column class scores for CTC). Both return one tensor, so
the explain module's hooks and targets work on them unchanged: `pair_cnn` gives (B, 22) = 2 x 10 digit
logits, then the two x-centres in pixels; `crnn` gives (B, T, 11) scores per column, index 0 = blank.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.classifiers import conv_bn
from core.models.registry import register_model

BLANK = 0  # CTC blank; digit d is class d + 1


class PairNet(nn.Module):
    """Shared backbone -> head "digits" (2 x 10 logits) and head "positions" (2 x-centres, pixels)."""

    def __init__(self, *, features: nn.Module, digits: nn.Module, positions: nn.Module, x_scale: float):
        super().__init__()
        self.features, self.digits, self.positions = features, digits, positions
        self.x_scale = x_scale  # the position head works in units of x_scale pixels (a digit's width)

    def forward(self, x):  # (B, 1, 28, W) -> (B, 22)
        f = self.features(x)
        return torch.cat([self.digits(f), self.positions(f) * self.x_scale], 1)


def split_pair_output(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 22) -> digit logits (B, 2, 10) and x-centres in pixels (B, 2)."""
    return out[:, :20].reshape(-1, 2, 10), out[:, 20:22]


@register_model("pair_cnn", "Multi-task CNN: shared conv backbone, heads for both digits and both x-centres",
                kind="multitask")
def pair_cnn(*, in_channels: int = 1, image_size: int = 28, width: int = 64, channels=(32, 64, 128),
             hidden: int = 256, dropout: float = 0.2, x_scale: float = 28.0):
    c1, c2, c3 = channels
    features = nn.Sequential(
        *conv_bn(in_channels, c1), nn.MaxPool2d(2),  # 14 x W/2
        *conv_bn(c1, c2), *conv_bn(c2, c2), nn.MaxPool2d(2),  # 7 x W/4
        *conv_bn(c2, c3), nn.MaxPool2d(2), nn.Flatten())  # 3 x W/8, position kept by the flatten
    with torch.no_grad():
        n = features(torch.zeros(1, in_channels, image_size, width)).shape[1]

    def head(out: int) -> nn.Module:
        return nn.Sequential(nn.Linear(n, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, out))

    return PairNet(features=features, digits=head(20), positions=head(2), x_scale=x_scale)


class CRNN(nn.Module):
    """Conv features (B, C, 3, T = W / 8) -> columns (B, T, C * H') -> BiGRU -> (B, T, classes + 1) scores."""

    def __init__(self, *, features: nn.Module, feature_size: int, hidden: int, layers: int, num_classes: int):
        super().__init__()
        self.features = features
        self.project = nn.Linear(feature_size, hidden)
        self.rnn = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(2 * hidden, num_classes + 1)

    def forward(self, x):  # (B, 1, 28, W) -> (B, T, 11), T = W / 8
        f = self.features(x)
        cols = f.permute(0, 3, 1, 2).flatten(2)  # one feature vector per image column band
        out, _ = self.rnn(torch.relu(self.project(cols)))
        return self.classify(out)


@register_model("crnn", "CRNN: conv features -> bidirectional GRU over columns -> CTC", kind="sequence")
def crnn(*, in_channels: int = 1, image_size: int = 28, width: int = 192, num_classes: int = 10,
         channels=(32, 48, 96, 128), hidden: int = 128, layers: int = 1):
    c1, c2, c3, c4 = channels
    features = nn.Sequential(
        *conv_bn(in_channels, c1), nn.MaxPool2d(2),  # 14 x W/2
        *conv_bn(c1, c2), nn.MaxPool2d(2),  # 7 x W/4
        *conv_bn(c2, c3), nn.MaxPool2d(2),  # 3 x W/8
        *conv_bn(c3, c4))  # one column of features per 8 pixels of width
    with torch.no_grad():
        f = features(torch.zeros(1, in_channels, image_size, width))
    return CRNN(features=features, feature_size=f.shape[1] * f.shape[2], hidden=hidden, layers=layers,
                num_classes=num_classes)
