"""The caption page's test scenes: composed once per checkpoint from the three data sets' test images."""
import streamlit as st


@st.cache_resource(show_spinner="Composing test scenes from MNIST, Fashion-MNIST and CIFAR-10...")
def _makers():
    from core.captions.captioning import scene_makers

    return scene_makers()


def cached_scenes(card: dict, mode: str, n: int = 200):
    """`n` fresh test scenes ('seen' or 'held_out' combinations of the checkpoint's split), fixed seed."""
    return _scenes(tuple(tuple(p) for p in card.held_out_pairs), mode, n)


@st.cache_resource(show_spinner=False, max_entries=8)
def _scenes(held: tuple, mode: str, n: int):
    _, test_maker = _makers()
    return test_maker.make(n, seed=11 + (mode == "held_out"), held_out=set(held), mode=mode)
