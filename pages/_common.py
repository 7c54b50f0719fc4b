"""Pure-UI helpers shared by the pages: the page catalogue and cached loaders of shipped checkpoints.

The catalogue is the one list `streamlit_app.py` builds its navigation from and the Home page
describes, so a page is registered and documented in one place. No model code lives here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from core import paths
from core.checkpoint import list_checkpoints, load_checkpoint


@dataclass(frozen=True)
class PageInfo:
    section: str
    path: str  # script path relative to the project root
    title: str
    icon: str
    description: str


PAGES = [
    PageInfo("Overview", "pages/home.py", "Home", ":material/home:",
             "What CNN Studio is, the shipped models with their model cards, and where the data lives."),
]


@st.cache_data(show_spinner=False)
def shipped_cards() -> list[tuple[str, dict]]:
    """(checkpoint folder, model card) for every shipped checkpoint."""
    return [(str(folder), card) for folder, card in list_checkpoints(paths.SHIPPED_CHECKPOINTS)]


@st.cache_resource(show_spinner=False)
def cached_checkpoint(folder: str):
    """A shipped or saved checkpoint's (model, card); shared across sessions, so never train it."""
    return load_checkpoint(Path(folder))
