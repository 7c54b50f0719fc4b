"""AppTest for Inside the network: opens on a real input and every tab renders from the core calls."""
import re
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page(**state):
    at = AppTest.from_file(str(ROOT / "pages" / "inside.py"), default_timeout=90)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def test_opens_with_a_prediction_and_all_tabs(real_data, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_DATA", str(real_data))
    at = open_page()
    assert not at.exception
    assert at.metric[0].label == "Prediction" and at.metric[0].value == "0"  # first test image of class 0
    layers = at.dataframe[0].value
    assert "Conv2d" in set(layers["type"]) and "1 x 28 x 28" not in set(layers["output shape"])
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert any("click one to enlarge" in c.value for c in at.caption)
    assert at.get("plotly_chart"), "the channel grid is a clickable chart"
    for part in ("channel 0 of", "weights", "Grad-CAM at", "HiResCAM at", "Guided Grad-CAM at", "Saliency for",
                 "SmoothGrad for", "Integrated Gradients for", "Occlusion for", "occlusion sensitivity"):
        assert part in captions, part  # a 28 px model: every attribution method, each with its cost in ms
    assert re.search(r"Integrated Gradients for 0 \([\d,]+ ms\)", captions)
    assert at.metric[1].label.startswith("P(0) with pixels x ")


def test_the_sanity_check_reinitialises_the_model_and_reports_every_method(real_data, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_DATA", str(real_data))
    at = open_page()
    methods = next(m for m in at.multiselect if m.key.startswith("inside_methods_"))  # kept per model
    methods.set_value(["Grad-CAM", "Saliency"]).run()
    at.button(key="inside_sanity").click().run()
    assert not at.exception
    table = next(df.value for df in at.dataframe if "all layers re-initialised" in df.value.columns)
    assert list(table["method"]) == ["Grad-CAM", "Saliency"] and "all layers re-initialised" in table.columns
    assert table["all layers re-initialised"].abs().max() < 0.9  # a destroyed model changes both maps


def test_shared_drawing_is_the_default_input():
    import numpy as np
    from core.draw.preprocess import example_digit
    at = open_page(shared_input={"image": example_digit(), "source": "drawing"})
    assert not at.exception
    assert at.radio(key="inside_source").value == "Drawing from the Draw page"
    assert at.metric[0].value == "7"
    cam_class = next(s for s in at.selectbox if s.key.startswith("inside_cam_class_"))
    cam_class.set_value(1).run()
    assert not at.exception and any("for 1" in c for img in at.get("image") for c in img.captions)
    at.slider(key="inside_patch").set_value(10).run()
    assert not at.exception and "x 9-18, y 9-18 hidden" in at.metric[1].label


def test_scrubber_moves_over_epochs():
    at = AppTest.from_file(str(ROOT / "pages" / "inside.py"), default_timeout=90)
    at.run()
    options = at.selectbox(key="inside_model").options
    with_snapshots = [o for o in options if o.startswith("mnist_seed004")]
    assert with_snapshots, "the shipped mnist_seed004 checkpoint keeps per-epoch snapshots"
    at.selectbox(key="inside_model").set_value(with_snapshots[0]).run()
    assert not at.exception
    slider = at.select_slider(key="inside_epoch")
    last = slider.value
    slider.set_value(1).run()
    assert not at.exception
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert "after epoch 1" in captions and last > 1


def test_the_shipped_cifar10_model_explains_a_test_photo(tmp_path, monkeypatch):
    """Offline too: with no data set, the page shows the shipped CIFAR-10 sample images."""
    monkeypatch.setenv("CNN_STUDIO_DATA", str(tmp_path))
    at = open_page()
    label = next(o for o in at.selectbox(key="inside_model").options if o.startswith("cifar10_fast_cifar"))
    at.selectbox(key="inside_model").set_value(label).run()
    assert not at.exception
    classes = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
    assert at.metric[0].value in classes
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert re.search(r"Grad-CAM at conv (\d+) of \1( \(after its \w+\))? for \w+", captions), captions  # its last conv
