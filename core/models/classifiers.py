"""Image classifiers: the seeds' networks and the project's fast and modern ones.

Owns the architectures registered for classification: `mlp` / `mlp_tuned`, `seed004_cnn`,
`seed003_cnn`, `seed001_cnn` (also seed 003's CIFAR-10 net), `fast_cnn`, `fast_cifar` (with its data-whitened stem), `resnet_small` and `dw_separable`. Every conv uses 'same' padding and the
classifier head is sized by a dry run, so each model works from 8x8 `digits` up to 64x64 photos.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.registry import flat_features, register_model


def conv_bn(cin: int, cout: int, *, kernel: int = 3, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """Conv (no bias) -> BatchNorm -> ReLU, 'same' padding."""
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class Classifier(nn.Module):
    """A feature extractor followed by a classification head: logits = head(features(x))."""

    def __init__(self, *, features: nn.Module, head: nn.Module):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x):  # (B, C, H, W) -> (B, num_classes)
        return self.head(self.features(x))


@register_model("mlp_tuned", "Tuned MLP: Flatten-256-Dropout-128", hidden=(256, 128), dropout=0.2)
@register_model("mlp", "Seed 004 MLP: Flatten-128-Dropout-64", hidden=(128, 64), dropout=0.2)
def mlp(*, in_channels: int, image_size: int, num_classes: int, hidden=(128, 64), dropout: float = 0.2):
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_channels * image_size * image_size
    for i, h in enumerate(hidden):
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if i == 0 and dropout:
            layers.append(nn.Dropout(dropout))  # the seed drops out after the first dense layer only
        width = h
    return Classifier(features=nn.Sequential(*layers), head=nn.Linear(width, num_classes))


@register_model("seed004_cnn", "Seed 004 CNN: two 3x3 conv 32 + max-pools + dense 128 (its tuning knobs as options)")
def seed004_cnn(*, in_channels: int, image_size: int, num_classes: int, width: int = 32, dense: int = 128,
                kernel: int = 3, dropout: float = 0.0):
    features = nn.Sequential(
        nn.Conv2d(in_channels, width, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(width, width, kernel, padding=kernel // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten())
    n = flat_features(features, in_channels, image_size)
    head = nn.Sequential(nn.Linear(n, dense), nn.ReLU(inplace=True), *([nn.Dropout(dropout)] if dropout else []),
                         nn.Linear(dense, num_classes))  # no Dropout module at 0: the shipped weights' names stay
    return Classifier(features=features, head=head)


@register_model("seed003_cnn", "Seed 003 MNIST net: one 3x3 conv layer of 8 kernels, max-pool, dense softmax")
def seed003_cnn(*, in_channels: int, image_size: int, num_classes: int, kernels: int = 8):
    features = nn.Sequential(nn.Conv2d(in_channels, kernels, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                             nn.Flatten())
    return Classifier(features=features, head=nn.Linear(flat_features(features, in_channels, image_size), num_classes))


@register_model("seed001_cnn", "Seed 001 CNN: conv 32/32, 64/64 (+128/128 for 32x32 colour), BatchNorm, dropout")
def seed001_cnn(*, in_channels: int, image_size: int, num_classes: int, dropout: float = 0.25,
                dense: int = 128, blocks: tuple | None = None):
    if blocks is None:  # the seed adds a third block for 32x32 colour photos (CIFAR-10)
        blocks = (32, 64, 128) if in_channels == 3 and image_size >= 32 else (32, 64)
    layers: list[nn.Module] = []
    cin = in_channels
    for width in blocks:
        layers += conv_bn(cin, width) + conv_bn(width, width) + [nn.MaxPool2d(2), nn.Dropout(dropout)]
        cin = width
    features = nn.Sequential(*layers, nn.Flatten())
    n = flat_features(features, in_channels, image_size)
    head = nn.Sequential(nn.Linear(n, dense, bias=False), nn.BatchNorm1d(dense), nn.ReLU(inplace=True),
                         nn.Dropout(2 * dropout), nn.Linear(dense, num_classes))
    return Classifier(features=features, head=head)


class SpaceToDepth(nn.Module):
    """(B, C, H, W) -> (B, 4C, H/2, W/2): a lossless 2x2 patchify, so the first conv runs at half size."""

    def forward(self, x):
        return nn.functional.pixel_unshuffle(x, 2)


@register_model("fast_cnn", "Speed model for MNIST-sized input: space-to-depth stem, three conv-pool-BN blocks")
def fast_cnn(*, in_channels: int, image_size: int, num_classes: int, widths=(24, 48, 96), dense: int = 256,
             dropout: float = 0.0, space_to_depth: bool = True):
    layers: list[nn.Module] = []
    cin, size = in_channels, image_size
    if space_to_depth and image_size % 2 == 0:
        layers.append(SpaceToDepth())
        cin, size = in_channels * 4, image_size // 2
    for width in widths:
        layers.append(nn.Conv2d(cin, width, 3, padding=1, bias=False))
        if size >= 4:  # pool while the map is big enough (28 -> 14 -> 7 -> 3), so 8x8 digits still work
            layers.append(nn.MaxPool2d(2))  # pooling before BN + ReLU: same function class, 4x less work
            size //= 2
        layers += [nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        cin = width
    features = nn.Sequential(*layers, nn.Flatten())
    n = flat_features(features, in_channels, image_size)
    head = nn.Sequential(nn.Linear(n, dense), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(dense, num_classes))
    return Classifier(features=features, head=head)


class Whiten(nn.Conv2d):
    """A frozen 2x2 conv that whitens the training images' 2x2 patches: one filter per eigenvector of the
    patches' covariance, scaled by 1/sqrt(eigenvalue), and its negative (so a ReLU-like activation after it
    loses nothing). Set from data by `fit`; its bias trains. (The stem of Keller Jordan's airbench.)"""

    def __init__(self, cin: int, eps: float = 5e-4):
        super().__init__(cin, 8 * cin, 2, bias=True)
        self.eps = eps
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from a (N, C, H, W) batch of normalised training images (a few thousand suffice)."""
        c = images.shape[1]
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # (N, C, H-1, W-1, 2, 2)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)  # in the conv weight's (C, kh, kw) order
        values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (vectors.T / (values + self.eps).sqrt()[:, None]).reshape(-1, c, 2, 2)
        self.weight.copy_(torch.cat([filters, -filters]))


def conv_pool_group(cin: int, cout: int, pool: bool = True) -> list[nn.Module]:
    """Conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU; as many of each conv's filters as it has inputs start
    as identities; the BatchNorms learn only their shifts. Without `pool` (a map already 1 pixel wide) no pooling."""
    first, second = nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.Conv2d(cout, cout, 3, padding=1, bias=False)
    for conv in (first, second):
        nn.init.dirac_(conv.weight[:conv.weight.shape[1]])
    norms = [nn.BatchNorm2d(cout, eps=1e-12), nn.BatchNorm2d(cout, eps=1e-12)]
    for norm in norms:
        norm.weight.requires_grad_(False)  # scale fixed at 1: the next conv's weights carry it
    return [first, *([nn.MaxPool2d(2)] if pool else []), norms[0], nn.GELU(), second, norms[1], nn.GELU()]


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


@register_model("fast_cifar", "Speed model for CIFAR-sized photos: whitened 2x2 stem, three conv-pool-BN groups")
def fast_cifar(*, in_channels: int, image_size: int, num_classes: int, widths=(64, 256, 256),
               logit_scale: float = 1 / 9):
    """The airbench94 network (Jordan, 2024) at any width: a data-whitened stem (see `Whiten`; the trainer calls
    `fit_to_data`), three groups that halve the map, a global max-pool and a scaled linear head."""
    layers: list[nn.Module] = [Whiten(in_channels), nn.GELU()]
    cin, size = 8 * in_channels, image_size - 1  # the 2x2 stem has no padding
    for width in widths:
        layers += conv_pool_group(cin, width, pool=size >= 2)  # 32 -> 31 -> 15 -> 7 -> 3; 8x8 digits: 7 -> 3 -> 1 -> 1
        cin, size = width, max(size // 2, 1)
    features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
    head = nn.Sequential(nn.Linear(cin, num_classes, bias=False), Scale(logit_scale))
    model = Classifier(features=features, head=head)
    model.fit_to_data = features[0].fit
    return model


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, with a 1x1 projection when the shape changes."""

    def __init__(self, *, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(cin, cout, stride=stride),
                                  nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


@register_model("resnet_small", "Small ResNet for CIFAR: 3 stages of basic blocks, global pooling")
def resnet_small(*, in_channels: int, image_size: int, num_classes: int, widths=(32, 64, 128),
                 blocks_per_stage: int = 2):
    layers: list[nn.Module] = conv_bn(in_channels, widths[0])
    cin = widths[0]
    for i, width in enumerate(widths):
        for j in range(blocks_per_stage):
            stride = 2 if (i > 0 and j == 0) else 1
            layers.append(BasicBlock(cin=cin, cout=width, stride=stride))
            cin = width
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(features=features, head=nn.Linear(cin, num_classes))


@register_model("dw_separable", "MobileNet-style CNN of depthwise-separable convolutions")
def dw_separable(*, in_channels: int, image_size: int, num_classes: int,
                 stages=((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))):
    layers: list[nn.Module] = conv_bn(in_channels, 32)
    cin = 32
    for width, stride in stages:
        layers += conv_bn(cin, cin, stride=stride, groups=cin)  # depthwise 3x3
        layers += conv_bn(cin, width, kernel=1)  # pointwise 1x1
        cin = width
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(features=features, head=nn.Sequential(nn.Dropout(0.2), nn.Linear(cin, num_classes)))
