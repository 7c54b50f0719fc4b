"""Caption generator: a CNN + attention LSTM captions a scene; see where it looks for every word, the beam's
alternatives, and the top-5 words at each step (choose one to force it and decode the rest from there)."""
import pandas as pd
import streamlit as st

from core import paths
from core.captions.captioning import attention_map, caption_image, exact_match, vocabulary_of
from core.data import DataError
from core.draw.preprocess import preprocess_photo
from core.viz import enlarge, overlay, to_rgb
from pages._inputs import upload_image
from pages._models import cached_scenes, choose_model
from pages._ui import PERCENT, SHARED_INPUT, page_title, pressed, remembered

page_title("Caption generator")
folder, model, card = choose_model("captioning", "caption_model", "Captioning model")
vocab = vocabulary_of(card)
st.caption("A small CNN turns the 64x64 image into an 8x8 grid of features; an LSTM writes the caption word by word, "
           "at each word attending over the grid (Show, Attend and Tell). Trained on scenes of real MNIST, "
           "Fashion-MNIST and CIFAR-10 images with grammar-made captions; some pairs of objects never appear "
           "together in training (the held-out scenes). The test scenes here are composed from the test images "
           "shipped with CNN Studio.")

shared = st.session_state.get(SHARED_INPUT)
sources = ["Test scene (seen combinations)", "Test scene (held-out combinations)", "Upload"]
source = st.radio("Image", sources + (["Drawing from the Draw page"] if shared is not None else []), horizontal=True,
                  key="caption_source")
image, references = None, None
if source.startswith("Test scene"):
    try:
        scenes = cached_scenes(card, "held_out" if "held-out" in source else "seen")
    except DataError as exc:
        st.warning(f"The scene data sets are not available here ({exc}). Upload an image instead.")
    else:
        index = st.slider("Scene", 0, len(scenes.images) - 1, 0, key="caption_index")
        image, references = scenes.images[index].numpy(), scenes.captions[index]
elif source == "Upload":
    upload = upload_image("caption_upload")
    if upload is not None:
        image = preprocess_photo(upload[0], size=64, channels=3)
else:
    image = preprocess_photo(to_rgb(shared["image"]), size=64, channels=3)
if image is None:
    st.info("Choose an image to caption.")
    st.stop()
if references is None:
    st.info("This model only knows its training scenes: 1 to 3 digits, clothes or small photos in the cells of a "
            "2 x 2 grid on black. On other pictures it still writes a caption in that language, which says more "
            "about the model than about the picture.")

@st.fragment  # moving the word slider reruns this part only; the decoding is remembered per image and beam
def captioned(image, references) -> None:
    left, right = st.columns([2, 3], gap="large")
    with right:
        mode, width = st.columns(2)
        beam = 1 if mode.radio("Decoding", ["Greedy", "Beam search"], horizontal=True, key="caption_mode") == "Greedy" \
            else width.slider("Beam width", 2, 10, 5, key="caption_beam")
        key = f"caption_prefix_{hash(image.tobytes())}"  # forced words belong to one image
        prefix = st.session_state.get(key, [])
        results = remembered("caption_decoded", (key, beam, tuple(prefix)),
                             lambda: caption_image(model, image, beam=beam, prefix=prefix))
        best = results[0]
        words = [vocab.words[t] for t in best.tokens]
        caption = " ".join(words)
        st.markdown(f"### {caption or '(empty caption)'}")
        if prefix:
            st.caption(f"Forced: the first {len(prefix)} word(s); the rest decoded from there.")
            if pressed("Undo the forced words", "caption_reset"):
                st.session_state.pop(key)
                st.rerun()
        if references is not None:
            right_answer = exact_match([references], [caption]) == 1.0
            st.markdown(("**Matches a reference caption.**" if right_answer else "**No reference says exactly this.**")
                        + " References: " + "; ".join(f"*{r}*" for r in references))
    if len(results) > 1:  # the beam's candidates, full width, best score first: every column in sight
        st.dataframe(pd.DataFrame([{"score (length-normalised)": d.score(0.7), "log p": d.log_prob,
                                    "ended": d.ended, "caption": vocab.decode(d.tokens + [2])} for d in results]),
                     hide_index=True, width="stretch", column_config={
                         "score (length-normalised)": st.column_config.NumberColumn(format="%.3f", width="small"),
                         "log p": st.column_config.NumberColumn(format="%.3f", width="small"),
                         "ended": st.column_config.CheckboxColumn(width="small"),
                         "caption": st.column_config.TextColumn(width="large")})
    if not words:
        left.image(enlarge(to_rgb(image), 320), caption="the image")
        return
    with left:
        if st.session_state.get("caption_word", 1) > len(words):  # a shorter caption than the last one
            st.session_state["caption_word"] = len(words)
        step = st.slider("Word", 1, len(words), 1, key="caption_word") - 1 if len(words) > 1 else 0
        heat = attention_map(best.attention[step], size=image.shape[-1])
        plain, attended = st.columns(2)  # the scene itself, to check colour words by eye, and where it looks
        plain.image(enlarge(to_rgb(image), 240), caption="the image")
        attended.image(enlarge(overlay(image, heat, alpha=0.55), 240),
                       caption=f"attention for word {step + 1}: “{words[step]}”")
    with right:
        st.markdown(f"**Step {step + 1}: the five most likely words** (choose one to force it here)")
        top = best.top[step]
        options = [vocab.words[i] for i, _ in top]
        st.dataframe(pd.DataFrame({"word": options, "probability": [p for _, p in top]}), hide_index=True,
                     width="content", column_config={"probability": st.column_config.ProgressColumn(
                         format="%.3f", min_value=0.0, max_value=1.0)})
        choice = st.pills("Force a word", options, key=f"caption_force_{step}_{caption}")
        if choice is not None and choice != words[step]:
            st.session_state[key] = list(best.tokens[:step]) + [vocab.index[choice]]
            st.rerun()
    st.markdown("**Attention for every word**")
    for row in range(0, len(words), 10):  # rows of ten: every word of a long caption in sight
        for col, i in zip(st.columns(10), range(row, min(row + 10, len(words)))):
            col.image(enlarge(overlay(image, attention_map(best.attention[i], size=image.shape[-1]), alpha=0.55), 96),
                      caption=words[i])


captioned(image, references)
with st.expander("Accuracy of this checkpoint (from its model card)"):
    rows = [{"decoding": dec, "scenes": split.replace("_", "-"), **{k.replace("bleu", "BLEU-").replace("_", " "): v
                                                                   for k, v in m.items() if k != "n"}}
            for dec, res in card.metrics.items() for split, m in res.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        **{f"BLEU-{n}": st.column_config.NumberColumn(format="%.3f") for n in range(1, 5)}, "exact match": PERCENT})
    st.caption(f"`python -m core evaluate {paths.shown(folder)}`")
