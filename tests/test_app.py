"""AppTest: the app shell and the Home page render the shipped models without errors."""
from streamlit.testing.v1 import AppTest

from core.engine.checkpoint import read_card
from tests.conftest import ROOT


def test_shell_opens_on_home():
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "CNN Studio"
    assert any("Shipped models" in h.value for h in at.subheader)


def test_home_lists_shipped_models_from_cards():
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["checkpoint"] == "mnist_fast_cnn"].iloc[0]
    shipped = read_card(ROOT / "checkpoints" / "mnist_fast_cnn").metrics["test_accuracy"]
    assert row["model"] == "fast_cnn" and row["data set"] == "mnist"
    assert row["headline (test)"] == f"test accuracy {shipped:.2%}" and shipped >= 0.995
    assert row["parameters"] == "654,954" and row["size"].endswith(" KB")
    assert not table.isin(["None", "nan"]).any().any()  # every cell says something
    imagenet = table[table["checkpoint"] == "efficientnet_lite0_imagenet"].iloc[0]
    assert imagenet["size"] == "in a package" and imagenet["epochs"] == "pretrained"
    assert table[table["checkpoint"] == "fashion_ae"].iloc[0]["headline (test)"].startswith("test MSE (pixels in [0, 1]) 0.00466")
    summary = " ".join(m.value for m in at.markdown)
    assert "fast_cnn" in summary and "test accuracy" in summary
    assert any("python -m core train" in c.value for c in at.code)
    datasets = at.dataframe[1].value
    assert {"mnist", "fashion_mnist", "cifar10", "cifar100", "digits"} <= set(datasets["name"])


def test_every_page_opens_on_its_example_offline(tmp_path, monkeypatch):
    """A fresh clone with no data set: every page opens on real images (the samples in checkpoints/samples),
    says where they come from, and shows no error."""
    monkeypatch.setenv("CNN_STUDIO_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path / "runs"))
    from core.data.samples import load_sample
    import streamlit as st

    st.cache_resource.clear()  # data sets loaded by earlier tests in this process (with the data) are not kept
    st.cache_data.clear()

    for name, (train, test) in {"mnist": (500, 1000), "fashion_mnist": (2000, 1000), "cifar10": (200, 500)}.items():
        ds = load_sample(name)
        assert ds.sample and (len(ds.train_y), len(ds.test_y)) == (train, test) and ds.num_classes == 10
        assert set(ds.test_y.tolist()) == set(range(10))  # every class shown
    shown = {}
    for page in ("home", "draw", "inside", "composer", "strings", "captions", "latent", "trainer", "runs"):
        at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=120).run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        shown[page] = " ".join(c.value for c in at.caption)
    for page in ("composer", "strings"):
        assert "test images shipped with CNN Studio" in shown[page], page
    assert "the sample shipped with CNN Studio" in shown["latent"]


def _button_script():
    import streamlit as st

    from pages._ui import pressed

    if st.session_state.get("cut_short"):  # a message from the page cuts short the run the click started
        st.session_state.cut_short = False
        st.stop()
    st.session_state.answers = [*st.session_state.get("answers", []), pressed("Go", "go")]


def test_a_press_survives_a_run_cut_short_before_the_button():
    at = AppTest.from_function(_button_script).run()
    at.session_state.cut_short = True
    at.button(key="go").click().run()  # the run with the click stops before it reaches the button
    assert at.session_state.answers == [False]
    at.run()  # the next run reaches the button: the press is there, once
    at.run()
    assert at.session_state.answers == [False, True, False]
