"""Real browser, Draw page: a server of its own, opened straight on /draw, then mouse strokes on the canvas.

Screenshots: tests/artifacts/draw_example.png (the page as it opens) and draw_one.png (after drawing).
"""
from __future__ import annotations

import pytest

from tests.browser import settled, shot, start_server, stop_server


@pytest.fixture(scope="module")
def fresh_url(app_url, tmp_path_factory):
    """A server no browser has visited yet (the session's shared one has served other pages by now)."""
    proc, url = start_server(tmp_path_factory.mktemp("runs"))
    yield url
    stop_server(proc)


def prediction(page) -> str:
    return page.locator("[data-testid='stMetricValue']").first.inner_text().strip()


def stroke(page, box, points):
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def test_drawing_updates_the_prediction(fresh_url, page):
    page.set_viewport_size({"width": 1400, "height": 1100})
    page.goto(fresh_url + "/draw")  # the first visit of this server goes straight to the page
    page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=60_000)
    nav = page.locator("[data-testid='stSidebarNav']").inner_text()
    assert "Home" in nav and "Draw" in nav  # the entry point's navigation, not the legacy pages/ router
    assert prediction(page) == "7"  # the example drawing the canvas opens with
    shot(page, "draw_example.png")

    page.get_by_role("button", name="Clear").click()
    page.get_by_text("The canvas is empty").first.wait_for(timeout=30_000)
    # the cleared canvas is a new component: wait until the old one has left the page
    from playwright.sync_api import expect

    expect(page.locator("canvas.upper-canvas")).to_have_count(1, timeout=30_000)  # pierces the shadow DOM
    settled(page)
    box = page.locator("canvas.upper-canvas").bounding_box()
    stroke(page, box, [(150, 40), (145, 140), (140, 240)])  # a one
    page.wait_for_function(
        "() => { const m = document.querySelector(\"[data-testid='stMetricValue']\");"
        " return m && m.innerText.trim() === '1'; }", timeout=30_000)
    shot(page, "draw_one.png")

    stroke(page, box, [(90, 60), (200, 60)])  # a bar across the top turns the 1 into a 7
    page.wait_for_function(
        "() => { const m = document.querySelector(\"[data-testid='stMetricValue']\");"
        " return m && m.innerText.trim() === '7'; }", timeout=30_000)
    body = page.inner_text("body")
    assert "Traceback" not in body
