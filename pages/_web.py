"""The model outside the server: "Download as ONNX" (checked in ONNX Runtime, with its normalisation and class
names in the metadata) and the drawing pad's in-browser prediction (the model exported once for the browser and
served as a static file next to ONNX Runtime Web)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.engine.checkpoint import CARD, load_checkpoint
from pages._models import cached_checkpoint


@st.cache_data(show_spinner=False, max_entries=16)
def _onnx_file(folder: str, card_stamp: int) -> bytes:
    from core.models.onnx_export import export_model

    model, card = load_checkpoint(Path(folder))
    return export_model(model, card, where=paths.shown(folder))[0]


def onnx_button(folder: str, model, card, key: str, where=st) -> None:
    """"Download as ONNX" for a classifier, the pair CNN or the CRNN: the file is written when the button is
    pressed, checked against PyTorch in ONNX Runtime, with the normalisation and class names in its metadata."""
    from core.models.onnx_export import TASKS, ExportError, export_model

    if card.task not in TASKS:
        return
    stamp = Path(folder) / CARD

    def make() -> bytes:
        try:
            if stamp.is_file():
                return _onnx_file(folder, stamp.stat().st_mtime_ns)
            return export_model(model, card)[0]  # an upload: not on disk as a checkpoint
        except ExportError as exc:  # a download cannot show a message: the file then says what went wrong
            return f"CNN Studio could not export this model: {exc}\n".encode()

    name = Path(str(folder).removeprefix("uploaded:")).name or "model"
    where.download_button("Download as ONNX", make, file_name=f"{name}.onnx", mime="application/octet-stream",
                          on_click="ignore", key=f"{key}_onnx", icon=":material/download:",
                          help="The model as an ONNX file (opset 17) for ONNX Runtime, the browser (onnxruntime-web) "
                               "or any other framework: checked against PyTorch on test images before it is "
                               "offered; its metadata (`cnn_studio`) holds the input normalisation and class names. "
                               "It loads back here through the upload panel as it left.")


def live_pad(folder: str, model, card) -> tuple[dict | None, str]:
    """(what the drawing pad needs to run this model in the browser, None and why it cannot)."""
    from core.web.live import live_reason

    if not st.get_option("server.enableStaticServing"):
        return None, "the server's static file serving is off"
    why = live_reason(card, folder)
    if why:
        return None, why
    try:
        return _live_spec(folder, (Path(folder) / CARD).stat().st_mtime_ns, st.get_option("server.baseUrlPath")), ""
    except Exception as exc:  # noqa: BLE001 (an export that fails leaves the server's path, with the reason)
        return None, f"it could not be exported for the browser: {str(exc)[:160]}"


@st.cache_resource(show_spinner="Exporting the model for your browser (once)...", max_entries=32)
def _live_spec(folder: str, card_stamp: int, base: str) -> dict:
    from core.web.live import live_model_file, live_spec, static_url
    from core.web.runtime import RUNTIME_DIR, STATIC

    model, card = cached_checkpoint(folder)
    path = live_model_file(folder, model, card)
    return {**live_spec(card, static_url(path, base), static_url(RUNTIME_DIR, base) + "/"),
            "module": static_url(STATIC / "cnn_studio" / "live.mjs", base)}
