"""Autoencoder and VAE: shapes, round trips, training through the engine, metrics, probe and latent maths."""
import numpy as np
import pytest
import torch

from core.latent.autoencode import (add_noise, decode, encode_all, interpolate, latent_map, probe, psnr,
                             reconstruction_report, slerp, ssim, strip)
from core.engine.recipe import run
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


def test_ssim_and_psnr_known_values():
    x = torch.rand(4, 1, 28, 28)
    torch.testing.assert_close(ssim(x, x), torch.ones(4))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert float(ssim(x, noisy).mean()) < 0.9
    assert float(ssim(torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 16, 16))) < 0.01
    torch.testing.assert_close(psnr(torch.tensor([0.01, 0.001])), torch.tensor([20.0, 30.0]))


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
