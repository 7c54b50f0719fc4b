"""AppTest for the caption generator on a small captioner trained here on 500 real scenes."""
import pytest

from core.captions.recipe import CaptionerRecipe
from core.engine.run import run
from tests.conftest import open_page_on_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, real_data_module):
    folder = tmp_path_factory.mktemp("runs")
    run(CaptionerRecipe(epochs=1, n_train=300, eval_n=20, data_dir=str(real_data_module), channels=(8, 16, 16, 32),
                        hidden=64, attention=32, embed=16), out=folder / "tiny_cap")
    return folder


def open_page(runs, monkeypatch, real_data_module, **state):
    return open_page_on_run("captions.py", runs, monkeypatch, real_data_module, select_key="caption_model",
                            run="tiny_cap", timeout=180, **state)


def test_scene_caption_attention_and_top_words(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "References:" in text and "the five most likely words" in text
    captions = [c for img in at.get("image") for c in img.captions]
    assert any(c.startswith("attention for word 1") for c in captions)
    top = at.dataframe[0].value
    assert len(top) == 5 and top["probability"].between(0, 1).all()


def test_beam_lists_alternatives_and_forcing_a_word_redecodes(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module)
    at.radio(key="caption_mode").set_value("Beam search").run()
    at.slider(key="caption_beam").set_value(3).run()
    assert not at.exception
    alternatives = next(d.value for d in at.dataframe if "caption" in d.value.columns)  # beside the top-words tables
    assert 1 <= len(alternatives) <= 3 and {"caption", "log p", "score (length-normalised)"} <= set(alternatives.columns)
    at.radio(key="caption_mode").set_value("Greedy").run()
    pills = at.get("button_group")[0]
    first = at.markdown[0].value
    options = pills.proto.options if hasattr(pills, "proto") else []
    other = next(o.content for o in options if o.content != first.split()[1])
    pills.set_value(other).run()
    assert not at.exception
    assert at.markdown[0].value.split()[1] == other  # the forced first word leads the new caption
    assert "Forced: the first 1 word" in " ".join(c.value for c in at.caption)


def test_held_out_scenes_and_bad_uploads(runs, monkeypatch, real_data_module):
    at = open_page(runs, monkeypatch, real_data_module, caption_source="Test scene (held-out combinations)")
    assert not at.exception and "References:" in " ".join(m.value for m in at.markdown)
    at = open_page(runs, monkeypatch, real_data_module, caption_source="Upload")
    assert "Choose an image" in " ".join(i.value for i in at.info)
