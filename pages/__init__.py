"""Streamlit pages of CNN Studio (thin: widgets -> config -> core call -> render).

Streamlit treats a folder named `pages/` beside the entry script as an old-style multipage app ("MPA v1":
each file a page of its own, run without the entry script, with a sidebar listing every file) until the entry
script has called st.navigation once in this server. Visitors who arrive together at a fresh server got that
mode: measured with five at once, four saw an ImportError and all five the wrong sidebar. Importing this
package (every page does, first) ends the mode for later runs, and `pages._ui.page_title`, each page's first
element, reruns a run that started in it, so it comes back through the entry script's navigation. (Rerunning
from inside the import of `pages._ui`, as this project did before, left other sessions a half-imported module.)
"""
import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

PagesManager.uses_pages_directory = False
ENTRY = "streamlit_app.py"


def old_style_run() -> bool:
    """Whether this run was set up as MPA v1: the page runs without the entry script, whose page registry holds
    the entry script as a page of its own."""
    frame = sys._getframe(1)
    while frame is not None:  # a run through the entry script's navigation is never old-style
        if Path(frame.f_code.co_filename).name == ENTRY:
            return False
        frame = frame.f_back
    ctx = get_script_run_ctx()
    registry = ctx.pages_manager.get_pages().values() if ctx is not None else []
    return any(Path(str(page.get("script_path", ""))).name == ENTRY for page in registry)
