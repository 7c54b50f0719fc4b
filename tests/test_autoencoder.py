"""Autoencoder and VAE: shapes, round trips, training through the engine, metrics, probe and latent maths."""
import numpy as np
import pytest
import torch

from core.latent.autoencode import (add_noise, decode, encode_all, interpolate, latent_map, probe, psnr,
                             reconstruction_report, slerp, ssim, strip)
from core.engine.run import run
from core.latent.recipe import AutoencoderRecipe
from core.engine.checkpoint import load_checkpoint
from core.engine import TensorLoader, TrainConfig, evaluate, fit
from core.models import build_model, list_models
from core.latent.task import ReconstructionTask


@pytest.mark.parametrize("name", ["conv_ae", "conv_vae"])
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 8)])
def test_shapes_and_round_trip(name, channels, size):
    model = build_model(name, in_channels=channels, image_size=size, latent_dim=16, widths=[8, 16, 32]).eval()
    x = torch.rand(5, channels, size, size)
    z = model.encode(x)
    assert z.shape == (5, 16)
    out = model.decode(z)
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(model(x), out)  # forward is the deterministic round trip
    if name == "conv_vae":
        mu, logvar = model.posterior(x)
        torch.testing.assert_close(mu, z)
        assert logvar.shape == (5, 16) and model.sample(3).shape == (3, channels, size, size)


def test_autoencoders_are_not_listed_as_classifiers():
    assert "conv_ae" not in list_models() and {"conv_ae", "conv_vae"} <= set(list_models("autoencoder"))


@pytest.mark.parametrize("name,kl", [("conv_ae", 0.0), ("conv_vae", 0.02)])
def test_short_training_lowers_the_loss(name, kl):
    from core.data import load_dataset

    ds = load_dataset("digits")
    model = build_model(name, in_channels=1, image_size=8, latent_dim=16, widths=[16, 32, 64])
    task = ReconstructionTask(kl_weight=kl)
    val = TensorLoader(ds.test_x, batch_size=256, shuffle=False)
    before = evaluate(model, task, val, torch.device("cpu"))
    result = fit(model, task, TensorLoader(ds.train_x, batch_size=64), val,
                 TrainConfig(epochs=4, lr=3e-3, optimizer="adamw", schedule="onecycle", keep_best=False))
    after = result.history[-1]
    assert after["val_mse"] < 0.6 * before["mse"], (before, after)
    if kl:
        assert after["val_kl"] > 0


def test_ssim_and_psnr_from_scikit_image_give_known_values():
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(ssim(x, x), torch.ones(4, dtype=torch.float64))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert float(ssim(x, noisy).mean()) < 0.9
    # flat images a and b: no variance, so SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1) exactly
    a, b, c1 = 0.2, 0.4, 0.01 ** 2
    flat = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert float(flat) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-6)
    shifted = torch.full((2, 3, 12, 12), 0.5)
    torch.testing.assert_close(psnr(shifted, shifted + torch.tensor([0.1, 0.01])[:, None, None, None]),
                               torch.tensor([20.0, 40.0], dtype=torch.float64), atol=1e-4, rtol=0)  # 10 log10(1/MSE)
    assert float(psnr(x, x)[0]) == 100.0  # identical: capped, not infinite
    small = torch.rand(2, 1, 8, 8)  # the digits set: a window that fits 8 pixels
    assert torch.isfinite(ssim(small, small.flip(-1))).all()


def test_library_ssim_matches_the_former_hand_written_one():
    """The Gaussian-window SSIM CNN Studio computed by hand before, as the reference."""
    import torch.nn.functional as F

    g = torch.exp(-((torch.arange(11) - 5) ** 2).float() / (2 * 1.5 ** 2))
    w = ((g / g.sum())[:, None] * (g / g.sum())[None, :])[None, None]
    x = torch.rand(6, 1, 28, 28)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    var_x, var_y = F.conv2d(x * x, w) - mu_x ** 2, F.conv2d(y * y, w) - mu_y ** 2
    cov = F.conv2d(x * y, w) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    hand = (((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))).flatten(1).mean(1)
    torch.testing.assert_close(ssim(x, y).float(), hand, atol=1e-4, rtol=1e-4)


def test_probe_on_features_with_a_known_answer():
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 4, 400), rng.integers(0, 4, 200)
    informative = lambda y: np.eye(4)[y] * 5 + rng.normal(0, 0.3, (len(y), 4))  # noqa: E731
    noise = lambda y: rng.normal(0, 1, (len(y), 4))  # noqa: E731
    rows = probe({"separable": (informative(y_train), informative(y_test)),
                  "noise": (noise(y_train), noise(y_test))}, y_train, y_test)
    by = {r["features"]: r for r in rows}
    assert by["separable"]["logistic_regression"] == 1.0 and by["separable"]["knn"] == 1.0
    assert by["noise"]["logistic_regression"] < 0.45 and by["noise"]["dims"] == 4


def test_interpolation_and_slerp():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    np.testing.assert_allclose(slerp(a, b, 0.0), a)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, 0.5)), 1.0)  # stays on the sphere; linear would not
    path = interpolate(a, b, 5)
    assert path.shape == (5, 2) and np.allclose(path[2], [0.5, 0.5])


def test_latent_map_walk_nearest_and_helpers():
    from core.data import load_dataset

    ds = load_dataset("digits")
    model = build_model("conv_ae", in_channels=1, image_size=8, latent_dim=6, widths=[8, 16, 32]).eval()
    lmap = latent_map(model, ds.test_x, ds.test_y, n=100, directions=4)
    assert lmap.z.shape == (100, 6) and lmap.xy.shape == (100, 2) and lmap.components.shape == (4, 6)
    np.testing.assert_allclose(lmap.components @ lmap.components.T, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(lmap.project(lmap.z[:3]), lmap.xy[:3], atol=1e-4)
    moved = lmap.walk(lmap.z[0], [1.0, 0, 0, 0])
    np.testing.assert_allclose(np.linalg.norm(moved - lmap.z[0]), lmap.stds[0], rtol=1e-5)
    assert lmap.nearest(lmap.z[7], k=3)[0] == 7
    images = decode(model, lmap.z[:2])
    assert images.shape == (2, 8, 8) and images.dtype == np.uint8
    assert strip(list(images)).shape == (8, 18)
    noisy = add_noise(np.full((8, 8), 128, np.uint8), 0.3)
    assert noisy.dtype == np.uint8 and noisy.std() > 20


def test_the_recipe_writes_a_card_that_reloads(tmp_path):
    card = run(AutoencoderRecipe(model="conv_ae", dataset="digits", epochs=1, latent_dim=8, widths=(8, 16, 32)),
               out=tmp_path / "ae")
    assert card.task == "reconstruction" and {"test_mse", "test_psnr", "test_ssim"} <= set(card.metrics)
    model, loaded = load_checkpoint(tmp_path / "ae")
    from core.data import load_dataset

    again = reconstruction_report(model, load_dataset("digits").test_x)
    assert again["mse"] == pytest.approx(card.metrics["test_mse"], abs=1e-6)
    assert encode_all(model, load_dataset("digits").test_x[:5]).shape == (5, 8)
