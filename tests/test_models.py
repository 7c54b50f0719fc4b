"""Every registered model: output shape, finite outputs, parameter count, on every input kind."""
import pytest
import torch

from core.models import build_model, count_parameters, list_models, parameter_count

INPUTS = [(1, 8), (1, 28), (3, 32), (3, 64)]


@pytest.mark.parametrize("name", sorted(list_models()))
@pytest.mark.parametrize("channels,size", INPUTS)
def test_model_shapes_and_params(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, in_channels=channels, image_size=size, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(3, channels, size, size))
    assert out.shape == (3, 7) and torch.isfinite(out).all()
    n = count_parameters(model)
    assert n == sum(p.numel() for p in model.parameters()) > (500 if name == "seed003_cnn" else 1000)  # one layer
    assert parameter_count(name, in_channels=channels, image_size=size, num_classes=7) == n
    assert model.spec["name"] == name and model.spec["kwargs"]["num_classes"] == 7


def test_registry_has_the_required_models():
    assert {"mlp", "mlp_tuned", "seed004_cnn", "seed001_cnn", "fast_cnn", "resnet_small",
            "dw_separable"} <= set(list_models())


def test_seed_architectures_match_their_description():
    mlp = build_model("mlp", in_channels=1, image_size=28, num_classes=10)
    assert [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)] == [128, 64, 10]
    tuned = build_model("mlp_tuned", in_channels=1, image_size=28, num_classes=10)
    assert [m.out_features for m in tuned.modules() if isinstance(m, torch.nn.Linear)] == [256, 128, 10]
    grey = build_model("seed001_cnn", in_channels=1, image_size=28, num_classes=10)
    colour = build_model("seed001_cnn", in_channels=3, image_size=32, num_classes=10)
    widths = lambda m: [c.out_channels for c in m.modules() if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    assert widths(grey) == [32, 32, 64, 64] and widths(colour) == [32, 32, 64, 64, 128, 128]
    dw = build_model("dw_separable", in_channels=3, image_size=32, num_classes=10)
    assert any(c.groups > 1 and c.groups == c.in_channels for c in dw.modules() if isinstance(c, torch.nn.Conv2d))


def test_unknown_model_names_the_known_ones():
    with pytest.raises(KeyError, match="fast_cnn"):
        build_model("vgg99", in_channels=1, image_size=28, num_classes=10)
