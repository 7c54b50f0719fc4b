"""Real browser, latent explorer on the shipped Fashion-MNIST autoencoder: the map, then a slider along the
first principal direction changes the decoded picture. Screenshots: latent_map.png, latent_walk_before.png,
latent_walk_after.png, latent_your_image.png, latent_vae_interpolate.png, latent_vae_samples.png.
"""
from __future__ import annotations

import pytest

from tests.browser import choose_model, settled, shot


@pytest.fixture(autouse=True)
def _needs_data(real_data):  # the explorer encodes the real test set (the server reads $CNN_STUDIO_DATA)
    pass


def test_slider_changes_the_decoded_image(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.goto(app_url + "/latent")
    page.get_by_text("its code, decoded").first.wait_for(timeout=90_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    shot(page, "latent_map.png")

    page.get_by_role("tab", name="Walk").click()
    picture = page.locator("[data-testid='stImage']", has_text="moved along the directions").locator("img")
    picture.wait_for(timeout=30_000)
    shot(page, "latent_walk_before.png")
    before_src, before_png = picture.get_attribute("src"), picture.screenshot()
    slider = page.locator("[data-testid='stSlider']", has_text="Direction 1").get_by_role("slider")
    slider.focus()
    page.keyboard.press("End")  # all the way to +3 standard deviations
    page.wait_for_function("(old) => { const i = [...document.querySelectorAll(\"[data-testid='stImage']\")]"
                           ".find(e => e.innerText.includes('moved along the directions')); return i && "
                           "i.querySelector('img').getAttribute('src') !== old; }", arg=before_src, timeout=30_000)
    shot(page, "latent_walk_after.png")
    after_png = picture.screenshot()
    assert after_png != before_png
    assert "Traceback" not in page.inner_text("body")


def test_uploaded_photo_lands_on_the_map(app_url, page, tmp_path):
    from PIL import Image, ImageDraw

    photo = Image.new("RGBA", (400, 300), (250, 250, 250, 255))  # a dark trouser shape on a light photo
    ImageDraw.Draw(photo).polygon([(170, 30), (230, 30), (260, 280), (215, 280), (200, 120), (185, 280),
                                   (140, 280)], fill=(30, 30, 60, 255))
    photo.save(tmp_path / "trousers.png")
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.goto(app_url + "/latent")
    page.get_by_text("its code, decoded").first.wait_for(timeout=90_000)
    page.get_by_role("tab", name="Your image").click()
    (tmp_path / "notes.png").write_text("not a picture")  # a bad file first: one message, saying what to upload
    page.locator(".st-key-latent_upload input[type=file]").set_input_files(str(tmp_path / "notes.png"))
    page.get_by_text("Cannot use this file", exact=False).first.wait_for(timeout=60_000)
    settled(page)
    body = page.inner_text("body")
    assert "Upload an image, or draw one" not in body and "Traceback" not in body, body[-600:]
    assert page.locator("[data-testid='stException']").count() == 0
    page.locator(".st-key-latent_upload input[type=file]").set_input_files(str(tmp_path / "trousers.png"))
    page.get_by_text("nearest training images in code space", exact=False).first.wait_for(timeout=60_000)
    shot(page, "latent_your_image.png")
    body = page.inner_text("body")
    assert "reconstruction" in body and "Traceback" not in body


def test_vae_interpolation_and_samples(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1300})
    page.goto(app_url + "/latent")
    page.get_by_text("its code, decoded").first.wait_for(timeout=90_000)
    choose_model(page, "fashion_vae")
    page.get_by_role("tab", name="Sample").wait_for(timeout=90_000)
    page.get_by_role("tab", name="Interpolate").click()
    page.get_by_text("(spherical)", exact=False).first.wait_for(timeout=30_000)
    shot(page, "latent_vae_interpolate.png")
    page.get_by_role("tab", name="Sample").click()
    page.get_by_text("16 codes drawn from the N(0, I) prior", exact=False).first.wait_for(timeout=30_000)
    shot(page, "latent_vae_samples.png")
    assert "Traceback" not in page.inner_text("body")
