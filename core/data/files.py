"""Finding, downloading and verifying the official data files.

Owns the "where is this file, and is it intact" question for every reader: look in the data
directory, download from the official mirrors when a file is missing (unless CNN_STUDIO_OFFLINE=1),
verify checksums, and turn every failure into a message that names the directory and the exact files
to put there. Does not parse any format.
"""
from __future__ import annotations

import contextvars
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from core.data.base import CorruptDataError, MissingDataError

OFFLINE_ENV = "CNN_STUDIO_OFFLINE"
DOWNLOADS = contextvars.ContextVar("downloads", default=True)  # False: this thread only reads local files
DOWNLOAD_TIMEOUT_S = 20


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its name, the mirrors that serve it and its MD5 checksum."""

    name: str
    mirrors: tuple[str, ...]  # base URLs, tried in order
    md5: str
    md5_of: str = "file"  # "file": the file as served; "gunzipped": its decompressed payload


def md5_of_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5_of_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def find_or_download(dataset: str, files: list[RemoteFile], folders: list[Path], download_to: Path) -> list[Path]:
    """Paths of `files`, each found in the first of `folders` that has it, else downloaded to `download_to`.

    Raises MissingDataError naming `download_to` and every missing file when they cannot be fetched.
    """
    found: dict[str, Path] = {}
    for remote in files:
        for folder in folders:
            if (folder / remote.name).is_file():
                found[remote.name] = folder / remote.name
                break
    missing = [f for f in files if f.name not in found]
    if not missing:
        return [found[f.name] for f in files]

    errors = []
    if os.environ.get(OFFLINE_ENV) == "1" or not DOWNLOADS.get():
        errors.append(f"downloads are switched off ({OFFLINE_ENV}=1, or a page that never downloads)")
    else:
        for remote in missing:
            try:
                found[remote.name] = download(remote, download_to)
            except (OSError, urllib.error.URLError, CorruptDataError) as exc:
                errors.append(f"{remote.name}: {exc}")
    still_missing = [f for f in files if f.name not in found]
    if still_missing:
        names = ", ".join(f.name for f in still_missing)
        urls = "; ".join(f"{f.mirrors[0]}{f.name}" for f in still_missing)
        raise MissingDataError(
            f"{dataset}: missing file(s) {names} and the download failed ({'; '.join(errors)}). "
            f"Put the official files into {download_to} (from {urls}), or point the environment "
            f"variable CNN_STUDIO_DATA (or the --data-dir flag) at a folder that holds them."
        )
    return [found[f.name] for f in files]


def download(remote: RemoteFile, folder: Path) -> Path:
    """Fetch `remote` from its mirrors into `folder`, verify it, and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for base in remote.mirrors:
        url = base + remote.name
        tmp = Path(tempfile.mkstemp(dir=folder, prefix=".part-")[1])
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(tmp, "wb") as out:
                shutil.copyfileobj(resp, out)
            verify(remote, tmp)
            target = folder / remote.name
            tmp.replace(target)
            return target
        except (OSError, urllib.error.URLError, CorruptDataError) as exc:
            last_error = exc
        finally:
            tmp.unlink(missing_ok=True)
    assert last_error is not None
    raise last_error


def verify(remote: RemoteFile, path: Path, payload: bytes | None = None) -> None:
    """Raise CorruptDataError unless `path` (or its already decompressed `payload`) has the official MD5."""
    if remote.md5_of == "gunzipped":
        if payload is None:
            payload = gunzip(path)
        actual = md5_of_bytes(payload)
    else:
        actual = md5_of_file(path)
    if actual != remote.md5:
        raise CorruptDataError(
            f"{path} does not match the official file (MD5 {actual}, expected {remote.md5}). "
            f"It is truncated, corrupt or a different version: delete it so it is downloaded again, "
            f"or replace it with the official file."
        )


def gunzip(path: Path) -> bytes:
    """Decompress a .gz file (or return a plain file's bytes), reporting truncation as corruption."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise CorruptDataError(f"{path} is truncated or not a valid gzip file ({exc}). "
                               f"Delete it so it is downloaded again, or replace it with the official file.")
