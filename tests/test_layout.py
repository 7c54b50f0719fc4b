"""The architecture the layout promises: core never imports streamlit, pages stay thin."""
import ast

from tests.conftest import ROOT


def test_core_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "streamlit" for n in names):
                offenders.append(str(path))
    assert offenders == []


def test_pages_are_thin_and_model_free():
    for path in (ROOT / "pages").glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 150, path
        assert "nn.Module" not in text and ".backward(" not in text, path


def test_page_files_have_distinct_url_paths():
    """Streamlit derives a URL from each file name in pages/ without leading underscores and numbers:
    helpers like _latent.py next to latent.py make every page fail with a duplicate-pathname error."""
    import re

    stems = [re.sub(r"^[\d_]+", "", p.stem) for p in (ROOT / "pages").glob("*.py") if p.stem != "__init__"]
    assert len(stems) == len(set(stems)), sorted(stems)
