"""Issue 29 in core: feature visualisation beats the test images, the receptive field is the network's, the
top images are ranked and outlined, one output's arithmetic is the layer's own number, the atlas is cached per
model, and `python -m core visualize` writes its picture. Shipped checkpoints and samples only: no data set."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import core.kinds  # noqa: F401
from core import paths
from core.cli import main
from core.data.samples import load_sample
from core.engine.checkpoint import load_checkpoint
from core.inside.arithmetic import _record, explain_unit
from core.inside.atlas import cached_atlas, compute_atlas, model_digest
from core.inside.channels import Target, activation, own_copy
from core.inside.explain import conv_layer_names
from core.inside.featvis import visualize
from core.inside.units import channel_summary, outline, receptive_field, top_images


@pytest.fixture(scope="module")
def mnist():
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    return model, card, load_sample("mnist").test_x[:1000]


def test_visualisations_excite_their_channels_more_than_any_of_1000_test_images(mnist):
    """12 channels spread over each conv layer of the shipped MNIST CNN (the bench does all, and CIFAR-10's)."""
    model, card, images = mnist
    for layer in conv_layer_names(model):
        best = channel_summary(model, card, layer, images).mean.max(0).values.numpy()
        count = dict(model.named_modules())[layer].out_channels
        channels = list(range(0, count, count // 12))[:12]
        result = visualize(model, card, layer, channels)
        assert result.images.shape == (len(channels), 1, 28, 28) and result.images.dtype == np.uint8
        beat = (result.activations > best[channels]).mean()
        assert beat >= 0.9, (layer, beat)
        assert result.images.std() > 20  # a pattern, not a flat grey
        # the activation reported is the one the model gives the stored picture
        again = activation(model, card, Target(layer, channels[0]), torch.from_numpy(result.images[:1]))
        assert abs(float(again[0]) - result.activations[0]) < 0.05 * max(1.0, abs(result.activations[0]))


def test_a_class_and_several_diverse_images_of_a_colour_model():
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "cifar10_fast_cifar")
    logits = visualize(model, card, None, [3], steps=64)
    assert logits.images.shape == (1, 3, 32, 32) and logits.activations[0] > 5  # the cat logit, far above a photo's
    twins = visualize(model, card, "features.2", [5], per_channel=3, diversity=0.5, steps=64)
    flat = twins.images.reshape(3, -1).astype(float)
    assert min(np.abs(flat[i] - flat[j]).mean() for i in range(3) for j in range(i)) > 10  # three different images


def test_the_receptive_field_is_measured_from_the_network():
    """mnist_seed004: 3x3 conv (pad 1), ReLU, 2x2 pool, 3x3 conv: its units see 3 px, then 3 + 1 + 2 x 2 = 8 px."""
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_seed004")
    first, second = receptive_field(model, card, "features.0"), receptive_field(model, card, "features.3")
    assert first.extent == 3 and first.stride == (1.0, 1.0)
    assert second.extent == 8 and second.stride == (2.0, 2.0)
    y0, x0, y1, x1 = second.at(0, 0)  # a corner unit's field is clipped to the image
    assert (y0, x0) == (0, 0) and 0 < y1 <= 8 and 0 < x1 <= 8


def test_top_images_are_ranked_and_their_patch_is_outlined(mnist):
    model, card, images = mnist
    layer, channel = "features.5", 7
    summary = channel_summary(model, card, layer, images)
    found = top_images(summary, channel, receptive_field(model, card, layer))
    assert len(found.top) == len(found.bottom) == 9 and found.searched == 1000
    assert found.top_values == sorted(found.top_values, reverse=True)
    assert found.bottom_values == sorted(found.bottom_values)
    assert found.top_values[0] == pytest.approx(float(summary.peak[:, channel].max()))
    assert summary.best(channel, "mean") == pytest.approx(
        float(activation(model, card, Target(layer, channel), images).max()), rel=1e-5)
    for box in found.top_boxes:
        y0, x0, y1, x1 = box
        assert 0 <= y0 < y1 <= 28 and 0 <= x0 < x1 <= 28
    framed = outline(images[found.top[0]].numpy(), found.top_boxes[0], side=84)
    y0, x0 = found.top_boxes[0][:2]
    assert framed.shape == (84, 84, 3) and tuple(framed[y0 * 3, x0 * 3]) == (228, 87, 46)


class Odd(nn.Module):
    """Every conv variant the arithmetic must follow: groups, stride, dilation, reflect and 'same' padding, bias."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1, padding_mode="reflect")
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.GELU()
        self.b = nn.Conv2d(8, 8, 3, padding="same", dilation=2, groups=4, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.pool(self.b(self.act(self.bn(self.a(x))))))


@pytest.mark.parametrize("name", ["odd", "mnist_fast_cnn", "cifar10_fast_cifar", "mnist_seed004"])
def test_the_arithmetic_of_one_output_is_the_layers_own_number(name):
    torch.manual_seed(0)
    if name == "odd":
        model = Odd().eval()
        model.bn.running_mean.uniform_(-1, 1), model.bn.running_var.uniform_(0.5, 2)
        x = torch.randn(1, 3, 17, 17)
    else:
        model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / name)
        size, channels = card.model.kwargs["image_size"], card.model.kwargs["in_channels"]
        x = torch.randn(1, channels, size, size)
    rng = np.random.default_rng(0)
    for layer in conv_layer_names(model):
        out = _record(model, x, layer, [])[layer][0]
        for _ in range(6):
            c, r, k = (int(rng.integers(n)) for n in out.shape)
            unit = explain_unit(model, x, layer, c, r, k)
            assert unit.total + unit.bias == pytest.approx(float(out[c, r, k]), abs=1e-4)
            assert unit.per_channel.sum() == pytest.approx(unit.total, abs=1e-9)
            assert unit.window.shape == unit.kernel.shape == unit.products.shape
    unit = explain_unit(model, x, conv_layer_names(model)[0], 1, 2, 3)
    assert unit.reads_image == (name in ("odd", "mnist_seed004", "cifar10_fast_cifar"))  # mnist_fast_cnn: space-to-depth
    assert unit.steps, "the steps after the first conv (batch norm, activation, pooling) are followed"
    last = unit.steps[-1]
    recorded = _record(model, x, conv_layer_names(model)[0], [last.name])[last.name][0, 1]
    assert unit.final == pytest.approx(float(recorded[last.position]), abs=1e-5)
    with pytest.raises(IndexError):
        explain_unit(model, x, conv_layer_names(model)[0], 10_000, 0, 0)


def test_the_atlas_is_cached_per_model_and_layer(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_seed004")
    digest, seen = model_digest(model), []
    assert cached_atlas(digest, "features.0") is None
    atlas = compute_atlas(model, card, "features.0", digest, seen.append)
    assert atlas["images"].shape == (32, 1, 28, 28) and seen[-1] == 1.0 and seen == sorted(seen)
    again = cached_atlas(digest, "features.0")
    assert np.array_equal(again["images"], atlas["images"])
    twin = own_copy(model)
    assert model_digest(twin) == digest
    with torch.no_grad():
        twin.features[0].weight[0, 0, 0, 0] += 1e-3
    other = own_copy(twin)  # a new object: its digest is computed afresh
    assert model_digest(other) != digest and cached_atlas(model_digest(other), "features.0") is None


def test_the_visualize_command(tmp_path, capsys):
    ckpt = str(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    out = tmp_path / "v.png"
    assert main(["visualize", ckpt, "--layer", "features.5", "--channel", "3", "--steps", "64", "--out",
                 str(out)]) == 0
    line = capsys.readouterr().out
    assert out.is_file() and "features.5 channel 3: activation" in line and "the most exciting of 1000 test" in line
    from PIL import Image
    assert Image.open(out).size[0] >= 196
    assert main(["visualize", ckpt, "--class", "7", "--steps", "16", "--out", str(out)]) == 0
    assert "class 7: activation" in capsys.readouterr().out
    for bad in (["--layer", "nope"], ["--layer", "features.5", "--channel", "96"], ["--class", "10"]):
        assert main(["visualize", ckpt, *bad, "--out", str(out)]) == 2
        assert "error:" in capsys.readouterr().err
    assert main(["visualize", str(paths.SHIPPED_CHECKPOINTS / "fashion_ae"), "--layer", "x"]) == 2
