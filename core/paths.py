"""Where CNN Studio keeps things on disk: the data directory, the cache and the shipped checkpoints.

Owns path resolution, and `safe_name`: the one way a name a user gave (a run's, a study's, an uploaded file's)
becomes part of a file or folder name. Readers and writers live with their formats. The data directory is the
`--data-dir` flag when a command gets one, else the `CNN_STUDIO_DATA` environment variable, else a
per-user cache folder. Nothing here creates directories except `cache_dir`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from core.errors import SettingsError

DATA_ENV = "CNN_STUDIO_DATA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINTS = PROJECT_ROOT / "checkpoints"
RUNS_ENV = "CNN_STUDIO_RUNS"
MAX_NAME = 60  # characters of a name (a run's, a study's, an upload's) inside a file or folder name


def user_cache_root() -> Path:
    """The per-user cache folder (XDG_CACHE_HOME or ~/.cache)/cnn_studio."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnn_studio"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data directory: an explicit override, else $CNN_STUDIO_DATA, else <user cache>/data."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return user_cache_root() / "data"


def shown(path: str | os.PathLike) -> str:
    """A path as a reader should see it in a command: relative to the project when inside it (no machine paths)."""
    try:
        return str(Path(path).resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def runs_dir() -> Path:
    """Where the user's training runs go: $CNN_STUDIO_RUNS, else runs/ in a source checkout (ignored by git),
    else (an installed package) <XDG_DATA_HOME or ~/.local/share>/cnn_studio/runs."""
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV])
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "runs"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cnn_studio" / "runs"


def cache_dir(kind: str) -> Path:
    """A per-user cache subfolder (created on demand) for derived files such as decoded image folders."""
    path = user_cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def replace_atomically(path: Path, write) -> None:
    """Call write(temporary path), then rename it onto `path`: readers (another session, the training worker)
    see the old file or the new one, never half of one. The temporary name keeps the suffix (np.savez adds one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def safe_name(name: str, fallback: str | None = None) -> str:
    """`name` as part of a file or folder name: letters, digits, '.', '-' and '_' only, at most MAX_NAME characters,
    never a path (no separator, no '..', no leading dot); `fallback` (or SettingsError) when nothing is left."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")[:MAX_NAME].strip("._")
    if not cleaned and fallback is None:
        raise SettingsError(f"a name needs letters or digits; got {str(name)[:40]!r}.")
    return cleaned or fallback
