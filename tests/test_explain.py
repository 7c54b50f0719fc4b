"""Explainability against cases whose answer is known by construction, and hook hygiene."""
import pytest
import torch
from torch import nn

from core.inside.explain import activations, class_target, grad_cam, inspectable_layers, occlusion, recording, saliency


def blob_model():
    """Identity conv -> ReLU -> global average -> class 0 likes the ink, class 1 dislikes it."""
    conv = nn.Conv2d(1, 1, 1)
    head = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def blob_image():
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2:6, 9:13] = 1.0
    return x


def test_grad_cam_finds_the_evidence():
    model, x = blob_model(), blob_image()
    cam = grad_cam(model, x, class_target(0), layer="0")
    assert cam.shape == (1, 16, 16)
    assert cam[0, 2:6, 9:13].min() > 0.9 and cam[0, 10:, :8].max() < 0.1
    against = grad_cam(model, x, class_target(1), layer="0")
    assert against.abs().max() == 0  # negative evidence is clipped by the ReLU of Grad-CAM


def test_hires_cam_tells_positions_apart_where_grad_cam_cannot():
    """Two blobs; a head that reads the flattened map and only looks at the left half. Grad-CAM weights the
    channel by its average gradient and so lights up both blobs; HiResCAM lights only the one used."""
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    head = nn.Linear(8 * 16, 1, bias=False)
    with torch.no_grad():
        head.weight.copy_((torch.arange(16) < 8).float().repeat(8)[None])  # weights 1 on columns 0..7 only
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head)
    x = torch.zeros(1, 1, 8, 16)
    x[0, 0, 2:6, 1:5] = 1.0  # used by the head
    x[0, 0, 2:6, 10:14] = 1.0  # ignored by the head
    plain = grad_cam(model, x, class_target(0), layer="0")
    hires = grad_cam(model, x, class_target(0), layer="0", hires=True)
    assert plain[0, 2:6, 10:14].min() > 0.9  # Grad-CAM cannot tell the two blobs apart
    assert hires[0, 2:6, 1:5].min() > 0.9 and hires[0, 2:6, 10:14].max() < 0.1


def test_saliency_of_a_linear_model_is_its_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    sal = saliency(model, torch.randn(1, 1, 4, 4), class_target(2))
    w = model[1].weight[2].detach().abs().view(4, 4)
    assert torch.allclose(sal[0], (w - w.min()) / (w.max() - w.min()), atol=1e-6)


def test_occlusion_drop_is_largest_over_the_evidence():
    model, x = blob_model(), blob_image()
    drop = occlusion(model, x, class_target(0), patch=4, stride=2)
    assert drop.shape == (16, 16)  # per pixel: the mean drop over the squares that hide it
    r, c = divmod(int(drop.argmax()), 16)
    assert 2 <= r < 6 and 9 <= c < 13  # on the blob
    assert drop.min() >= 0 and drop[12:, :6].abs().max() == 0


# The hand-written implementations CNN Studio used before Captum, kept as references: Captum's maps must match
# them on these models (the by-construction blob and the registry's networks).

def reference_cam(model, x, target, layer, hires=False):
    import torch.nn.functional as F

    with torch.enable_grad(), recording(model, [layer]) as store:
        x = x.detach().requires_grad_(True)
        score = target(model(x)).sum()
        act = store[layer]
        (grads,) = torch.autograd.grad(score, act)
    weights = grads if hires else grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    flat = cam.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(cam)


def reference_saliency(model, x, target):
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        target(model(x)).sum().backward()
    m = x.grad.abs().amax(dim=1).flatten(1)
    lo, hi = m.min(1, keepdim=True).values, m.max(1, keepdim=True).values
    return ((m - lo) / (hi - lo).clamp_min(1e-12)).view(x.shape[0], *x.shape[2:])


def reference_occlusion_per_pixel(model, x, target, patch, stride):
    """The old per-position drops, spread back onto the pixels each square covered and averaged."""
    _, _, h, w = x.shape
    total, count = torch.zeros(h, w), torch.zeros(h, w)
    with torch.no_grad():
        base = target(model(x))[0]
        for top in range(0, h - patch + 1, stride):
            for left in range(0, w - patch + 1, stride):
                v = x.clone()
                v[:, :, top:top + patch, left:left + patch] = 0
                total[top:top + patch, left:left + patch] += base - target(model(v))[0]
                count[top:top + patch, left:left + patch] += 1
    return total / count.clamp_min(1)


@pytest.mark.parametrize("name", ["blob", "fast_cnn", "seed004_cnn", "resnet_small"])
def test_captum_maps_match_the_reference_implementations(name):
    from core.inside.explain import conv_layer_names
    from core.models import build_model

    torch.manual_seed(0)
    model = blob_model() if name == "blob" else build_model(name, in_channels=1, image_size=28, num_classes=10)
    model.eval()
    for module in model.modules():  # the old code read a conv's output after an in-place ReLU had rewritten it
        if hasattr(module, "inplace"):  # (post-ReLU maps for some networks, pre-ReLU for others); compare
            module.inplace = False  # both on the layer's true output
    x = blob_image() if name == "blob" else torch.randn(2, 1, 28, 28)
    target = class_target(0 if name == "blob" else 3)
    for layer in (["0"] if name == "blob" else conv_layer_names(model)[-2:]):
        for hires in (False, True):
            torch.testing.assert_close(grad_cam(model, x, target, layer, hires=hires),
                                       reference_cam(model, x, target, layer, hires), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(saliency(model, x, target), reference_saliency(model, x, target), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(occlusion(model, x[:1], target, patch=4, stride=2),
                               reference_occlusion_per_pixel(model, x[:1], target, 4, 2), atol=1e-4, rtol=1e-4)


def test_every_method_is_compared_with_its_cost_and_the_sanity_check_separates_them():
    from core.inside.attribution import METHODS, compare, randomisation_test
    from core.models import build_model

    torch.manual_seed(0)
    model = build_model("fast_cnn", in_channels=1, image_size=28, num_classes=10).eval()
    x = torch.randn(1, 1, 28, 28)
    layer = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)][-1]
    rows = compare(model, x, class_target(2), layer)
    assert [r["method"] for r in rows] == METHODS
    for r in rows:
        assert r["map"].shape == (28, 28) and 0 <= r["map"].min() and r["map"].max() <= 1 and r["ms"] > 0
    no_conv = compare(build_model("mlp", in_channels=1, image_size=28, num_classes=10).eval(), x, class_target(2), None)
    assert [r["method"] for r in no_conv if r["map"] is None] == ["Grad-CAM", "HiResCAM", "Guided Grad-CAM"]
    test = randomisation_test(model, x, class_target(2), layer, ["Grad-CAM", "Saliency"], stages=3)
    assert test["stages"][-1] == test["layers"] and set(test["maps"]) == {"Grad-CAM", "Saliency"}
    for method, values in test["similarity"].items():
        assert len(values) == 3 and all(-1 <= v <= 1 for v in values)
        assert values[-1] < 0.9, method  # a fully re-initialised model must change the map


def test_hooks_are_removed_and_shapes_reported():
    model = blob_model()
    out, acts = activations(model, blob_image())
    assert out.shape == (1, 2) and acts["0"].shape == (1, 1, 16, 16) and acts["3"].shape == (1, 1)
    grad_cam(model, blob_image(), class_target(0), layer="0")
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(KeyError, match="no layer"):
        with recording(model, ["nope"]):
            pass
    assert [n for n, _ in inspectable_layers(model)] == ["0", "1", "2", "3", "4"]


def test_explain_works_on_registry_models():
    from core.models import build_model
    for name in ("fast_cnn", "resnet_small", "seed001_cnn"):
        model = build_model(name, in_channels=1, image_size=28, num_classes=10)
        x = torch.randn(2, 1, 28, 28)
        cam = grad_cam(model, x, class_target(3))
        assert cam.shape == (2, 28, 28) and torch.isfinite(cam).all() and model.training
        _, acts = activations(model, x)
        assert len(acts) >= 5


def test_conv_layers_are_named_for_readers():
    from core.inside.explain import layer_label

    convs = ["net._conv_stem", "net._blocks.15._project_conv", "net._conv_head"]
    assert layer_label("net._blocks.15._project_conv", convs) == "conv 2 of 3: block 15, project conv"
    assert layer_label("net._conv_head", convs) == "conv 3 of 3: conv head"
    assert layer_label("features.9", ["features.1", "features.9"]) == "conv 2 of 2"  # no words: its place only
    assert layer_label("features.10", ["features.9"]) == "features.10"  # not a conv layer: its path
