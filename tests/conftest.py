"""Shared test fixtures: an isolated cache, no downloads, and the real data directory when it exists."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import core.kinds  # noqa: F401  (every model kind, as the CLI and the pages have them)

ROOT = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path | None:
    """$CNN_STUDIO_DATA if set, else ../shared/data beside the checkout, if it holds MNIST."""
    candidates = [os.environ.get("CNN_STUDIO_DATA"), ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c and (Path(c) / "MNIST").is_dir():
            return Path(c)
    return None


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_OFFLINE", "1")  # a test never waits on the network


@pytest.fixture
def real_data() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("real data sets not available: set CNN_STUDIO_DATA or provide ../shared/data")
    return path


@pytest.fixture(scope="module")
def real_data_module() -> Path:
    """The real data directory, for module-scoped fixtures (skips like `real_data`)."""
    path = real_data_dir()
    if path is None:
        pytest.skip("real data sets not available: set CNN_STUDIO_DATA or provide ../shared/data")
    return path


def open_page_on_run(page: str, runs: Path, monkeypatch, data_dir: Path, *, select_key: str, run: str,
                     timeout: int = 120, required: bool = True, **state):
    """AppTest of pages/`page` with $CNN_STUDIO_RUNS = `runs`, the real data, `state` preset in the session,
    and the model chooser `select_key` set to the option naming `run`. With required=False the chooser
    may be absent (a page mode without one) and the page is returned as first run."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNN_STUDIO_RUNS", str(runs))
    monkeypatch.setenv("CNN_STUDIO_DATA", str(data_dir))
    at = AppTest.from_file(str(ROOT / "pages" / page), default_timeout=timeout)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if not required and (at.exception or not any(s.key == select_key for s in at.selectbox)):
        return at
    label = next(o for o in at.selectbox(key=select_key).options if run in o)
    return at.selectbox(key=select_key).set_value(label).run()


# ---- the real browser (see tests/browser.py) ----

@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """The runs folder of the browser tests' server (a test may start runs there for the pages to show)."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def app_url(runs_dir):
    """One `streamlit run` server for every browser test of the session (its runs in a temporary folder);
    skips when Chromium or Playwright is missing (install them with .ci/run)."""
    from tests.browser import CHROMIUM, start_server, stop_server

    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    pytest.importorskip("playwright")
    proc, url = start_server(runs_dir)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(app_url):
    """Headless Chromium, one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import ARGS, CHROMIUM

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser):
    """A tab of the module's browser, 1400 px wide."""
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield tab
    tab.close()
