"""AppTest for the Multi-MNIST composer and the digit-string reader on small pair and CRNN models trained here
on real MNIST digits."""
import pytest

from core.engine.checkpoint import update_card
from core.composer.recipes import CRNNRecipe, PairRecipe
from core.engine.run import run
from tests.conftest import open_page_on_run

SMALL = {"channels": (8, 16, 16), "hidden": 32}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data_module):
    folder = tmp_path_factory.mktemp("runs")
    quiet = {"data_dir": str(real_data_module), "eval_n": 200}
    run(PairRecipe(epochs=1, n_train=512, **SMALL, **quiet), out=folder / "tiny_pair")
    run(CRNNRecipe(epochs=1, n_train=256, channels=(8, 16, 16, 16), hidden=16, **quiet), out=folder / "tiny_crnn")
    rows = [{"lambda": 0.0, "both_digits_accuracy": 0.5, "x_mae_px": 9.0, "train_seconds": 1.0}]
    update_card(folder / "tiny_pair", lambda_sweep={"rows": rows, "epochs": 1, "n_train": 512,
                                                    "command": "python -m core sweep-lambda"})
    return folder


def open_page(runs, monkeypatch, real_data_module, **state):
    return open_page_on_run("composer.py", runs, monkeypatch, real_data_module, select_key="composer_model",
                            run="tiny_pair", **state)


def metrics(at) -> dict:
    return {m.label: (m.value, m.delta) for m in at.metric}


def test_pair_mode_shows_both_digits_positions_and_a_cam_per_head(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    assert not at.exception
    shown = metrics(at)
    assert {"Left digit", "Right digit", "Left x-centre", "Right x-centre"} <= set(shown)
    assert shown["Left x-centre"][1].startswith("error ")
    captions = " ".join(c for img in at.get("image") for c in img.captions)
    for head in ("left digit is", "right digit is", "left x-centre", "right x-centre"):
        assert f"HiResCAM: {head}" in captions
    assert "What lambda does" in [h.value for h in at.subheader]


def test_changing_a_digit_and_moving_it_updates_the_answer(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    before = metrics(at)
    at.selectbox(key="composer_left_class").set_value(8).run()
    at.slider(key="composer_left_x").set_value(0).run()
    after = metrics(at)
    assert not at.exception and after["Left x-centre"] != before["Left x-centre"]
    assert "it is 8" in after["Left digit"][1] or after["Left digit"][0] == "8"
    at.slider(key="composer_right_x").set_value(10).run()  # the right slot's digit now lies left of the other
    assert not at.exception and "Tiles overlap" in metrics(at)
    at.number_input(key="composer_left_index").set_value(1000).run()  # class 8 has 974 test images
    assert not at.exception
    at.selectbox(key="composer_left_class").set_value(5).run()  # ... and class 5 only 892
    assert not at.exception and at.number_input(key="composer_left_index").value < 892  # the index input restarts


def test_random_and_drawn_digits(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    at.radio(key="composer_left_source").set_value("Random").run()
    first = metrics(at)["Left digit"]
    values = {first}
    for _ in range(4):
        at.button(key="composer_left_reroll").click().run()
        values.add(metrics(at)["Left digit"])
    assert not at.exception and len(values) > 1  # new random test digits
    at.radio(key="composer_right_source").set_value("Draw").run()
    assert not at.exception and "Right digit" in metrics(at)  # an empty canvas stands in the example digit


def test_attribution_methods_and_noise(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    at.slider(key="composer_noise").set_value(0.3).run()
    for method in ("Grad-CAM", "Saliency"):
        at.radio(key="composer_method").set_value(method).run()
        captions = " ".join(c for img in at.get("image") for c in img.captions)
        assert not at.exception and f"{method}: left x-centre" in captions


def test_the_string_reader_reads_a_string(runs, monkeypatch, real_data_module):
    at = open_page_on_run("strings.py", runs, monkeypatch, real_data_module, select_key="strings_model", run="tiny_crnn")
    assert not at.exception
    shown = metrics(at)
    assert "CRNN reads (beam)" in shown and "Greedy (best path)" in shown
    assert len(at.dataframe) >= 1
    at.text_input(key="strings_text").set_value("12a").run()
    assert "digits only" in " ".join(w.value for w in at.warning)
    at.text_input(key="strings_text").set_value("123456").run()
    at.slider(key="strings_gap").set_value(10).run()
    assert "do not fit" in " ".join(w.value for w in at.warning)


def test_runs_record_the_range_of_familiar_images(runs):
    from core.engine.checkpoint import read_card

    for name in ("tiny_pair", "tiny_crnn"):
        section = read_card(runs / name).section("familiarity")
        assert section["low"] < section["high"] and "held-out training digits" in section["on"]


@pytest.mark.parametrize("page,noise_key,model_key,shipped", [
    ("composer.py", "composer_noise", "composer_model", "mnist_pair_cnn"),
    ("strings.py", "strings_noise", "strings_model", "mnist_crnn")])
def test_shipped_models_say_when_an_image_is_unlike_their_training(page, noise_key, model_key, shipped, tmp_path,
                                                                     monkeypatch, real_data_module):
    at = open_page_on_run(page, tmp_path, monkeypatch, real_data_module, select_key=model_key, run=shipped)
    unlike = lambda: [w.value for w in at.warning if "does not look like the images it was trained on" in w.value]
    assert not at.exception and not unlike()  # the page's own example is a typical composition
    at.slider(key=noise_key).set_value(0.5).run()
    assert not at.exception and unlike() and "95 % of freshly composed held-out images" in unlike()[0]
    assert any(m.label in ("Left digit", "CRNN reads (beam)") for m in at.metric)  # the answer stays visible
