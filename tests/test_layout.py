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
    """Each page reads in one screenful or two (<= 120 lines of <= 120 characters); pages/ holds the pages and a few
    UI helper modules, one concern each and well under 300 lines; no model code in either."""
    helpers = sorted(p.name for p in (ROOT / "pages").glob("_*.py") if p.name != "__init__.py")
    assert helpers == ["_compare.py", "_explain.py", "_inputs.py", "_models.py", "_neurons.py", "_shots.py",
                       "_training.py", "_ui.py", "_web.py"]
    for path in (ROOT / "pages").glob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) <= (250 if path.name.startswith("_") else 120), path
        assert [n for n, line in enumerate(lines, 1) if len(line) > 120] == [], path
        assert "nn.Module" not in "\n".join(lines) and ".backward(" not in "\n".join(lines), path


def test_every_page_imports_the_ui_module():
    """Importing the pages package (pages/_ui.py does) switches Streamlit's legacy pages/ router off, and the UI
    module's page_title reruns a run that began in it, so that a first visit straight to a page's URL gets the
    app's navigation (not a sidebar listing every file of pages/)."""
    for path in (ROOT / "pages").glob("*.py"):
        if not path.name.startswith("_"):
            assert "from pages._ui import" in path.read_text(), path


def test_page_files_have_distinct_url_paths():
    """Streamlit derives a URL from each file name in pages/ without leading underscores and numbers:
    helpers like _latent.py next to latent.py make every page fail with a duplicate-pathname error."""
    import re

    stems = [re.sub(r"^[\d_]+", "", p.stem) for p in (ROOT / "pages").glob("*.py") if p.stem != "__init__"]
    assert len(stems) == len(set(stems)), sorted(stems)


def _core_imports() -> dict[str, set[str]]:
    """Module -> the core modules it imports (anywhere in the file), from the source alone."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "core").rglob("*.py")}
    edges = {m: set() for m in modules}
    for m, path in modules.items():
        package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != m and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def test_core_has_no_import_cycles():
    edges = _core_imports()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(edges[start])
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen:
                seen.add(m)
                todo.extend(edges[m])
        return False

    assert [m for m in edges if reaches(m, m)] == []


def test_features_do_not_import_the_pages_or_each_other_backwards():
    """Dependencies point one way: engine, data and models never import a feature package."""
    features = ("core.classifier", "core.latent", "core.composer", "core.captions", "core.inside", "core.draw",
                "core.cli", "core.kinds", "core.runs", "core.sweep")
    for module, targets in _core_imports().items():
        if module.startswith(("core.engine", "core.data", "core.models")):
            assert not [t for t in targets if t.startswith(features)], module


def test_the_run_service_and_the_engine_import_no_model_kind():
    """The run service (core.runs) and the engine work for any kind: they never import one (the kinds register
    themselves; core.kinds lists them for the composition roots: the CLI, the pages, the tests)."""
    kinds = ("core.classifier", "core.latent", "core.composer", "core.captions", "core.kinds", "core.cli")
    for module, targets in _core_imports().items():
        if module.startswith(("core.runs", "core.engine")):
            assert not [t for t in targets if t.startswith(kinds)], module


def test_no_core_module_or_function_is_too_long():
    """A module reads as one concept (<= 300 lines); a function fits on a screen (<= 60 lines)."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "core").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
    functions = {f"{p.relative_to(ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
                 for p in (ROOT / "core").rglob("*.py") for node in ast.walk(ast.parse(p.read_text()))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60}
    assert functions == {}


def test_requirements_txt_pins_what_pyproject_pins():
    """Hosting services read requirements.txt; `pip install .` reads pyproject.toml: the same pins in both."""
    import tomllib

    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert listed == pinned
