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


def settle(at, ready, timeout: float = 120.0):
    """Rerun the page until `ready(at)` holds: the neuron views are computed in the background."""
    import time

    end = time.monotonic() + timeout
    while not ready(at):
        assert time.monotonic() < end, "the background job did not finish"
        time.sleep(0.2)
        at.run()
    return at


def test_neurons_tab_shows_what_a_channel_looks_for_and_the_images_that_excite_it(monkeypatch, tmp_path):
    """Issue 29: offline or not, the first conv's channel 0 of the shipped MNIST CNN: the optimised
    input beats the most exciting test image, the 9 exciting and 9 inhibiting images are shown; a class works too.
    The optimisation starts only when the tab is open."""
    monkeypatch.setenv("CNN_STUDIO_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    at = open_page()
    assert not at.get("progress") and not any("excite it most" in m.value for m in at.markdown)
    at.session_state["inside_tab"] = "Neurons"
    at.run()
    excited = lambda a: any("excite it most" in m.value for m in a.markdown)  # noqa: E731
    settle(at, excited)
    assert not at.exception
    text = next(m.value for m in at.markdown if "excite it most" in m.value)
    # the page's data set is shared by the whole server (process): the shipped sample here, unless a test before
    # this one loaded the real set
    assert "The 9 of 1000 test images of mnist" in text and "the optimisation found more" in text
    captions = [c for img in at.get("image") for c in img.captions]
    assert sum(bool(re.fullmatch(r"-?\d+\.\d\d", c)) for c in captions) == 18  # 9 exciting + 9 inhibiting
    assert any(c.startswith("activation ") for c in captions) and any("its filter" in c for c in captions)
    assert at.button(key="inside_atlas_features.1")  # the atlas waits for the user's press
    at.slider(key="inside_neuron_n").set_value(4).run()  # four diverse images of the same channel
    settle(at, lambda a: sum(c.startswith("activation ") for img in a.get("image") for c in img.captions) == 4)
    assert not at.exception
    layer = next(s for s in at.selectbox if s.key.startswith("inside_neuron_layer_"))
    layer.set_value("class logits").run()
    settle(at, excited)
    assert not at.exception and "What excites 3 most" not in " ".join(c.value for c in at.caption)
    next(n for n in at.number_input if n.key.startswith("inside_neuron_index_")).set_value(3).run()
    settle(at, lambda a: any("What excites 3 most" in c.value for c in a.caption))
    assert not at.exception


def test_arithmetic_tab_ends_on_the_value_in_the_map():
    at = open_page()
    at.session_state["inside_tab"] = "Arithmetic"
    at.run()
    assert not at.exception
    equation = next(m.value for m in at.markdown if m.value.startswith("Sum of the 36 products"))
    total = float(re.search(r"plus the bias -?[\d.]+ = \*\*(-?[\d.]+)\*\* \(the conv's output: (-?[\d.]+)\)",
                            equation)[1])
    assert total == float(re.search(r"the conv's output: (-?[\d.]+)\)", equation)[1])
    assert "max of its 2x2 block" in equation and "batch norm" in equation and "ReLU(" in equation
    assert any("what the layers before it output" in m.value for m in at.markdown)  # space-to-depth comes first
    done = at.success[0].value
    assert re.match(r"= -?\d+\.\d{4}, the value the model itself computed at features\.4 \(row \d, column \d\)", done)
    assert len(at.get("plotly_chart")) >= 1 + 3 * 4  # the map, then window, kernel and products of 4 input channels
    next(n for n in at.number_input if n.key.startswith("inside_arith_channel_")).set_value(5).run()
    assert not at.exception and "Output channel 5 of features.1" in " ".join(c.value for c in at.caption)
    assert next(m.value for m in at.markdown if m.value.startswith("Sum of the 36 products")) != equation


def test_a_neuron_is_followed_over_training(monkeypatch, tmp_path):
    """mnist_seed004 kept a snapshot per epoch: the Neurons tab's epoch slider shows the same channel after epoch 1."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    at = open_page()
    label = next(o for o in at.selectbox(key="inside_model").options if o.startswith("mnist_seed004"))
    at.selectbox(key="inside_model").set_value(label).run()
    at.session_state["inside_tab"] = "Neurons"
    at.run()
    excited = lambda a: any("excite it most" in m.value for m in a.markdown)  # noqa: E731
    settle(at, excited)
    final = next(m.value for m in at.markdown if "excite it most" in m.value)
    slider = at.select_slider(key="inside_neuron_epoch")
    assert slider.value > 1
    slider.set_value(1).run()
    settle(at, lambda a: excited(a) and next(m.value for m in a.markdown if "excite it most" in m.value) != final)
    assert not at.exception  # another model: another optimised input and other activations of the same images
