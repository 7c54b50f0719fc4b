"""Real browser: `streamlit run` serves the app and headless Chromium uses the Home, Inside, Trainer and Compare
runs pages as a visitor would. Screenshots go to tests/artifacts/ for a person to look at. The server and the
browser are the fixtures of tests/conftest.py; every wait is on what the page shows (tests/browser.py).
"""
from __future__ import annotations

import os
import re

import pytest

from tests.browser import choose_model, plot_pixels, settled, shot

expect = pytest.importorskip("playwright.sync_api").expect


def test_home_in_real_browser(app_url, page):
    page.goto(app_url)
    page.get_by_role("heading", name="Shipped models").wait_for(timeout=60_000)
    page.get_by_text("test accuracy", exact=False).first.wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=30_000)
    shot(page, "home.png")
    body = page.inner_text("body")
    assert "CNN Studio" in body and "fast_cnn" in body and "mnist" in body
    assert "Traceback" not in body and "Error" not in body.split("Shipped models")[0]


def test_inside_page_in_real_browser(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 2000})  # the main area scrolls inside: show it whole
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Attribution methods").click()
    page.get_by_text("Integrated Gradients for", exact=False).first.wait_for(timeout=60_000)
    settled(page)  # a click while the page still runs lands on the run before
    page.get_by_role("button", name="Sanity check").click()
    page.get_by_text("Rank correlation with the trained model's map", exact=False).first.wait_for(timeout=120_000)
    expect(page.locator("[data-testid='stDataFrame']:visible")).to_have_count(2)  # deletion areas, similarities
    shot(page, "inside_compare_methods.png")
    page.get_by_role("tab", name="Layer outputs").click()
    page.get_by_text("click one to enlarge it", exact=False).first.wait_for(timeout=30_000)
    shot(page, "inside_layers.png")
    page.get_by_role("tab", name="Occlusion").click()
    label = page.get_by_text("with pixels x", exact=False).first
    label.wait_for(timeout=30_000)
    before = label.inner_text()
    canvas = page.locator("canvas.upper-canvas").last
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 120, steps=10)
    page.mouse.up()
    page.wait_for_function("(old) => !document.body.innerText.includes(old)", arg=before, timeout=30_000)
    shot(page, "inside_occluder.png")
    body = page.inner_text("body")
    assert "Traceback" not in body and "Inside the network" in body and "x 2-" in body


def test_scrubber_in_real_browser(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    choose_model(page, "mnist_seed004 (seed004_cnn")
    page.get_by_role("tab", name="Over training").click()
    page.get_by_text("filters after epoch 8").first.wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"Grad-CAM for 0 at conv \d+ of \d+.* after epoch 8")).first.wait_for(timeout=60_000)
    shot(page, "inside_scrubber.png")


def start_quick_demo(page, app_url: str, epochs: int) -> None:
    """Open the trainer on its default recipe (digits), set the epochs and press Start."""
    page.goto(app_url + "/trainer")
    field = page.get_by_label("Epochs", exact=True)
    field.fill(str(epochs))
    field.press("Enter")
    expect(field).to_have_value(str(epochs))
    settled(page)  # the rerun that took the new value has ended: Start now trains with it
    page.get_by_role("button", name="Start training").click()


def test_trainer_trains_live_in_real_browser(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1800})
    start_quick_demo(page, app_url, epochs=60)  # ~5 s of training on an idle machine: long enough to watch
    page.get_by_text("running: epoch", exact=False).first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the live charts
    shot(page, "trainer_live.png", settle=False)  # mid-run: the page reruns every second
    page.get_by_text("Test accuracy", exact=False).first.wait_for(timeout=120_000)
    shot(page, "trainer_done.png")
    body = page.inner_text("body")
    assert "Traceback" not in body and "finished: epoch 60" in body


def test_trainer_survives_a_refresh_and_stops_in_real_browser(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})  # a session of its own
    start_quick_demo(page, app_url, epochs=400)  # stopped by the test long before its end
    progress = page.get_by_text(re.compile(r"running: epoch \d+, step \d+")).first
    try:
        progress.wait_for(timeout=60_000)
    finally:
        shot(page, "trainer_refresh_start.png", settle=False)
    step = lambda: int(re.search(r"step (\d+)", progress.inner_text()).group(1))  # noqa: E731
    first = step()
    page.wait_for_function("(n) => { const m = document.body.innerText.match(/running: epoch \\d+, step (\\d+)/);"
                           " return m && +m[1] > n; }", arg=first, timeout=30_000)  # the chart's numbers move
    page.reload()  # a browser refresh in the middle of the run: the run goes on and is watched again
    progress.wait_for(timeout=60_000)
    assert step() > first
    shot(page, "trainer_after_refresh.png", settle=False)
    page.locator(".st-key-trainer_stop button").click()
    page.get_by_text("stopped: epoch", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Stopped by the user", exact=False).first.wait_for(timeout=60_000)
    shot(page, "trainer_stopped.png")
    assert "Traceback" not in page.inner_text("body")


def test_compare_runs_in_real_browser(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 2200})
    page.goto(app_url + "/runs")
    page.get_by_text("One run's mistakes").first.wait_for(timeout=60_000)
    page.get_by_text("Most confidently").first.wait_for(timeout=30_000)
    shot(page, "compare_runs.png")
    body = page.inner_text("body")
    assert "Traceback" not in body and "Most common confusions" in body


def test_channel_click_and_uploaded_keras_model_in_real_browser(app_url, page, tmp_path):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")  # the seed-001 model is built with Keras
    from tests.test_byo import seed001_keras

    page.set_viewport_size({"width": 1400, "height": 2000})
    page.goto(app_url + "/inside")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Layer outputs").click()
    grid = page.locator(".js-plotly-plot", has=page.locator(".imagelayer image"))
    grid.wait_for(timeout=30_000)
    page.get_by_text("channel 0 of", exact=False).first.wait_for(timeout=30_000)
    settled(page)  # a click on a chart that is still being redrawn is not a selection
    # where plotly draws the last channel's (invisible) marker, in page pixels
    x, y, last = grid.evaluate("gd => { const t = gd.data[1], i = t.x.length - 1; return [t.x[i], t.y[i], i]; }")
    assert last > 0
    page.mouse.click(*plot_pixels(grid, x, y))
    page.get_by_text(f"channel {last} of", exact=False).first.wait_for(timeout=30_000)
    shot(page, "inside_channel_click.png")

    seed001_keras().save(tmp_path / "mnist_cnn_best.h5")
    page.get_by_text("Bring your own model").first.click()
    page.locator(".st-key-inside_model_byo_file input[type=file]").set_input_files(str(tmp_path / "mnist_cnn_best.h5"))
    page.get_by_text("Keras .h5 from mnist_cnn_best.h5", exact=False).first.wait_for(timeout=60_000)
    page.get_by_role("tab", name="Attribution methods").click()
    page.get_by_text("Grad-CAM at conv 3 of 3: conv3", exact=False).first.wait_for(timeout=30_000)
    shot(page, "inside_uploaded_keras.png")

    # the refusal of a Lambda .keras upload is tested in tests/test_byo.py: replacing the file of a one-file
    # uploader from Playwright did not register reliably on a fresh machine
    assert "Traceback" not in page.inner_text("body")
