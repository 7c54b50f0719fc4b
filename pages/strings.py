"""Digit-string reader: type or roll a digit string, see a CRNN read it column by column (CTC alignment, beam)."""
import numpy as np
import pandas as pd
import streamlit as st

from core import paths
from core.composer.ctc import align, beam_decode, greedy_decode, reading_log_prob, to_digits
from core.composer.multidigit import pick_tiles, string_log_probs, string_offsets
from core.data import DataError
from core.data.multimnist import compose
from core.plots import ctc_figure
from pages._models import choose_model
from pages._ui import PLAIN, cached_dataset, page_title, pressed, sample_note, warn_if_unfamiliar


def _text(labels) -> str:
    return "".join(str(d) for d in to_digits(labels)) or "(nothing)"


page_title("Read a digit string")
try:
    mnist = cached_dataset("mnist")
    sample_note(mnist)
except DataError as exc:
    st.info(f"The reader writes the string with MNIST test digits, which are not available here: {exc}")
    st.stop()
folder, model, card = choose_model("digit_string", "strings_model", "CRNN model")
gen = card.section("generator")
width, max_len = gen["width"], gen["max_len"]
st.caption(f"Conv features -> bidirectional GRU over {width // 8} columns of 8 px -> 11 classes per column "
           f"(blank + 10 digits), trained with CTC on strings of 1 to {max_len} digits {gen['gap'][0]} to "
           f"{gen['gap'][1]} px apart: no segmentation, no positions given.")
a, b, c, d, e = st.columns([2, 2, 2, 1.5, 1.3])
text = a.text_input(f"Digits (1 to {max_len})", "2026", max_chars=max_len, key="strings_text").strip()
gap = b.slider("Spacing (px between tiles)", -10, 10, 0, key="strings_gap",
               help="Negative: tiles overlap. Trained on the range shown in the caption above.")
noise = c.slider("Noise", 0.0, 0.5, 0.0, 0.05, key="strings_noise", help=f"Trained with noise {gen.get('noise', 0):g}.")
beam_width = d.select_slider("Beam width", [1, 2, 4, 8, 16], 8, key="strings_beam")
if pressed("Rewrite", "strings_reroll", e, icon=":material/casino:", help="Other test images of the same digits"):
    st.session_state["strings_seed"] = st.session_state.get("strings_seed", 0) + 1
if not text.isdigit():
    st.warning("Type digits only (0-9), at least one.")
    st.stop()
offsets = string_offsets(len(text), gap, width)
if offsets[0] < 0:
    st.warning(f"{len(text)} digits {gap} px apart do not fit on the {width} px canvas: lower the spacing.")
    st.stop()
tiles = pick_tiles(text, mnist.test_x[:, 0].numpy(), mnist.test_y.numpy(), st.session_state.get("strings_seed", 0))
image, _ = compose(tiles, offsets, width=width, noise=noise, seed=1)
log_probs = string_log_probs(model, card, image)
greedy, _ = greedy_decode(log_probs)
beams = beam_decode(log_probs, beam_width)
best = beams[0][0]
right = _text(best) == text
m1, m2, m3 = st.columns(3)
m1.metric("CRNN reads (beam)", _text(best), "correct" if right else f"wrong: it is {text}", **PLAIN)
m2.metric("Greedy (best path)", _text(greedy), "same as beam" if greedy == best else "differs from beam", **PLAIN)
m3.metric("P(reading)", f"{np.exp(reading_log_prob(log_probs, best)):.1%}", "summed over all its alignments", **PLAIN)
warn_if_unfamiliar(model, card, image, gen.get("noise", 0), noise)
st.plotly_chart(ctc_figure(image, np.exp(log_probs), align(log_probs, best), column_px=width / log_probs.shape[0]),
                width="stretch", key="strings_ctc", config={"displayModeBar": False})
st.caption("Top: the composed string. Bottom: each column's probabilities for blank and the ten digits; the "
           "red path is the CTC alignment of the reading (Viterbi over the blank-separated labels), and each "
           "digit is written above the column where the alignment first emits it.")
st.markdown("**The beam's candidates**")
exact = [reading_log_prob(log_probs, lab) for lab, _ in beams[:8]]
st.dataframe(pd.DataFrame([{"reading": _text(lab), "P(reading)": float(np.exp(full)), "log P": full,
                            "the beam kept": float(np.exp(kept))} for (lab, kept), full in zip(beams[:8], exact)]),
             hide_index=True, width="content",
             column_config={"P(reading)": st.column_config.NumberColumn(format="%.4f", help="over all alignments"),
                            "log P": st.column_config.NumberColumn(format="%.2f"),
                            "the beam kept": st.column_config.NumberColumn(format="%.4f", help=(
                                "the part of P(reading) in the alignments the beam kept: it depends on the width"))})
with st.expander("Accuracy of this checkpoint (from its model card)"):
    by_len = card.metrics.get("test_by_length", {})
    st.dataframe(pd.DataFrame([{"digits": k, "exact match (greedy)": v["exact_greedy"], "strings": v["n"]}
                               for k, v in by_len.items()]), hide_index=True, width="content")
    st.caption(f"Fresh test strings from MNIST's test digits: `python -m core evaluate {paths.shown(folder)}`")
