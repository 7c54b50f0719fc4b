"""AppTest for the Draw page: it opens on a drawn example with a prediction and every step."""
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT


def open_page():
    return AppTest.from_file(str(ROOT / "pages" / "draw.py"), default_timeout=60).run()


def test_opens_on_the_example_with_a_prediction():
    at = open_page()
    assert not at.exception
    assert at.metric[0].label == "Prediction" and at.metric[0].value == "7"
    assert "confident" in at.metric[0].delta
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert "cropped to the ink" in captions and "centred by centre of mass" in captions
    shared = at.session_state["shared_input"]
    assert shared["source"] == "drawing" and shared["image"].shape == (28, 28)


def test_centring_toggle_changes_the_pipeline():
    at = open_page()
    at.toggle(key="draw_centre").set_value(False).run()
    assert not at.exception
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    assert "no centring" in captions and "cropped" not in captions
    assert at.metric[0].label == "Prediction"


def test_a_rerun_does_not_load_the_model_again(monkeypatch):
    """The model is shared through a cache: a rerun (here the brush size) only predicts. (A check on what happens,
    not on seconds: timings swing with the machine's load.)"""
    import pages._models as ui

    at = open_page()
    calls, real = [], ui.load_checkpoint
    monkeypatch.setattr(ui, "load_checkpoint", lambda *a, **k: calls.append(a) or real(*a, **k))
    at.slider(key="draw_brush").set_value(25).run()
    assert not at.exception and calls == [] and at.metric[0].label == "Prediction"


def test_a_photo_model_classifies_a_sample_photo():
    at = open_page()
    label = next(o for o in at.selectbox(key="draw_model").options if o.startswith("cifar10_fast_cifar"))
    at.selectbox(key="draw_model").set_value(label).run()
    at.radio(key="draw_source_cifar10_fast_cifar").set_value("Sample photo").run()  # one choice per model
    assert not at.exception and at.title[0].value == "Classify a photo (CIFAR-10)"
    assert at.metric[0].value in {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                  "truck"}


def test_what_a_drawing_pad_sends_is_checked_before_it_is_drawn():
    """The pad's message comes from a browser: anything malformed is left out, nothing crashes or grows unbounded."""
    from core.draw.preprocess import MAX_STROKES, pad_strokes, render_strokes

    good = {"w": 20, "p": [[140, 40], [140, 240]]}
    strokes, widths = pad_strokes([good], size=280)
    assert strokes == [[(140.0, 40.0), (140.0, 240.0)]] and widths == [20]
    image = render_strokes(strokes, size=280, width=widths)
    assert image[140, 140] == 255 and image[140, 100] == 0 and image[40, 140] == 255  # round ends
    hostile = [None, 7, "x", {"w": "wide", "p": [[1, 2]]}, {"w": 10}, {"w": float("nan"), "p": [[1, 1]]},
               {"w": 1e9, "p": [[-5, 1e12], [float("inf"), 3]]}, {"w": 5, "p": [[float("nan"), 1]]},
               {"w": 5, "p": [[1, 2, 3]]}, {"w": 5, "p": []}, {"w": 5, "p": "12"}]
    strokes, widths = pad_strokes(hostile, size=280)
    assert strokes == [[(0.0, 280.0), (280.0, 3.0)]] and widths == [280]  # clipped to the canvas
    assert pad_strokes({"p": 1}, size=280) == ([], []) and pad_strokes(None, size=280) == ([], [])
    assert len(pad_strokes([good] * (MAX_STROKES + 5), size=280)[0]) == MAX_STROKES
    dot = render_strokes([[(50.0, 50.0)]], size=100, width=[10])  # a click is a dot
    assert dot[50, 50] == 255 and dot[50, 70] == 0
