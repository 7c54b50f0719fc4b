"""Real browser: the Trainer trains an autoencoder recipe live (its reconstruction-loss chart and the
reconstructions after each epoch), is stopped with Stop, and ends on the kind's results. Screenshots go to
tests/artifacts/. Every wait is on a condition the page shows."""
import re

from tests.test_browser import ARTIFACTS, app_url, choose_model  # noqa: F401  (app_url is a fixture)


def test_autoencoder_recipe_trains_live_and_stops_in_real_browser(app_url):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import ARGS, CHROMIUM

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(app_url + "/trainer")
        page.get_by_text("Recipe").first.wait_for(timeout=60_000)
        choose_model(page, "Quick autoencoder (digits)")
        epochs = page.get_by_label("epochs", exact=True)
        expect(epochs).to_have_value("12", timeout=30_000)  # the recipe's settings are on the page
        epochs.fill("400")
        epochs.press("Enter")
        expect(epochs).to_have_value("400")
        start = page.get_by_role("button", name="Start training")
        expect(start).to_be_enabled()
        start.click()
        progress = page.get_by_text(re.compile(r"running: epoch \d+, step \d+")).first
        progress.wait_for(timeout=60_000)
        page.get_by_text("bottom: their reconstructions now", exact=False).first.wait_for(timeout=60_000)
        expect(page.get_by_text("reconstruction MSE").first).to_be_visible()  # the kind's own live chart
        page.screenshot(path=str(ARTIFACTS / "trainer_autoencoder_live.png"), full_page=True)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("test MSE", exact=False).first.wait_for(timeout=120_000)
        page.get_by_text(re.compile(r"stopped: epoch \d+")).first.wait_for(timeout=30_000)
        page.get_by_text("python -m core train-autoencoder", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "trainer_autoencoder_stopped.png"), full_page=True)
        body = page.inner_text("body")
        stopped_at = int(re.search(r"stopped: epoch (\d+)", body).group(1))
        assert "Traceback" not in body, body[body.find("Traceback") - 300:body.find("Traceback") + 1500]
        assert stopped_at < 400 and "python -m core train-autoencoder" in body
        browser.close()
