"""Latent explorer: a Fashion-MNIST autoencoder's 64-d code space, mapped, walked, interpolated and probed."""
import time

import numpy as np
import pandas as pd
import streamlit as st

from core.latent.autoencode import add_noise, decode, encode_image, interpolate, sample_images, strip
from core.data import DataError
from core.plots import latent_map_figure
from core.draw.preprocess import preprocess_photo
from pages._common import SHARED_INPUT, cached_dataset, enlarge
from pages._latent_data import cached_bank, cached_map, cached_tsne
from pages._inputs import upload_image
from pages._models import choose_model

st.title("Autoencoder latent space")
folder, model, card = choose_model("reconstruction", "latent_model")
is_vae = card.model.name == "conv_vae"
classes = card.dataset.class_names
try:
    data = cached_dataset(card.dataset.name)
    lmap = cached_map(folder)
except DataError as exc:
    st.error(f"The explorer needs the {card.dataset.name} test set: {exc}")
    st.stop()
metrics = card.metrics
st.caption(f"{card.model.name}, {card.model.kwargs['latent_dim']}-d code, trained on "
           f"{card.dataset.name}: test MSE {metrics['test_mse']:.4f}, PSNR {metrics['test_psnr']:.1f} dB, "
           f"SSIM {metrics['test_ssim']:.3f}. The map shows {len(lmap.z):,} test images.")


def show(img, caption, side=168, where=st):
    where.image(enlarge(img, side), caption=caption, width=side)


def test_image(pos: int) -> np.ndarray:
    return data.test_x[int(lmap.indices[pos]), 0].numpy()


tabs = st.tabs(["Map", "Reconstructions", "Walk", "Interpolate", "Your image", "Denoise", "Probe table"]
               + (["Sample"] if is_vae else []))
with tabs[0]:
    left, right = st.columns([3, 1])
    layout = left.radio("Layout", ["PCA", "t-SNE"], horizontal=True, key="latent_layout")
    sprites = left.toggle("Show thumbnails (150 images)", value=False, key="latent_sprites")
    xy = lmap.xy if layout == "PCA" else cached_tsne(folder)
    thumbs = [(int(p), test_image(int(p))) for p in np.linspace(0, len(xy) - 1, 150).astype(int)] if sprites else None
    event = left.plotly_chart(latent_map_figure(xy, lmap.labels, classes, thumbs=thumbs), key=f"latent_map_{layout}",
                              on_select="rerun", selection_mode="points", width="stretch")
    points = [p for p in (event.selection.points if event else []) if p.get("customdata") is not None]
    if points:
        cd = points[0]["customdata"]
        st.session_state.latent_pos = int(cd[0] if isinstance(cd, list) else cd)
    pos = st.session_state.setdefault("latent_pos", 0)
    right.markdown(f"**Map point {pos}**: {classes[lmap.labels[pos]]} (test image {lmap.indices[pos]})")
    show(test_image(pos), "the image", where=right)
    show(decode(model, lmap.z[pos])[0], "its code, decoded", where=right)
    right.caption("Click a point to decode it; hover for its class. Drag to pan, scroll to zoom.")
with tabs[1]:
    start = st.slider("First map point", 0, len(lmap.z) - 8, 0, key="latent_gallery")
    originals = [test_image(p) for p in range(start, start + 8)]
    recons = decode(model, lmap.z[start:start + 8])
    errors = [np.abs(o.astype(int) - r.astype(int)).astype(np.uint8) for o, r in zip(originals, recons)]
    for row, name in ((originals, "originals"), (recons, "reconstructions"), (errors, "|error|")):
        st.image(enlarge(strip(row), 900, square=False), caption=name, width="stretch")
    mse = [float(((o / 255 - r / 255) ** 2).mean()) for o, r in zip(originals, recons)]
    st.caption("Per-image MSE: " + ", ".join(f"{m:.4f}" for m in mse))
with tabs[2]:
    pos = st.session_state.get("latent_pos", 0)
    st.caption(f"Start from map point {pos} (choose it on the map) and move along the top principal directions "
               "of the code space, in standard deviations of the codes.")
    cols, steps = st.columns(4), []
    for i in range(8):
        steps.append(cols[i % 4].slider(f"Direction {i + 1}", -3.0, 3.0, 0.0, 0.25, key=f"latent_pc_{i}"))
    started = time.perf_counter()
    walked = decode(model, lmap.walk(lmap.z[pos], steps))[0]
    picture, ms = enlarge(walked, 280), (time.perf_counter() - started) * 1000
    left, right = st.columns(2)
    show(test_image(pos), "start", 280, left)
    right.image(picture, caption=f"decoded (decode + render {ms:.1f} ms)", width=280)
with tabs[3]:
    a, b, c = st.columns(3)
    first = a.number_input("From map point", 0, len(lmap.z) - 1, 0, key="latent_from")
    second = b.number_input("To map point", 0, len(lmap.z) - 1, 1, key="latent_to")
    spherical = c.toggle("Spherical (slerp)", value=is_vae, key=f"latent_slerp_{folder}",
                         help="For a VAE the codes lie near a sphere; slerp keeps intermediate codes there.")
    path = interpolate(lmap.z[first], lmap.z[second], 10, spherical=spherical)
    row = [test_image(first)] + list(decode(model, path)) + [test_image(second)]
    st.image(enlarge(strip(row), 1100, square=False), width="stretch",
             caption=f"{classes[lmap.labels[first]]} -> {classes[lmap.labels[second]]}: the two originals at "
                     f"the ends, 10 decoded codes between ({'spherical' if spherical else 'linear'})")
with tabs[4]:
    shared = st.session_state.get(SHARED_INPUT)
    upload, mine = upload_image("latent_upload", "Upload an image (any size or format; it becomes a 28x28 grey image)"), None
    if upload is not None or shared is not None:
        mine = preprocess_photo(upload[0] if upload else shared["image"], size=28, channels=1, dark_background=True)[0]
        if upload is None:
            st.caption(f"Using the image from the Draw page ({shared.get('source', 'drawing')}).")
    if mine is None:
        st.info("Upload an image, or draw one on the Draw page, to see where it lands in the code space.")
    else:
        z = encode_image(model, mine)
        bank = cached_bank(folder)
        near = bank.nearest(z, k=8)
        left, mid, right = st.columns([1, 1, 3])
        show(mine, "your image", where=left)
        show(decode(model, z)[0], "reconstruction", where=mid)
        right.image(enlarge(strip([data.train_x[int(bank.indices[p]), 0].numpy() for p in near]), 600, square=False),
                    caption="nearest training images in code space: "
                            + ", ".join(classes[bank.labels[p]] for p in near))
        st.plotly_chart(latent_map_figure(lmap.xy, lmap.labels, classes, marks={"you": tuple(lmap.project(z)[0])}),
                        key="latent_you_map", width="stretch")
with tabs[5]:
    left, right = st.columns(2)
    strength = left.slider("Noise (std on the 0-1 pixel scale)", 0.0, 0.6, 0.25, 0.05, key="latent_noise")
    pos = right.number_input("Map point", 0, len(lmap.z) - 1, st.session_state.get("latent_pos", 0), key="latent_dn")
    clean = test_image(pos)
    noisy = add_noise(clean, strength, seed=int(pos))
    cleaned = decode(model, encode_image(model, noisy))[0]
    err = lambda img: float(((img / 255 - clean / 255) ** 2).mean())  # noqa: E731
    for col, (img, name) in zip(st.columns(3), ((clean, "clean"), (noisy, f"noisy (MSE {err(noisy):.4f})"),
                                                 (cleaned, f"reconstructed from noisy (MSE {err(cleaned):.4f})"))):
        show(img, name, 220, col)
with tabs[6]:
    table = card.probe
    if not table:
        st.info(f"No probe table in this card yet: run `python -m core probe {folder}`.")
    else:
        st.markdown("Seed 000 claims the latent features improve downstream classification. Fashion-MNIST test "
                    "accuracy of two probes trained on the full training set, on each kind of feature:")
        st.dataframe(pd.DataFrame(table["rows"]).drop(columns="seconds"), hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="percent") for k in ("logistic_regression", "knn")})
        st.caption(f"PCA with 64 components reconstructs the test set with MSE {table['pca64_test_mse']:.4f}; "
                   f"this model: {metrics['test_mse']:.4f}. Made by `{table['command']}`.")
if is_vae:
    with tabs[7]:
        seed = st.number_input("Seed", 0, 10_000, 0, key="latent_seed")
        st.image(enlarge(strip(list(sample_images(model, 16, int(seed)))), 1100, square=False), width="stretch",
                 caption="16 codes drawn from the N(0, I) prior, decoded")
