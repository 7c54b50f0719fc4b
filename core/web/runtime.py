"""ONNX Runtime Web's files, fetched once from the npm registry (no Node needed) and served by the app.

    python -m core web-runtime                       # from registry.npmjs.org, checked against a pinned hash
    python -m core web-runtime --from FILE.tgz       # from a tarball fetched elsewhere (npm pack onnxruntime-web@1.31.1)

The three files the WASM backend needs (the module, its loader and the SIMD WebAssembly binary, 15 MB) go to
static/ort/, which the app serves at /app/static/ort/ and the static share page copies. They are not in the
repository: 15 MB of binary in every clone for a feature that works without them (the Draw page then predicts
on the server after each stroke, and says so). Never a CDN: the app and the share page run offline.
"""
from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

from core import paths
from core.errors import ProjectError

VERSION = "1.31.1"
URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
SHA512 = "5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="  # npm's integrity
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
STATIC = paths.PROJECT_ROOT / "static"
RUNTIME_DIR = STATIC / "ort"


class WebRuntimeError(ProjectError):
    """The runtime's files could not be fetched or are not the pinned ones."""


def runtime_ready(folder: Path = RUNTIME_DIR) -> bool:
    """Whether the runtime's files are in place (the pinned version's: its stamp says so)."""
    return all((folder / name).is_file() for name in FILES) and \
        (folder / "VERSION").is_file() and (folder / "VERSION").read_text().strip() == VERSION


def install_runtime(folder: Path = RUNTIME_DIR, tarball: str | None = None) -> Path:
    """Fetch (or read) the pinned onnxruntime-web tarball, check its SHA-512, and unpack FILES into `folder`."""
    if tarball:
        data = Path(tarball).read_bytes()
    else:
        try:
            with urllib.request.urlopen(URL, timeout=120) as response:
                data = response.read(64 * 2**20)
        except OSError as exc:
            raise WebRuntimeError(f"could not fetch {URL} ({exc}). Fetch it elsewhere (`npm pack onnxruntime-web@"
                                f"{VERSION}`) and run `python -m core web-runtime --from onnxruntime-web-"
                                f"{VERSION}.tgz`; until then the Draw page predicts on the server.") from None
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != SHA512:
        raise WebRuntimeError(f"the tarball's SHA-512 is {digest[:16]}..., not onnxruntime-web {VERSION}'s pinned "
                            f"{SHA512[:16]}...: not unpacked.")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in FILES:
            member = archive.extractfile(f"package/dist/{name}")
            if member is None:
                raise WebRuntimeError(f"package/dist/{name} is missing from the tarball.")
            (folder / name).write_bytes(member.read())
    (folder / "VERSION").write_text(VERSION + "\n")
    return folder
