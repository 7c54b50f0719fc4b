"""AppTest for the latent explorer on a small autoencoder trained here on 300 real Fashion-MNIST images."""
import numpy as np
import pytest

from core.engine.run import run
from core.latent.recipe import AutoencoderRecipe
from tests.conftest import open_page_on_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data_module):
    folder = tmp_path_factory.mktemp("runs")
    for name, kl in (("conv_ae", 0.0), ("conv_vae", 0.02)):
        run(AutoencoderRecipe(model=name, dataset="fashion_mnist", epochs=1, latent_dim=8, widths=(8, 16, 32),
                              max_train=300, kl_weight=kl, data_dir=str(real_data_module)), out=folder / f"tiny_{name}")
    return folder


def open_page(runs, monkeypatch, real_data_module, model="conv_ae", **state):
    return open_page_on_run("latent.py", runs, monkeypatch, real_data_module, select_key="latent_model",
                            run=f"tiny_{model}", **state)


def captions(at) -> str:
    return " ".join(c for img in at.get("image") for c in img.captions)


def test_every_view_renders_real_images(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    assert not at.exception
    text = captions(at)
    for part in ("the image", "its code, decoded", "originals", "reconstructions", "|error|", "start",
                 "moved along the directions", "10 decoded codes between"):
        assert part in text, part
    at.slider(key="latent_noise").set_value(0.3).run()  # the gallery becomes a denoising demo
    text = captions(at)
    assert not at.exception and "noisy inputs (MSE" in text and "reconstructed from the noisy inputs" in text
    assert at.get("plotly_chart"), "the latent map"
    assert any("Upload an image" in i.value for i in at.info)  # no user image yet
    assert "Sample" not in [t.label for t in at.tabs]  # the plain autoencoder has no prior


def test_slider_changes_the_decoded_image(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    decoded = lambda: next(img for img in at.get("image") if any("moved along the directions" in c for c in img.captions))  # noqa: E731
    before = decoded().proto.imgs[0].url
    at.slider(key="latent_pc_0").set_value(3.0).run()
    assert not at.exception and decoded().proto.imgs[0].url != before


def test_vae_samples_and_shared_drawing(runs, monkeypatch, real_data_module):
    from core.draw.preprocess import example_digit

    at = open_page(runs, monkeypatch, real_data_module, model="conv_vae",
                   shared_input={"image": example_digit(), "source": "drawing"})
    assert not at.exception
    text = captions(at)
    assert "16 codes drawn from the N(0, I) prior" in text, [e.value for e in at.error]
    assert "nearest training images in code space" in text, ([e.value for e in at.error], [i.value for i in at.info])
    assert "your image" in text and next(t for t in at.toggle if t.key.startswith("latent_slerp_")).value is True
