"""Real browser, Draw page with a photo model (the shipped Fashion-MNIST CNN): an uploaded test image and
Chromium's fake camera both reach the model. Screenshots: draw_fashion_upload.png, draw_fashion_camera.png.
"""
from __future__ import annotations

import pytest

from tests.browser import ARGS, CHROMIUM, choose_model, settled, shot

expect = pytest.importorskip("playwright.sync_api").expect

FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def browser(app_url):
    """Chromium with a fake camera (a moving test pattern) that pages may use without asking."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_CAMERA)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2000}, permissions=["camera"])
    yield context.new_page()
    context.close()


def choose_fashion_model(page, app_url):
    page.goto(app_url + "/draw")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)  # the page has run on its default model
    choose_model(page, "fashion_fast_cifar")
    page.get_by_text("choose an input below", exact=False).first.wait_for(timeout=30_000)


def test_uploaded_fashion_photo_is_classified(app_url, page, real_data, tmp_path, monkeypatch):
    from PIL import Image

    from core.data import load_dataset

    monkeypatch.setenv("CNN_STUDIO_DATA", str(real_data))
    data = load_dataset("fashion_mnist")
    index = int((data.test_y == 7).nonzero()[0])  # the first sneaker of the test set
    photo = Image.fromarray(data.test_x[index, 0].numpy()).resize((140, 140))  # a bigger upload, as a user's
    photo.save(tmp_path / "sneaker.png")
    choose_fashion_model(page, app_url)
    page.get_by_role("radiogroup", name="Input").get_by_text("Upload", exact=True).click()
    settled(page)
    page.locator(".st-key-draw_upload input[type=file]").set_input_files(str(tmp_path / "sneaker.png"))
    page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=30_000)
    shot(page, "draw_fashion_upload.png")
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text("Sneaker", timeout=30_000)
    page.get_by_text("model input 28x28", exact=False).first.wait_for(timeout=30_000)


def test_camera_snapshot_is_classified(app_url, page):
    choose_fashion_model(page, app_url)
    page.get_by_role("radiogroup", name="Input").get_by_text("Camera", exact=True).click()
    take = page.get_by_role("button", name="Take Photo")
    take.wait_for(timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2 && "
                           "v.videoWidth > 0)", timeout=30_000)  # the fake stream has started
    take.click()
    try:
        page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=30_000)
    finally:
        shot(page, "draw_fashion_camera.png")
    classes = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
    answer = page.locator("[data-testid='stMetricValue']").first.inner_text().strip()
    assert answer in classes | {"none of these"}  # Chromium's fake camera shows a test pattern, not clothes
    page.get_by_text("model input 28x28", exact=False).first.wait_for(timeout=30_000)
