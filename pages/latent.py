"""Latent explorer: a Fashion-MNIST autoencoder's 64-d code space, mapped, walked, interpolated and probed."""
import numpy as np
import pandas as pd
import streamlit as st

from core import paths
from core.latent import autoencode as ae
from core.data import DataError
from core.plots import latent_map_figure
from core.draw.preprocess import preprocess_photo
from core.viz import enlarge
from pages._inputs import upload_image
from pages._models import cached_latent_bank, cached_latent_map, cached_latent_tsne, choose_model
from pages._ui import SHARED_INPUT, page_title

page_title("Autoencoder latent space")
folder, model, card = choose_model("reconstruction", "latent_model")
is_vae, classes = card.model.name == "conv_vae", card.dataset.class_names
try:
    lmap = cached_latent_map(folder)
except DataError as exc:
    st.error(f"The explorer needs the {card.dataset.name} test set: {exc}")
    st.stop()
m = card.metrics
st.caption(f"{card.model.name}, {card.model.kwargs['latent_dim']}-d code, trained on {card.dataset.name}: test MSE "
           f"{m['test_mse']:.4f}, PSNR {m['test_psnr']:.1f} dB, SSIM {m['test_ssim']:.3f}. The map shows "
           f"{len(lmap.z):,} test images{lmap.note}.")


@st.fragment  # moving a slider decodes and redraws this tab only
def walk() -> None:
    pos = st.session_state.get("latent_pos", 0)
    st.caption(f"Start from map point {pos} (choose it on the map) and move along the top principal directions "
               "of the code space, in standard deviations of the codes.")
    cols = st.columns(4)
    steps = [cols[i % 4].slider(f"Direction {i + 1}", -3.0, 3.0, 0.0, 0.25, key=f"latent_pc_{i}") for i in range(8)]
    left, right = st.columns(2)
    left.image(enlarge(lmap.images[pos], 280), caption="start", width=280)
    right.image(enlarge(ae.decode(model, lmap.walk(lmap.z[pos], steps))[0], 280), width=280,
                caption="decoded: the start's code moved along the directions")


tabs = st.tabs(["Map", "Reconstructions and denoising", "Walk", "Interpolate", "Your image", "Probe table"]
               + (["Sample"] if is_vae else []))
with tabs[0]:
    left, right = st.columns([3, 1])
    layout = left.radio("Layout", ["PCA", "t-SNE"], horizontal=True, key="latent_layout")
    sprites = left.toggle("Show thumbnails (150 images)", value=False, key="latent_sprites")
    xy = lmap.xy if layout == "PCA" else cached_latent_tsne(folder)
    thumbs = [(int(p), lmap.images[p]) for p in np.linspace(0, len(xy) - 1, 150).astype(int)] if sprites else None
    event = left.plotly_chart(latent_map_figure(xy, lmap.labels, classes, thumbs=thumbs, layout=layout),
                              key=f"latent_map_{layout}", on_select="rerun", selection_mode="points", width="stretch")
    for data in [p["customdata"] for p in (event.selection.points if event else []) if "customdata" in p][:1]:
        st.session_state.latent_pos = int(np.ravel(data)[0])  # the clicked point's position on the map
    pos = st.session_state.setdefault("latent_pos", 0)
    right.markdown(f"**Map point {pos}**: {classes[lmap.labels[pos]]}")
    right.image(enlarge(ae.strip([lmap.images[pos], ae.decode(model, lmap.z[pos])[0]]), 340, square=False),
                caption="the image | its code, decoded")
    right.caption("Click a point to decode it; hover for its class. Drag to pan, scroll to zoom.")
with tabs[1]:
    left, right = st.columns(2)
    start = left.slider("First map point", 0, len(lmap.z) - 8, 0, key="latent_gallery")
    noise = right.slider("Noise on the inputs (denoising)", 0.0, 0.6, 0.0, 0.05, key="latent_noise",
                         help="Standard deviation of pixel noise on the 0-1 scale: the autoencoder as a denoiser.")
    originals = list(lmap.images[start:start + 8])
    inputs = [ae.add_noise(o, noise, seed=start + i) for i, o in enumerate(originals)]
    recons, errors, mse = ae.reconstruction_rows(model, originals, inputs)
    noisy = f"noisy inputs (MSE {np.mean([ae.image_mse(n, o) for n, o in zip(inputs, originals)]):.4f})"
    for row, name in ((originals, "originals"), *([(inputs, noisy)] if noise else []),
                      (recons, "reconstructed from the noisy inputs" if noise else "reconstructions"),
                      (errors, "|error| against the originals")):
        st.image(enlarge(ae.strip(row), 900, square=False), caption=name, width="stretch")
    st.caption("Per-image MSE against the originals: " + ", ".join(f"{m:.4f}" for m in mse))
with tabs[2]:
    walk()
with tabs[3]:
    a, b, c = st.columns(3)
    first = a.number_input("From map point", 0, len(lmap.z) - 1, 0, key="latent_from")
    second = b.number_input("To map point", 0, len(lmap.z) - 1, 1, key="latent_to")
    spherical = c.toggle("Spherical (slerp)", value=is_vae, key=f"latent_slerp_{folder}",
                         help="For a VAE the codes lie near a sphere; slerp keeps intermediate codes there.")
    path = ae.interpolate(lmap.z[first], lmap.z[second], 10, spherical=spherical)
    row = [lmap.images[first]] + list(ae.decode(model, path)) + [lmap.images[second]]
    st.image(enlarge(ae.strip(row), 1100, square=False), width="stretch",
             caption=f"{classes[lmap.labels[first]]} -> {classes[lmap.labels[second]]}: the two originals at "
                     f"the ends, 10 decoded codes between ({'spherical' if spherical else 'linear'})")
with tabs[4]:
    upload = upload_image("latent_upload", "Upload an image (any size or format; it becomes a 28x28 grey image)")
    shared = st.session_state.get(SHARED_INPUT) if upload is None else {"image": upload[0], "source": "upload"}
    if shared is None:
        if st.session_state.get("latent_upload") is None:  # a file that is not an image has its one message above
            st.info("Upload an image, or draw one on the Draw page, to see where it lands in the code space.")
    else:
        mine = preprocess_photo(shared["image"], size=28, channels=1, dark_background=True)[0]
        z, bank = ae.encode_image(model, mine), cached_latent_bank(folder)
        near = bank.nearest(z, k=8)
        left, mid, right = st.columns([1, 1, 3])
        left.image(enlarge(mine, 168), caption=f"your image ({shared.get('source', 'drawing')})", width=168)
        mid.image(enlarge(ae.decode(model, z)[0], 168), caption="reconstruction", width=168)
        right.image(enlarge(ae.strip(list(bank.images[near])), 600, square=False),
                    caption="nearest training images in code space: "
                            + ", ".join(classes[bank.labels[p]] for p in near))
        st.plotly_chart(latent_map_figure(lmap.xy, lmap.labels, classes, marks={"you": tuple(lmap.project(z)[0])}),
                        key="latent_you_map", width="stretch")
with tabs[5]:
    if not (table := card.section("probe")):
        st.info(f"No probe table in this card yet: run `python -m core probe {paths.shown(folder)}`.")
    else:
        st.markdown("Seed 000 claims the latent features improve downstream classification. Fashion-MNIST test "
                    "accuracy of two probes trained on the full training set, on each kind of feature:")
        st.dataframe(pd.DataFrame(table["rows"]).drop(columns="seconds"), hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(v, format="percent") for k, v in
                                    (("logistic_regression", "logistic regression"), ("knn", "5-nearest neighbours"))})
        st.caption(f"PCA with 64 components reconstructs the test set with MSE {table['pca64_test_mse']:.4f}; "
                   f"this model: {m['test_mse']:.4f}. Made by `{table['command']}`.")
if is_vae:
    with tabs[6]:
        seed = st.number_input("Seed", 0, 10_000, 0, key="latent_seed")
        st.image(enlarge(ae.strip(list(ae.sample_images(model, 16, int(seed)))), 1100, square=False), width="stretch",
                 caption="16 codes drawn from the N(0, I) prior, decoded")
