"""Shared test fixtures: an isolated cache, no downloads, and the real data directory when it exists."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
