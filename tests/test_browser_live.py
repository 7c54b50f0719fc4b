"""Real browser, the model in the browser (issue 30): the pad's preprocessing written once in JavaScript
(static/cnn_studio/live.mjs) gives the Python one's model input on 200 random drawings; the Draw page's bars move
during a stroke, before the pen lifts, and end on the server's answer; the static share page from
`python -m core export --web`, served by `python -m http.server`, predicts a drawn digit with no CNN Studio server.
Screenshots: draw_live_during_stroke.png, share_page.png."""
from __future__ import annotations

import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from core.web.runtime import runtime_ready
from tests.browser import free_port, settled, shot, stroke

pytestmark = pytest.mark.skipif(not runtime_ready(), reason="ONNX Runtime Web is not installed: run "
                                "`python -m core web-runtime` (the README's install command does)")
expect = pytest.importorskip("playwright.sync_api").expect
SIZE = 280


def random_drawings(n: int, seed: int = 0) -> list[list[dict]]:
    """Drawings as the pad sends them: 1-3 strokes of 1-12 points (random walks), pen widths 8-40."""
    rng = np.random.default_rng(seed)
    drawings = []
    for _ in range(n):
        strokes = []
        for _ in range(rng.integers(1, 4)):
            start = rng.uniform(20, SIZE - 20, 2)
            steps = rng.normal(0, 25, (int(rng.integers(0, 12)), 2))
            points = np.clip(np.vstack([start, start + np.cumsum(steps, 0)]), 0, SIZE).round().astype(int)
            strokes.append({"w": int(rng.integers(8, 41)), "p": points.tolist()})
        drawings.append(strokes)
    return drawings


def test_browser_preprocessing_matches_python(app_url, page):
    import core.kinds  # noqa: F401
    from core import paths
    from core.draw.preprocess import pad_strokes, preprocess_digit, render_strokes
    from core.engine.checkpoint import load_checkpoint
    from core.engine.predict import predict_proba

    drawings = random_drawings(200)
    page.goto(app_url + "/app/static/cnn_studio/live.mjs")  # any page of the server's origin can import it
    js = page.evaluate("""async (drawings) => {
        const L = await import('/app/static/cnn_studio/live.mjs');
        return drawings.map((d) => Array.from(L.preprocessDigit(L.renderStrokes(d, 280), 280, 28, 20).image));
    }""", drawings)
    model, card = load_checkpoint(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    worst, disagree = 0.0, []
    for i, (drawing, browser) in enumerate(zip(drawings, js)):
        lines, widths = pad_strokes(drawing, size=SIZE)
        python = preprocess_digit(render_strokes(lines, size=SIZE, width=widths), size=28, box=20).image
        browser = np.asarray(browser, np.uint8).reshape(28, 28)
        worst = max(worst, float(np.abs(browser.astype(float) - python).max()) / 255)
        if predict_proba(model, card, browser[None]).argmax() != predict_proba(model, card, python[None]).argmax():
            disagree.append(i)
    assert worst <= 0.02, f"the browser's model input differs from Python's by up to {worst:.3f}"
    assert not disagree, f"drawings {disagree} are predicted differently from the two inputs"


def test_the_bars_follow_the_pen_and_end_on_the_servers_answer(app_url, page):
    page.set_viewport_size({"width": 1400, "height": 1300})
    page.goto(app_url + "/draw")
    page.locator("[data-testid='stMetricValue']").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("The canvas is empty").first.wait_for(timeout=30_000)
    page.wait_for_function("() => window.__cnnLive && window.__cnnLive.ready", timeout=60_000)
    settled(page)
    assert "the model runs in your browser" in page.inner_text("body")
    box = page.locator("canvas.sketchpad").bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 147, box["y"] + 110, steps=6)
    before = page.evaluate("() => window.__cnnLive.predictions")
    page.mouse.move(box["x"] + 140, box["y"] + 240, steps=10)  # the pen is still down
    page.wait_for_function(f"() => window.__cnnLive.predictions >= {before + 5} && window.__cnnLive.last", timeout=10_000)
    live = page.evaluate("() => window.__cnnLive.last")
    assert live["label"] == "1" and page.locator(".live .live-label").inner_text().startswith("1 ·")
    shot(page, "draw_live_during_stroke.png", settle=False)
    page.mouse.up()
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text("1", timeout=30_000)
    settled(page)
    final = page.evaluate("() => window.__cnnLive.last")
    assert final["label"] == page.locator("[data-testid='stMetricValue']").first.inner_text().strip()
    assert not page.evaluate("() => window.__cnnLive.error")


@pytest.fixture()
def share_page(tmp_path):
    from core import paths
    from core.cli import main

    out = tmp_path / "share"
    assert main(["export", str(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn"), "--web", str(out)]) == 0
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                               str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            server.poll()
            if server.returncode is not None:
                raise RuntimeError("http.server exited")
            import time

            time.sleep(0.05)  # polling its port, not waiting on the page
    yield url
    server.terminate()
    server.wait(timeout=10)


def test_the_static_share_page_predicts_a_drawing_with_no_studio_server(share_page, page):
    page.set_viewport_size({"width": 1100, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(share_page)
    page.wait_for_function("() => window.__cnnLive && (window.__cnnLive.ready || window.__cnnLive.error)",
                           timeout=60_000)
    assert page.evaluate("() => window.__cnnLive.error") is None
    box = page.locator("#pad").bounding_box()
    stroke(page, box, [(80, 60), (200, 60), (130, 240)])  # a seven
    expect(page.locator("#answer")).to_contain_text("7 ·", timeout=30_000)
    page.locator("#samples img").first.click()  # a test image: the first of MNIST's test set is a 7
    expect(page.locator("#answer")).to_contain_text("7 ·", timeout=30_000)
    page.locator("#samples img").nth(1).click()
    expect(page.locator("#answer")).to_contain_text("2 ·", timeout=30_000)
    shot(page, "share_page.png", settle=False)
    assert not errors
