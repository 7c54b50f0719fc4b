"""Home: what CNN Studio is, the shipped models (from their model cards) and what each page does."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import paths
from core.data import list_datasets
from core.charts import reliability_figure
from pages._models import shipped_cards
from pages._web import onnx_button
from pages._ui import page_title
from streamlit_app import PAGES

page_title("CNN Studio")
st.markdown("Train convolutional networks on real image data, watch them learn, and look inside them. "
            "Every page wraps the same PyTorch core: one data layer, one training engine, one checkpoint "
            "format with a model card.")

cards = shipped_cards()


def headline_words(card) -> str:
    """'test accuracy 99.60 %' from the card's one headline metric ('not measured' when it has none)."""
    return card.headline.describe() if card.headline else "not measured"


def size_words(card) -> str:
    """The stored weights' size, saying where frozen weights come from when the file holds only a head."""
    size = f"{card.weights_bytes / 1024:,.0f} KB" if card.weights_bytes >= 10_240 else f"{card.weights_bytes:,} bytes"
    return "in a package" if card.weights_from_package else size


st.subheader("Shipped models")
if not cards:
    st.warning("No shipped checkpoints found in `checkpoints/`. Train one with "
               "`python -m core train --recipe fast_mnist --out checkpoints/mnist_fast_cnn`.")
else:
    rows = [{
        "checkpoint": folder.rsplit("/", 1)[-1],
        "model": card.model.name,
        "data set": card.dataset.name,
        "headline (test)": headline_words(card),
        "parameters": f"{card.params:,}",
        "size": size_words(card),
        "epochs": card.training.get("epochs") or "pretrained",
        "trained in": (f"{card.training['train_seconds']:,.0f} s" if card.training.get("train_seconds")
                       else "not here"),
    } for folder, card in cards]
    st.dataframe(pd.DataFrame(rows).astype(str), hide_index=True, width="stretch", height=38 + 35 * len(rows),
                 column_config={"epochs": st.column_config.TextColumn(width="small")})  # every model in sight
    names = [r["checkpoint"] for r in rows]
    chosen = st.selectbox("Model card", names, key="home_card")
    folder, card = cards[names.index(chosen)]
    left, right = st.columns([2, 3])
    with left:
        training = card.training
        st.markdown(f"**{card.model.name}** on **{card.dataset.name}**: **{headline_words(card)}**, "
                    + (f"x-centre MAE **{card.metrics['test_x_mae_px']:.2f} px**, "
                       if "test_x_mae_px" in card.metrics else "")
                    + f"{card.params:,} parameters, "
                    + (f"{training['epochs']} epoch(s) in {training.get('train_seconds') or 0:,.0f} s."
                       if training.get("epochs") else "pretrained elsewhere."))
        st.markdown("Made by:")
        st.code(card.command or "(no command recorded)", language="bash", wrap_lines=True)
        onnx_button(folder, None, card, "home")
        with st.expander("Full model card (JSON)"):
            st.json({k: v for k, v in card.to_dict().items() if k != "training"} | {
                "training": {k: v for k, v in training.items() if k != "history"}})
    with right:
        history = card.training.get("history", [])
        if history:
            fig = go.Figure()
            epochs = [h["epoch"] for h in history]
            fig.add_scatter(x=epochs, y=[h["train_loss"] for h in history], name="train loss")
            if "val_loss" in history[0]:
                fig.add_scatter(x=epochs, y=[h["val_loss"] for h in history], name="validation loss")
            fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="Training loss per epoch",
                              xaxis_title="epoch", xaxis=dict(dtick=1))
            st.plotly_chart(fig, width="stretch")
        if section := card.section("calibration"):
            st.plotly_chart(reliability_figure(section), width="stretch", key="home_reliability")
            m = card.metrics
            st.caption(f"Test ECE {m['ece']:.4f}" + (f", {m['ece_calibrated']:.4f} after temperature scaling (T = "
                                                     f"{m['temperature']:.2f}, fitted on {section['fitted_on']})"
                                                     if "temperature" in m else "") + ".")
        per_class = card.metrics.get("test_per_class", {})
        if per_class:
            st.caption("Per-class test accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in per_class.items()))

st.subheader("Pages")
for info in PAGES:
    st.markdown(f"- **{info.title}** ({info.section}): {info.description}")

st.subheader("Data")
st.markdown(f"Data directory: `{paths.data_dir()}` (set `{paths.DATA_ENV}` or pass `--data-dir` to the CLI). "
            "Missing files are downloaded from the official mirrors when the network allows.")
st.dataframe(pd.DataFrame([{"name": k, "description": v} for k, v in list_datasets().items()]
                          + [{"name": "folder:PATH", "description": "any image folder or .zip: "
                              "train/<class>/*, test/<class>/* (or <class>/*)"}]),
             hide_index=True, width="stretch")
