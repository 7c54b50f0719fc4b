"""Cached pieces of the latent explorer: autoencoder checkpoints, the map's encodings, t-SNE, neighbours."""
from __future__ import annotations

import streamlit as st

from core.latent.autoencode import latent_map, tsne_layout
from pages._common import cached_checkpoint, cached_dataset

MAP_SIZE = 2000  # test images on the map
BANK_SIZE = 10000  # training images searched for nearest neighbours


@st.cache_resource(show_spinner="Encoding the map's test images...")
def cached_map(folder: str):
    """The LatentMap of MAP_SIZE test images (shared, read-only)."""
    model, card = cached_checkpoint(folder)
    data = cached_dataset(card.dataset.name)
    return latent_map(model, data.test_x, data.test_y, n=MAP_SIZE)


@st.cache_data(show_spinner="Running t-SNE on the codes (about 20 s, once per model)...")
def cached_tsne(folder: str):
    return tsne_layout(cached_map(folder).z)


@st.cache_resource(show_spinner="Encoding training images for the neighbour search...")
def cached_bank(folder: str):
    """A LatentMap of BANK_SIZE training images: nearest neighbours of the user's image come from it."""
    model, card = cached_checkpoint(folder)
    data = cached_dataset(card.dataset.name)
    return latent_map(model, data.train_x, data.train_y, n=BANK_SIZE, seed=1)
