"""Real browser, Inside the network with the pretrained ImageNet model: the bundled cat photo with its
Grad-CAM, then an uploaded photo. Screenshots: imagenet_cat_gradcam.png, imagenet_upload_gradcam.png.
"""
from __future__ import annotations

import re

import pytest

from tests.browser import choose_model, pick, settled, shot

CAT_NAMES = {"tabby, tabby cat", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture(autouse=True)
def _tall(page):
    page.set_viewport_size({"width": 1400, "height": 1500})


def prediction(page) -> str:
    return page.locator("[data-testid='stMetricValue']").first.inner_text().strip()


def open_cam_tab(page) -> None:
    page.get_by_role("tab", name="Attribution methods").click()
    page.get_by_text(re.compile(r"Grad-CAM at conv \d+ of \d+: conv head")).first.wait_for(timeout=60_000)


def open_imagenet_model(page, app_url) -> None:
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)  # the page has run once on its default model
    choose_model(page, "efficientnet_lite0_imagenet")
    page.get_by_text("Photo (bundled with scikit-image)").first.wait_for(timeout=60_000)
    settled(page)


def test_cat_photo_and_its_grad_cam(app_url, page):
    open_imagenet_model(page, app_url)
    page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stMetricValue']\")]"
                           ".some(e => /cat/.test(e.innerText))", timeout=60_000)
    assert prediction(page) in CAT_NAMES
    open_cam_tab(page)
    shot(page, "imagenet_cat_gradcam.png")


def test_uploaded_photo_is_explained(app_url, page, tmp_path):
    from PIL import Image

    from core.draw.preprocess import sample_photo

    Image.fromarray(sample_photo("coffee")).save(tmp_path / "my_coffee.jpg", quality=90)
    open_imagenet_model(page, app_url)
    page.locator("[data-testid='stRadioOption']").filter(has_text="Upload").click()
    page.locator(".st-key-inside_upload input[type=file]").set_input_files(str(tmp_path / "my_coffee.jpg"))
    page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='stMetricValue']\")]"
                           ".some(e => e.innerText.trim() === 'espresso')", timeout=60_000)
    open_cam_tab(page)
    shot(page, "imagenet_upload_gradcam.png")
    assert prediction(page) == "espresso"


def test_transfer_recipe_trains_live_in_the_browser(app_url, page):
    """The transfer recipe on the small `digits` set: features extracted with a progress bar, the linear head
    trained with the live charts, the data-efficiency chart beside it."""
    page.set_viewport_size({"width": 1400, "height": 3000})  # the whole page, charts and results, in one shot
    page.goto(app_url + "/trainer")
    pick(page, "Recipe", "Transfer: pretrained features + linear head (CIFAR-10)")
    page.get_by_text("Why transfer learning", exact=False).first.wait_for(timeout=60_000)
    pick(page, "Data set", "digits")
    field = page.get_by_label("Epochs", exact=True)
    field.fill("8")
    field.press("Enter")
    settled(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("finished: epoch 8", exact=False).first.wait_for(timeout=180_000)
    shot(page, "trainer_transfer_done.png")
    body = page.inner_text("body")
    assert "Traceback" not in body and "test accuracy" in body
