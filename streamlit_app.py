"""CNN Studio: the entry point. The page catalogue, page config and the navigation over the pages in `pages/`.

`PAGES` is the one list the navigation is built from and the Home page describes (Home imports it; only
`streamlit run streamlit_app.py` builds the navigation), so a page is registered and documented in one place.
"""
from dataclasses import dataclass

import streamlit as st


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
    PageInfo("Train", "pages/sweeps.py", "Sweeps", ":material/tune:",
             "Tune a recipe with Optuna (grid, random or TPE, with pruning): every trial is a run you can watch; "
             "a table of trials, the parallel-coordinates plot and the parameter importances."),
    PageInfo("Train", "pages/teach.py", "Teach", ":material/photo_camera:",
             "Teach new classes from a few camera shots, photos or sample photos each: a head on the pretrained "
             "EfficientNet-Lite0 trained in seconds, checked on held-out shots, then tried live, explained and saved."),
    PageInfo("Train", "pages/runs.py", "Compare runs", ":material/compare_arrows:",
             "All runs in one table; overlay their curves, accuracy against training time; per run a "
             "confusion matrix whose cells show their test images, and a gallery of right and wrong answers."),
    PageInfo("Play", "pages/draw.py", "Draw", ":material/draw:",
             "Draw a digit and watch every class probability update after each stroke; see each MNIST "
             "preprocessing step. Models of photo data sets take an upload or the camera instead."),
    PageInfo("Play", "pages/composer.py", "Multi-MNIST composer", ":material/join:",
             "Place two digits and get both back with their x-centres from one multi-task CNN, with Grad-CAM, "
             "HiResCAM or saliency for each head, and what the loss weight lambda trades."),
    PageInfo("Play", "pages/strings.py", "Digit-string reader", ":material/pin:",
             "Type a digit string and watch a CRNN read it column by column: the CTC alignment, greedy "
             "against beam search, and the beam's candidates."),
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


if __name__ == "__main__":  # run by Streamlit, not imported by Home
    st.set_page_config(page_title="CNN Studio", page_icon=":material/neurology:", layout="wide")
    sections: dict[str, list] = {}
    for info in PAGES:
        sections.setdefault(info.section, []).append(
            st.Page(info.path, title=info.title, icon=info.icon, default=info.path == "pages/home.py"))
    st.navigation(sections).run()
