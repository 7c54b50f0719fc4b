"""Pure-UI helpers shared by the pages: the page catalogue and cached loaders of shipped checkpoints.

The catalogue is the one list `streamlit_app.py` builds its navigation from and the Home page
describes, so a page is registered and documented in one place. No model code lives here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core import paths
from core.engine.checkpoint import CARD, list_checkpoints, load_checkpoint, load_snapshot
from core.data import load_dataset


if PagesManager.uses_pages_directory:
    # A fresh server's first visit straight to a page URL (say /draw) runs the page through Streamlit's
    # legacy pages/-folder router, before streamlit_app.py could call st.navigation. Switch the router
    # off and rerun, so the entry point builds the real navigation and then runs the page asked for.
    PagesManager.uses_pages_directory = False
    st.rerun()


@dataclass(frozen=True)
class PageInfo:
    section: str
    path: str  # script path relative to the project root
    title: str
    icon: str
    description: str


PAGES = [
    PageInfo("Overview", "pages/home.py", "Home", ":material/home:",
             "What CNN Studio is, the shipped models with their model cards, and where the data lives."),
    PageInfo("Train", "pages/trainer.py", "Trainer", ":material/model_training:",
             "Train any model on any data set (or a seed's recipe) and watch loss, accuracy and learning "
             "rate live; stop it or change the learning rate while it runs; confusion matrix at the end."),
    PageInfo("Train", "pages/runs.py", "Compare runs", ":material/compare_arrows:",
             "All runs in one table; overlay their curves, accuracy against training time; per run a "
             "confusion matrix whose cells show their test images, and a gallery of right and wrong answers."),
    PageInfo("Play", "pages/draw.py", "Draw", ":material/draw:",
             "Draw a digit and watch every class probability update after each stroke; see each MNIST "
             "preprocessing step. Models of photo data sets take an upload or the camera instead."),
    PageInfo("Play", "pages/composer.py", "Multi-MNIST composer", ":material/join:",
             "Place two digits and get both back with their x-centres from one multi-task CNN, with Grad-CAM for "
             "each head; or write a digit string and watch a CRNN read it column by column (CTC alignment, beam)."),
    PageInfo("Play", "pages/captions.py", "Caption generator", ":material/subtitles:",
             "A CNN + attention LSTM captions scenes of real images: a heat map of where it looks for each word, "
             "beam search with its alternatives, and the top five words at every step (force one to re-decode)."),
    PageInfo("Explain", "pages/inside.py", "Inside the network", ":material/layers:",
             "Every layer's output shape and activations, conv filters, Grad-CAM for any class, gradient "
             "saliency, an occlusion map, a box you draw to hide part of the input while the confidence "
             "updates, and filters and Grad-CAM epoch by epoch for runs that kept snapshots."),
    PageInfo("Explore", "pages/latent.py", "Latent space", ":material/scatter_plot:",
             "A Fashion-MNIST autoencoder's and VAE's 64-d codes: a PCA / t-SNE map to click, sliders along the "
             "main directions that decode live, interpolation, your own image and its neighbours, denoising, "
             "samples from the prior, and the probe table that tests seed 000's claim."),
]
SHARED_INPUT = "shared_input"  # session key: the latest drawing or upload, the default input of other pages


@st.cache_data(show_spinner=False)
def shipped_cards() -> list[tuple[str, dict]]:
    """(checkpoint folder, model card) for every shipped checkpoint."""
    order = lambda fc: (fc[1].task != "classification",  # noqa: E731
                        fc[1].dataset.name != "mnist", fc[0].name)
    return [(str(folder), card) for folder, card in sorted(list_checkpoints(paths.SHIPPED_CHECKPOINTS), key=order)]


def tagged_checkpoints(task: str):
    """(folder, card, "shipped" | "my run") of every checkpoint of `task`, the shipped ones first (in the
    order of `shipped_cards`), then the saved runs."""
    found = [(Path(f), c, "shipped") for f, c in shipped_cards()]
    found += [(f, c, "my run" if c.run.get("state") != "in_progress" else f"my run, epoch {c.run['epoch']} so far")
              for f, c in list_checkpoints(paths.runs_dir())]
    return [(f, c, tag) for f, c, tag in found if c.task == task]


def model_choices(task: str) -> dict[str, str]:
    """Label "name (model on data set, shipped | my run)" -> folder of every checkpoint of `task`, shipped first."""
    return {f"{folder.name} ({card.model.name} on {card.dataset.name}, {tag})": str(folder)
            for folder, card, tag in tagged_checkpoints(task)}


def enlarge(image, side: int, square: bool = True):
    """Blow a small uint8 image up with crisp pixels so its longest side is `side` (on a square black tile)."""
    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.asarray(image))
    scale = side / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.NEAREST)
    if not square:
        return img
    tile = Image.new(img.mode, (side, side))
    tile.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return tile


@st.cache_data(show_spinner="Evaluating on the test set...")
def cached_report(folder: str) -> dict:
    """Test-set report (accuracy, per_class, confusion) of a saved classifier checkpoint."""
    from core.trainer.evaluate import evaluate_classifier

    model, card = cached_checkpoint(folder)
    ds = card.dataset
    report = evaluate_classifier(model, cached_dataset(ds.name), ds.mean, ds.std)
    return {**report, "probs": report["probs"].numpy()}


@st.cache_resource(show_spinner="Loading the data set...")
def cached_dataset(name: str):
    """A data set from the data directory, shared across sessions (read-only tensors)."""
    return load_dataset(name)


@st.cache_resource(show_spinner=False, max_entries=64)
def cached_snapshot(folder: str, epoch: int):
    """A checkpoint's model with its weights after `epoch` (shared, never trained)."""
    return load_snapshot(Path(folder), epoch)


def cached_checkpoint(folder: str):
    """A shipped or saved checkpoint's (model, card); shared across sessions, so never train it. Loaded
    again when its card changes: a run in progress saves a new checkpoint after every epoch."""
    card = Path(folder) / CARD
    return _loaded_checkpoint(folder, card.stat().st_mtime_ns if card.is_file() else 0)


@st.cache_resource(show_spinner=False, max_entries=32)
def _loaded_checkpoint(folder: str, card_stamp: int):
    return load_checkpoint(Path(folder))
