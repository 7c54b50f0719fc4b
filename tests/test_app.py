"""AppTest: the app shell and the Home page render the shipped models without errors."""
from streamlit.testing.v1 import AppTest

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
    assert row["model"] == "fast_cnn" and row["data set"] == "mnist" and row["headline (test)"] == "test accuracy 99.60%"
    assert row["parameters"] == "654,954" and row["size"].endswith(" KB")
    assert not table.isin(["None", "nan"]).any().any()  # every cell says something
    imagenet = table[table["checkpoint"] == "efficientnet_lite0_imagenet"].iloc[0]
    assert imagenet["size"] == "in its package" and imagenet["epochs"] == "pretrained"
    assert table[table["checkpoint"] == "fashion_ae"].iloc[0]["headline (test)"].startswith("test MSE (pixels in [0, 1]) 0.00466")
    summary = " ".join(m.value for m in at.markdown)
    assert "fast_cnn" in summary and "test accuracy" in summary
    assert any("python -m core train" in c.value for c in at.code)
    datasets = at.dataframe[1].value
    assert {"mnist", "fashion_mnist", "cifar10", "cifar100", "digits"} <= set(datasets["name"])
