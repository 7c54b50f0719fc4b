"""`python -m core export CKPT --web DIR`: the Draw demo as a folder any static file server serves.

DIR gets index.html (static/cnn_studio/share.html), live.mjs (the browser's preprocessing and prediction, the
same file the app's pad uses), model.onnx (checked against PyTorch like every export), model.json (how to feed
it and read it), ONNX Runtime Web's files in ort/ and a few test images. No Python and no CNN Studio server:
`python -m http.server --directory DIR`, GitHub Pages or any bucket serves it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from core.data import readable_name
from core.engine.checkpoint import load_checkpoint
from core.engine.predict import is_digit_model
from core.errors import SettingsError
from core.models.onnx_export import export_model
from core.web.live import live_spec
from core.web.runtime import FILES, RUNTIME_DIR, STATIC, WebRuntimeError, runtime_ready

SAMPLES = 8  # test images shown under the pad


def write_web_demo(folder: str, out: str, data_dir: str | None = None) -> Path:
    """Write the static demo of a digit classifier checkpoint into `out` (created; files there are replaced)."""
    model, card = load_checkpoint(folder)
    if card.task != "classification" or not is_digit_model(card):
        raise SettingsError(f"{folder}: the web demo draws digits, so it needs a classifier of grey digits (MNIST "
                            f"and its kin); this is a {card.task} model of {card.dataset.name}.")
    if not runtime_ready():
        raise WebRuntimeError("ONNX Runtime Web's files are not here yet: run `python -m core web-runtime` first.")
    data, report = export_model(model, card, data_dir, where=str(folder))
    target = Path(out)
    (target / "ort").mkdir(parents=True, exist_ok=True)
    (target / "model.onnx").write_bytes(data)
    for name in FILES:
        shutil.copyfile(RUNTIME_DIR / name, target / "ort" / name)
    shutil.copyfile(STATIC / "cnn_studio" / "live.mjs", target / "live.mjs")
    shutil.copyfile(STATIC / "cnn_studio" / "share.html", target / "index.html")
    spec = {**live_spec(card, "model.onnx", "ort/"), "samples": _samples(card, target, data_dir),
            "about": f"{card.model.name} trained on {readable_name(card.dataset.name)}"
                     + (f": {card.headline.label} {card.headline.value:.2%}" if card.headline else "")
                     + f". The ONNX file matches PyTorch within {report['max_abs_diff']:.1g}."}
    (target / "model.json").write_text(json.dumps(spec, indent=1))
    return target


def _samples(card, target: Path, data_dir: str | None) -> list[dict]:
    """A few test images (the data set's, else its shipped sample) as PNG files: [{file, label}]."""
    from core.data.samples import load_or_sample

    try:
        data = load_or_sample(card.dataset.name.split("@")[0], data_dir)
    except Exception:  # noqa: BLE001 (no images to show is no reason to fail the export)
        return []
    (target / "samples").mkdir(exist_ok=True)
    rows, seen = [], set()
    for image, label in zip(data.test_x[:500], data.test_y[:500].tolist()):
        if label in seen or image.shape[-1] != card.dataset.image_size:
            continue
        seen.add(label)
        name = f"samples/{len(rows)}.png"
        Image.fromarray(image[0].numpy()).save(target / name)
        rows.append({"file": name, "label": str(card.dataset.class_names[label])})
        if len(rows) == SAMPLES:
            break
    return rows
