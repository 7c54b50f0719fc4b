"""Real browser, Multi-MNIST composer on the shipped checkpoints: change the left digit and see the
multi-task CNN's answer change; move a digit; then, on the digit-string reader, type a
string and see the CRNN read it.
Screenshots: composer_pair.png, composer_pair_changed.png, composer_pair_moved.png, composer_string.png,
composer_string_changed.png.
"""
from __future__ import annotations

import pytest

from tests.browser import settled, shot, stroke


@pytest.fixture(autouse=True)
def _needs_data(real_data):  # the composer places MNIST test digits (the server reads $CNN_STUDIO_DATA)
    pass


def metric(page, label: str):
    return page.locator("[data-testid='stMetric']", has_text=label).first.locator("[data-testid='stMetricValue']")


def wait_for_metric(page, label: str, value: str) -> None:
    page.wait_for_function("([label, value]) => [...document.querySelectorAll(\"[data-testid='stMetric']\")]"
                           ".some(m => m.innerText.startsWith(label) && m.querySelector(\"[data-testid='stMetricValue']\")"
                           ".innerText.trim() === value)", arg=[label, value], timeout=60_000)


def test_changing_a_digit_changes_the_prediction(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1700})
    page.goto(app_url + "/composer")
    page.get_by_text("Where each head looks").first.wait_for(timeout=90_000)
    wait_for_metric(page, "Left digit", "4")  # the page opens on a test 4 next to a test 7
    wait_for_metric(page, "Right digit", "7")
    page.get_by_text("HiResCAM: right x-centre").first.wait_for(timeout=60_000)  # the attribution row is drawn
    shot(page, "composer_pair.png")

    page.locator("[data-testid='stSelectbox']", has_text="Class").first.click()
    page.get_by_role("option", name="8", exact=True).click()
    wait_for_metric(page, "Left digit", "8")
    shot(page, "composer_pair_changed.png")

    before = metric(page, "Right x-centre").inner_text()
    slider = page.locator("[data-testid='stSlider']", has_text="Position").nth(1).get_by_role("slider")
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")  # the right digit moves left and overlaps the left one (at x = 2)
    page.wait_for_function("(old) => { const m = [...document.querySelectorAll(\"[data-testid='stMetric']\")]"
                           ".find(e => e.innerText.startsWith('Right x-centre')); return m && "
                           "m.querySelector(\"[data-testid='stMetricValue']\").innerText !== old; }",
                           arg=before, timeout=60_000)
    thumb = page.locator("[data-testid='stSlider']", has_text="Position").nth(1).locator("[data-testid='stSliderThumbValue']")
    settled(page)  # the ten key presses have all been answered
    wait_for_metric(page, "Tiles overlap", f"{28 - (int(thumb.inner_text()) - 2)} px")
    shot(page, "composer_pair_moved.png")
    assert "Traceback" not in page.inner_text("body")


def test_a_digit_drawn_on_the_pad_takes_the_left_place(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1700})
    page.goto(app_url + "/composer")
    wait_for_metric(page, "Left digit", "4")
    page.locator("[data-testid='stRadio']").first.get_by_text("Draw", exact=True).click()
    pad = page.locator("canvas.sketchpad")
    pad.wait_for(timeout=30_000)  # the left digit's drawing pad (until something is drawn: the example digit)
    settled(page)
    stroke(page, pad.bounding_box(), [(86, 20), (84, 84), (82, 150)])  # a one, down the middle of the 168 px pad
    wait_for_metric(page, "Left digit", "1")
    shot(page, "composer_drawn.png")
    assert page.locator("[data-testid='stException']").count() == 0


def test_the_crnn_reads_a_typed_string(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.goto(app_url + "/strings")
    page.get_by_text("The beam's candidates").first.wait_for(timeout=90_000)
    wait_for_metric(page, "CRNN reads (beam)", "2026")
    shot(page, "composer_string.png")

    box = page.get_by_label("Digits (1 to 6)")
    box.fill("9513")
    box.press("Enter")
    wait_for_metric(page, "CRNN reads (beam)", "9513")
    shot(page, "composer_string_changed.png")
    assert "Traceback" not in page.inner_text("body")
