"""Real browser: the Trainer trains an autoencoder recipe live (its reconstruction-loss chart and the
reconstructions after each epoch), is stopped with Stop, and ends on the kind's results. Screenshots go to
tests/artifacts/. Every wait is on a condition the page shows."""
import re

import pytest

from tests.browser import pick, settled, shot

expect = pytest.importorskip("playwright.sync_api").expect


def test_autoencoder_recipe_trains_live_and_stops_in_real_browser(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(app_url + "/trainer")
    page.get_by_text("Recipe").first.wait_for(timeout=60_000)
    pick(page, "Model kind", "Autoencoder or VAE")
    pick(page, "Recipe", "Quick autoencoder (digits)")
    epochs = page.get_by_label("epochs", exact=True)
    expect(epochs).to_have_value("12", timeout=30_000)  # the recipe's settings are on the page
    epochs.fill("400")
    epochs.press("Enter")
    expect(epochs).to_have_value("400")
    settled(page)
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    start.click()
    progress = page.get_by_text(re.compile(r"running: epoch \d+, step \d+")).first
    progress.wait_for(timeout=60_000)
    page.get_by_text("bottom: their reconstructions now", exact=False).first.wait_for(timeout=60_000)
    expect(page.get_by_text("reconstruction MSE").first).to_be_visible()  # the kind's own live chart
    shot(page, "trainer_autoencoder_live.png", settle=False)  # mid-run: the page reruns every second
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("test MSE", exact=False).first.wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"stopped: epoch \d+")).first.wait_for(timeout=30_000)
    page.get_by_text("python -m core train-autoencoder", exact=False).first.wait_for(timeout=30_000)
    shot(page, "trainer_autoencoder_stopped.png")
    body = page.inner_text("body")
    stopped_at = int(re.search(r"stopped: epoch (\d+)", body).group(1))
    assert "Traceback" not in body, body[body.find("Traceback") - 300:body.find("Traceback") + 1500]
    assert stopped_at < 400 and "python -m core train-autoencoder" in body
