"""Real browser, Teach page: shots for three classes uploaded as files (crops of scikit-image's photos stand in for
the camera), Train, a held-out photo predicted, the model saved and opened on Inside the network; then the
camera (Chromium's fake one) adds shots one after another. Screenshots: teach_trained.png, teach_inside.png,
teach_camera.png.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.browser import ARGS, CHROMIUM, settled, shot, wait_selected
from tests.test_browser_photo import FAKE_CAMERA

SUBJECTS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket"}


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS + FAKE_CAMERA)
        context = browser.new_context(viewport={"width": 1400, "height": 2200}, permissions=["camera"])
        yield context.new_page()
        browser.close()


def crops(photo: str, n: int, folder, seed: int) -> list[str]:
    """`n` random square crops (60-90 % of the short side) of a scikit-image photo, saved as JPEG files."""
    from skimage import data

    image, rng, files = np.asarray(getattr(data, photo)()), np.random.default_rng(seed), []
    for i in range(n):
        side = int(min(image.shape[:2]) * rng.uniform(0.6, 0.9))
        top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        path = folder / f"{photo}_{seed}_{i}.jpg"
        Image.fromarray(image[top:top + side, left:left + side]).save(path)
        files.append(str(path))
    return files


def name_class(page, index: int, name: str) -> None:
    box = page.locator(f"[class*='st-key-teach_name_{index}_'] input")
    box.fill(name)
    box.press("Enter")
    settled(page)


def choose(page, label: str, option: str) -> None:
    settled(page)
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    settled(page)


def test_three_classes_taught_from_files_predict_a_new_photo_and_open_on_inside(app_url, page, tmp_path):
    page.goto(app_url + "/teach")
    page.get_by_text("1. Classes and their shots").wait_for(timeout=60_000)
    settled(page)
    page.get_by_role("button", name="Add a class").click()
    settled(page)
    for i, name in enumerate(SUBJECTS):
        name_class(page, i, name)
    page.get_by_role("radiogroup", name="From").get_by_text("Image files", exact=True).click()
    (tmp_path / "notes.png").write_bytes(b"not a picture")  # with the cat shots: refused in words, the rest kept
    for name, photo in SUBJECTS.items():
        choose(page, "Add shots to", name)
        junk = [str(tmp_path / "notes.png")] if name == "cat" else []
        page.locator("[class*='st-key-teach_in_'] input[type=file]").set_input_files(crops(photo, 4, tmp_path, 0) + junk)
        page.get_by_text(f"{name}: 4 shots").wait_for(timeout=60_000)
        if junk:
            page.get_by_text("Not added (not a readable image): notes.png").wait_for(timeout=30_000)
        settled(page)
    page.get_by_role("button", name="Train").click()
    page.get_by_text("Held-out accuracy").wait_for(timeout=180_000)
    page.get_by_role("radiogroup", name="Input").get_by_text("Upload", exact=True).click()
    settled(page)
    held_out = crops("rocket", 1, tmp_path, seed=7)  # a crop it has not seen
    page.locator(".st-key-teach_try input[type=file]").set_input_files(held_out)
    page.get_by_text("Grad-CAM for rocket").wait_for(timeout=60_000)
    shot(page, "teach_trained.png")
    assert page.locator("[data-testid='stMetricValue']").nth(1).inner_text().strip() == "rocket"
    page.get_by_label("Name", exact=True).fill("browser-taught")
    page.get_by_label("Name", exact=True).press("Enter")
    settled(page)
    page.get_by_role("button", name="Save as a model").click()
    page.get_by_text("it is listed on Draw", exact=False).wait_for(timeout=60_000)
    page.get_by_role("button", name="Look inside it").click()
    page.get_by_text("Layer outputs").first.wait_for(timeout=120_000)
    settled(page)
    wait_selected(page, "Model", r"^browser-taught \(efficientnet_lite0 on taught")
    shot(page, "teach_inside.png")


def test_the_camera_adds_shots_one_after_another(app_url, page):
    page.goto(app_url + "/teach")
    page.get_by_text("1. Classes and their shots").wait_for(timeout=60_000)
    settled(page)
    page.get_by_role("radiogroup", name="From").get_by_text("Camera", exact=True).click()
    for count in (1, 2):
        take = page.get_by_role("button", name="Take Photo")
        take.wait_for(timeout=30_000)
        page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2 && "
                               "v.videoWidth > 0)", timeout=30_000)  # the fake stream is live
        take.click()
        page.get_by_text(f"class 1: {count} shot", exact=False).wait_for(timeout=60_000)
        settled(page)
    shot(page, "teach_camera.png")
