"""The model files the Draw page's pad runs in the browser: each checkpoint exported once to static/models/ (ONNX,
checked against PyTorch like every export) and described for static/cnn_studio/live.mjs."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from core.engine.checkpoint import CARD, ModelCard
from core.engine.predict import digit_box, input_spec, is_digit_model
from core.web.runtime import RUNTIME_DIR, STATIC, runtime_ready

MODELS_DIR = STATIC / "models"


def live_reason(card: ModelCard, folder: str | None) -> str | None:
    """Why this model cannot predict in the browser while the pen moves (None: it can)."""
    if card.task != "classification" or not is_digit_model(card):
        return "only digit classifiers run on the pad"
    if not folder or not (Path(folder) / CARD).is_file():
        return "an uploaded model is predicted on the server"
    if not runtime_ready():
        return ("ONNX Runtime Web is not installed (`python -m core web-runtime`), so the prediction follows each "
                "stroke from the server")
    return None


def live_model_file(folder: str, model, card: ModelCard) -> Path:
    """static/models/<key>.onnx for this checkpoint (its folder and card's time stamp name it), written once."""
    from core.models.onnx_export import export_model

    stamp = (Path(folder) / CARD).stat().st_mtime_ns
    key = hashlib.sha1(f"{Path(folder).resolve()}|{stamp}".encode()).hexdigest()[:20]
    path = MODELS_DIR / f"{key}.onnx"
    if not path.is_file():
        data, _ = export_model(model, card, where=str(folder))
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=MODELS_DIR, suffix=".part", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)  # two sessions writing the same file at once each write a whole one
    return path


def live_spec(card: ModelCard, model_url: str, runtime_url: str) -> dict:
    """What live.mjs needs: where the runtime and the model are, how to feed it and how to read its answer."""
    section = card.section("calibration") or {}
    _, size = input_spec(card)
    return {"runtime": runtime_url, "model": model_url, "side": size, "box": digit_box(size),
            "mean": list(card.dataset.mean), "std": list(card.dataset.std), "classes": list(card.dataset.class_names),
            "temperature": section.get("temperature"), "threshold": (section.get("ood") or {}).get("threshold")}


def static_url(path: Path, base: str = "") -> str:
    """The URL path at which Streamlit's static serving (server.enableStaticServing) serves a file of static/."""
    return "/" + "/".join(p for p in (base.strip("/"), "app/static", path.relative_to(STATIC).as_posix()) if p)


