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
    assert drop.shape == (7, 7)
    r, c = divmod(int(drop.argmax()), 7)
    assert (r * 2, c * 2) == (2, 10) or (r * 2, c * 2) in {(2, 8), (2, 10), (4, 10), (4, 8)}
    assert drop.min() >= 0 and drop[6, 0] == 0


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
