"""The framework comparison: the seed 004 CNN trained by PyTorch (the engine) and by Keras on TensorFlow,
side by side on the bundled digits, with the Keras model read back as PyTorch layers."""
import json

import pytest

from tests.conftest import ROOT


def test_keras_and_pytorch_train_the_same_network_side_by_side(tmp_path):
    pytest.importorskip("tensorflow")
    import subprocess
    import sys

    out = tmp_path / "compare.json"
    proc = subprocess.run([sys.executable, "-m", "bench.keras_compare", "--dataset", "digits", "--epochs", "3",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["framework"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"pytorch", "keras"}
    assert rows["pytorch"]["params"] == rows["keras"]["params"]  # the same network in both frameworks
    assert all(r["test_accuracy"] > 0.7 and r["images_per_s"] > 0 for r in rows.values())
    assert "| keras | seed004_cnn |" in proc.stdout and "| pytorch | seed004_cnn |" in proc.stdout
