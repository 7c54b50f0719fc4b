"""Multi-MNIST composer: place two digits, see the multi-task CNN's digits, x-centres and per-head Grad-CAM."""
import numpy as np
import pandas as pd
import streamlit as st

from core.data import DataError
from core.data.multimnist import DIGIT, compose
from core.composer.multidigit import head_cams, head_saliency, pair_prediction
from core.plots import composition_figure
from core.draw.preprocess import example_digit, preprocess_digit
from core.viz import enlarge, overlay
from pages._inputs import sketchpad
from pages._models import choose_model
from pages._ui import PLAIN, cached_dataset, page_title, pressed, sample_note, warn_if_unfamiliar

page_title("Multi-MNIST composer")
try:
    mnist = cached_dataset("mnist")
    sample_note(mnist)
except DataError as exc:
    mnist = None
    st.warning(f"The MNIST test digits are not available here, so only drawn digits can be placed. {exc}")

_, model, card = choose_model("multi_digit", "composer_model", "Multi-task model")
generator = card.section("generator")
width = generator["width"]
st.caption(f"Shared conv backbone with two heads: both digits (2 x 10 classes) and both x-centres (pixels), "
           f"trained with CE + {card.training['lambda']:g} x MSE on composed {DIGIT}x{width} images.")


def digit_slot(side: str, default_class: int, default_x: int):
    """One digit's source and position; returns (28x28 tile, true class or None, left edge in px)."""
    st.markdown(f"**{side.title()} digit**")
    sources = ["Test digit", "Random", "Draw"] if mnist is not None else ["Draw"]
    source = st.radio("Source", sources, horizontal=True, key=f"composer_{side}_source", label_visibility="collapsed")
    tile, truth = None, None
    if source == "Test digit":
        a, b = st.columns(2)
        truth = a.selectbox("Class", range(10), index=default_class, key=f"composer_{side}_class")
        pool = np.nonzero(mnist.test_y.numpy() == truth)[0]
        index = b.number_input(f"Index (of {len(pool)})", 0, len(pool) - 1, 0, key=f"composer_{side}_index")
        tile = mnist.test_x[pool[index], 0].numpy()
    elif source == "Random":
        if pressed("Another random digit", f"composer_{side}_reroll", icon=":material/casino:"):
            st.session_state[f"composer_{side}_seed"] = st.session_state.get(f"composer_{side}_seed", 0) + 1
        pick = np.random.default_rng([st.session_state.get(f"composer_{side}_seed", 0), side == "right"])
        index = int(pick.integers(len(mnist.test_y)))
        tile, truth = mnist.test_x[index, 0].numpy(), int(mnist.test_y[index])
    else:
        prep = preprocess_digit(sketchpad(f"composer_{side}_canvas", size=168, width=14))
        tile = example_digit(DIGIT) if prep.empty else prep.image
        if prep.empty:
            st.caption("Draw a digit here (until then: the example digit).")
    x = st.slider("Position (left edge, px)", 0, width - DIGIT, default_x, key=f"composer_{side}_x")
    return tile, truth, x


@st.fragment  # a slider or a digit reruns the composition only, not the page
def composition() -> None:
    left_col, right_col, settings = st.columns([2, 2, 1.3], gap="medium")
    with left_col:
        left = digit_slot("left", 4, max(0, width // 2 - DIGIT - 2))
    with right_col:
        right = digit_slot("right", 7, min(width - DIGIT, width // 2 + 2))
    with settings:
        noise = st.slider("Noise (std of pixel noise)", 0.0, 0.5, 0.0, 0.05, key="composer_noise",
                          help=f"Trained with noise {generator.get('noise', 0):g}.")
        overlap = max(0, DIGIT - abs(right[2] - left[2]))
        st.metric("Tiles overlap", f"{overlap} px", help=f"Trained with up to {generator['max_overlap']} px.")
        method = st.radio("Attribution", ["HiResCAM", "Grad-CAM", "Saliency"], key="composer_method", horizontal=True,
                          help="HiResCAM: gradient x activation per position (faithful for these heads); Grad-CAM: "
                               "channel-averaged gradients; saliency: |d output / d pixel|.")

    image, centres = compose([left[0], right[0]], [left[2], right[2]], width=width, noise=noise, seed=1)
    order = np.argsort(centres, kind="stable")  # the model answers left to right, wherever each slot's digit is
    truths = [(left, right)[i][1] for i in order]
    true_x = centres[order]
    probs, pred_x = pair_prediction(model, card, image)
    digits = tuple(int(p.argmax()) for p in probs)

    warn_if_unfamiliar(model, card, image, generator.get("noise", 0), noise)
    st.plotly_chart(composition_figure(image, true_x, pred_x, labels=digits), width="stretch", key="composer_figure",
                    config={"displayModeBar": False})
    cols = st.columns(4)
    for i, (name, one, two) in enumerate(zip(["Left", "Right"], cols[::2], cols[1::2])):
        verdict = "" if truths[i] is None else ", correct" if digits[i] == truths[i] else f", wrong: it is {truths[i]}"
        one.metric(f"{name} digit", str(digits[i]), f"{probs[i].max():.1%} confident{verdict}", **PLAIN)
        two.metric(f"{name} x-centre", f"{pred_x[i]:.1f} px", f"error {pred_x[i] - true_x[i]:+.2f} px", **PLAIN)
    with st.expander("Both heads' class probabilities"):
        bar = st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)  # a table: no charts
        st.dataframe(pd.DataFrame({"digit": range(10), "left head": probs[0], "right head": probs[1]}),  # to redraw
                     hide_index=True, column_config={"left head": bar, "right head": bar})

    st.subheader("Where each head looks")
    st.caption(f"{method} for each output of the one network: each digit head for its predicted class, and each "
               "x-centre regression output (evidence that pushes that x up). The heads read the backbone's last map "
               "flattened, position by position; Grad-CAM averages each channel's gradient over positions, so it "
               "often cannot tell which digit a head used, and HiResCAM (gradient x activation everywhere) can.")
    maps = (head_saliency(model, card, image, digits) if method == "Saliency"
            else head_cams(model, card, image, digits, hires=method == "HiResCAM"))
    side = 2 * max(image.shape)
    for (name, heat), col in zip(maps.items(), st.columns(4)):
        col.image(enlarge(overlay(image, heat), side, square=False), caption=f"{method}: {name}", width="stretch")


composition()
if sweep := card.section("lambda_sweep"):
    st.subheader("What lambda does")
    st.caption(f"loss = CE + lambda x MSE(x / 28). One run per lambda, same data and seed, {sweep['epochs']} "
               f"epoch(s) of {sweep['n_train']:,} images; measured on fresh test compositions. `{sweep['command']}`")
    st.dataframe(pd.DataFrame(sweep["rows"]), hide_index=True, column_config={
        "both_digits_accuracy": st.column_config.NumberColumn("both digits right", format="percent"),
        "x_mae_px": st.column_config.NumberColumn("x MAE (px)", format="%.2f"),
        "train_seconds": st.column_config.NumberColumn("training (s)", format="%.0f")})
