"""Real browser, Draw page: a server of its own, opened straight on /draw, then mouse strokes on the canvas.

Screenshots: tests/artifacts/draw_example.png (the page as it opens) and draw_one.png (after drawing).
"""
from __future__ import annotations

import pytest

from tests.browser import settled, shot, start_server, stop_server, stroke


@pytest.fixture(scope="module")
def fresh_url(app_url, tmp_path_factory):
    """A server no browser has visited yet (the session's shared one has served other pages by now)."""
    proc, url = start_server(tmp_path_factory.mktemp("runs"))
    yield url
    stop_server(proc)


def prediction(page) -> str:
    return page.locator("[data-testid='stMetricValue']").first.inner_text().strip()


def test_drawing_updates_the_prediction(fresh_url, page):
    page.set_viewport_size({"width": 1400, "height": 1100})
    page.goto(fresh_url + "/draw")  # the first visit of this server goes straight to the page
    page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=60_000)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Home" in nav and "Draw" in nav  # the entry point's navigation, not the legacy pages/ router
    assert prediction(page) == "7"  # the example drawing the canvas opens with
    pad = page.locator("canvas.sketchpad")
    pad.wait_for(timeout=30_000)  # the pad mounts once its script has loaded, and draws the example on itself
    assert pad.evaluate("c => c.getContext('2d').getImageData(140, 70, 1, 1).data[0]") > 200  # the 7's top bar
    shot(page, "draw_example.png")

    page.get_by_role("button", name="Clear").click()
    page.get_by_text("The canvas is empty").first.wait_for(timeout=30_000)
    # the cleared canvas is a new component: wait until the old one has left the page
    from playwright.sync_api import expect

    expect(page.locator("canvas.sketchpad")).to_have_count(1, timeout=30_000)  # pierces the shadow DOM
    settled(page)
    box = page.locator("canvas.sketchpad").bounding_box()
    stroke(page, box, [(150, 40), (145, 140), (140, 240)])  # a one
    page.wait_for_function(
        "() => { const m = document.querySelector(\"[data-testid='stMetricValue']\");"
        " return m && m.innerText.trim() === '1'; }", timeout=30_000)
    shot(page, "draw_one.png")

    stroke(page, box, [(60, 45), (150, 40)])  # a bar to the top of the stroke turns the 1 into a 7
    try:
        page.wait_for_function(
            "() => { const m = document.querySelector(\"[data-testid='stMetricValue']\");"
            " return m && m.innerText.trim() === '7'; }", timeout=30_000)
    finally:
        shot(page, "draw_seven.png", settle=False)
    page.get_by_role("button", name="Undo").click()  # the pad's own undo takes the bar away again
    page.wait_for_function(
        "() => { const m = document.querySelector(\"[data-testid='stMetricValue']\");"
        " return m && m.innerText.trim() === '1'; }", timeout=30_000)
    body = page.inner_text("body")
    assert "Traceback" not in body


def test_visitors_arriving_together_at_a_fresh_server_each_get_their_page(browser, tmp_path):
    """Five sessions open five pages of a server nobody has visited, at once. Streamlit runs such first visits
    through its legacy pages/ router; rerunning from inside an import once left the others a half-imported
    `pages._ui` (an ImportError on four of five pages) and the legacy sidebar."""
    proc, url = start_server(tmp_path / "runs")
    markers = {"draw": "Prediction", "inside": "Prediction", "composer": "Left digit", "captions": "Attention",
               "latent": "Map point"}
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in markers]
    try:
        tabs = [context.new_page() for context in contexts]
        for tab, path in zip(tabs, markers):
            tab.goto(f"{url}/{path}", wait_until="commit")  # all five sessions start before any page is drawn
        for tab, (path, marker) in zip(tabs, markers.items()):
            tab.get_by_text(marker, exact=False).first.wait_for(timeout=120_000)
            settled(tab)
            body, nav = tab.inner_text("body"), tab.locator("[data-testid='stSidebarNav']").inner_text()
            assert tab.locator("[data-testid='stException']").count() == 0, (path, body[:300])
            assert "Home" in nav and "streamlit app" not in nav, (path, nav)  # the entry point's navigation
    finally:
        for context in contexts:
            context.close()
        stop_server(proc)
