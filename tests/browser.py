"""What every real-browser test shares: one `streamlit run` server for the whole test session, Chromium's
launch settings, and waits on what the page shows, never on the clock.

`settled(page)` is the wait to use before acting on a page or taking its screenshot: Streamlit draws a page
while its script runs and marks the elements of the run before as stale until the new run has replaced
them, so a click or a screenshot taken mid-run can act on (or show) the page as it was.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# the app is idle when no script runs (no running-man icon), nothing on the page is left from an older run and
# every picture has loaded;
# `quiet` counts the checks (every 50 ms) the page has stayed so, so a run that starts right after another one
# ended (a component reporting its first value, a fragment's timer) is not mistaken for the end
_IDLE = """([need]) => {
  const busy = document.querySelector("[data-testid='stStatusWidgetRunningIcon'], [data-stale='true']")
    || !document.querySelector("[data-testid='stMain']") || [...document.images].some(i => !i.complete);
  window.__quiet = busy ? 0 : (window.__quiet || 0) + 1;
  return window.__quiet >= need;
}"""


def settled(page, timeout: int = 120_000, checks: int = 10) -> None:
    """Wait until the app has finished running and stayed idle for `checks` checks in a row, 50 ms apart:
    the page shown is the page the last run drew."""
    page.evaluate("() => { window.__quiet = 0; }")
    page.wait_for_function(_IDLE, arg=[checks], polling=50, timeout=timeout)


def shot(page, name: str, settle: bool = True) -> None:
    """A full-page screenshot in tests/artifacts/, once the page has settled (settle=False: as it is now, for a
    page that reruns on a timer, such as a live training run)."""
    if settle:
        settled(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def choose_model(page, option: str) -> None:
    """Pick `option` in the page's first select box (the model chooser), once the page has settled."""
    settled(page)
    page.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=option, exact=False).click()
    settled(page)


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the select box labelled `label`, once the page has settled (a rerun that changed the
    recipe has replaced the old widgets)."""
    settled(page)
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    settled(page)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs_dir) -> tuple[subprocess.Popen, str]:
    """`streamlit run streamlit_app.py` on a free port with its runs in `runs_dir`; returns (process, url) once
    the server answers its health check."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless",
                             "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "CNN_STUDIO_RUNS": str(runs_dir)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before it answered")
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.25)  # polling the health check, not waiting on the page
    proc.terminate()
    raise RuntimeError("streamlit did not answer its health check within 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def stroke(page, box, points):
    """Draw a polyline (pixel offsets into the element whose bounding `box` is given) with the mouse."""
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
    page.mouse.up()


def wait_selected(page, label: str, pattern: str, timeout: int = 60_000) -> None:
    """Wait until the select box labelled `label` shows an option matching the regular expression `pattern` (its
    value lives in the combobox's input, not in the text of the page)."""
    page.wait_for_function(
        """([label, pattern]) => [...document.querySelectorAll('input[role="combobox"]')].some(
             e => e.getAttribute('aria-label') === label && new RegExp(pattern).test(e.value))""",
        arg=[label, pattern], timeout=timeout)


def plot_pixels(figure, x, y) -> tuple[float, float]:
    """Where a Plotly figure (a locator of its `.js-plotly-plot`) draws the data point (x, y), in page pixels, from
    the figure's own axes: a click there lands on the point whatever the layout."""
    return tuple(figure.evaluate(
        "(gd, [x, y]) => { const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();"
        " return [r.left + xa._offset + xa.l2p(xa.d2l(x)), r.top + ya._offset + ya.l2p(ya.d2l(y))]; }", [x, y]))
