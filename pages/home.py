"""Home: what CNN Studio is, the shipped models (from their model cards) and what each page does."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import paths
from core.data import list_datasets
from pages._common import PAGES, shipped_cards

st.title("CNN Studio")
st.markdown("Train convolutional networks on real image data, watch them learn, and look inside them. "
            "Every page wraps the same PyTorch core: one data layer, one training engine, one checkpoint "
            "format with a model card.")

cards = shipped_cards()
HEADLINE = {"test_accuracy": "accuracy", "test_both_digits_accuracy": "both digits right",
            "test_exact_match_4_5": "exact match, 4-5 digit strings",
            "imagenet_top1_reported": "ImageNet top-1, as reported by its authors"}


def headline(card: dict) -> tuple[float | None, str]:
    """A checkpoint's main test figure and what it measures."""
    metrics = card.get("metrics", {})
    bleu4 = metrics.get("greedy", {}).get("seen", {}).get("bleu4") if isinstance(metrics.get("greedy"), dict) else None
    if bleu4 is not None:  # a captioner: BLEU-4 x 100, as BLEU is usually quoted
        return bleu4, "BLEU-4, seen test scenes"
    return next(((metrics[k], what) for k, what in HEADLINE.items() if k in metrics), (None, ""))


st.subheader("Shipped models")
if not cards:
    st.warning("No shipped checkpoints found in `checkpoints/`. Train one with "
               "`python -m core.train --recipe fast_mnist --out checkpoints/mnist_fast_cnn`.")
else:
    rows = [{
        "checkpoint": folder.rsplit("/", 1)[-1],
        "model": card["model"]["name"],
        "data set": card["dataset"]["name"],
        "test score (%)": 100 * (headline(card)[0] if headline(card)[0] is not None else float("nan")),
        "measured as": headline(card)[1],
        "test MSE": card.get("metrics", {}).get("test_mse"),
        "parameters": card.get("params"),
        "size (KB)": round(card.get("weights_bytes", 0) / 1024, 1),
        "epochs": card.get("training", {}).get("epochs"),
        "training time (s)": card.get("training", {}).get("train_seconds"),
    } for folder, card in cards]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"test score (%)": st.column_config.NumberColumn(format="%.2f"),
                                "test MSE": st.column_config.NumberColumn(format="%.4f"),
                                "parameters": st.column_config.NumberColumn(format="localized")})
    names = [r["checkpoint"] for r in rows]
    chosen = st.selectbox("Model card", names, key="home_card")
    folder, card = cards[names.index(chosen)]
    left, right = st.columns([2, 3])
    with left:
        training = card.get("training", {})
        accuracy, what = headline(card)
        st.markdown(f"**{card['model']['name']}** on **{card['dataset']['name']}**: "
                    + (f"test {what} **{accuracy:.2%}**, " if accuracy is not None else "")
                    + (f"x-centre MAE **{card['metrics']['test_x_mae_px']:.2f} px**, " if "test_x_mae_px" in card.get("metrics", {}) else "")
                    + (f"test MSE **{card['metrics']['test_mse']:.4f}**, " if "test_mse" in card.get("metrics", {}) else "")
                    + f"{card.get('params', 0):,} parameters, {training.get('epochs', '?')} epoch(s) in "
                    f"{training.get('train_seconds', 0):.1f} s.")
        st.markdown("Made by:")
        st.code(card.get("command") or "(no command recorded)", language="bash", wrap_lines=True)
        with st.expander("Full model card (JSON)"):
            st.json({k: v for k, v in card.items() if k != "training"} | {
                "training": {k: v for k, v in training.items() if k != "history"}})
    with right:
        history = card.get("training", {}).get("history", [])
        if history:
            fig = go.Figure()
            epochs = [h["epoch"] for h in history]
            fig.add_scatter(x=epochs, y=[h["train_loss"] for h in history], name="train loss")
            if "val_loss" in history[0]:
                fig.add_scatter(x=epochs, y=[h["val_loss"] for h in history], name="validation loss")
            fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="Training loss per epoch",
                              xaxis_title="epoch", xaxis=dict(dtick=1))
            st.plotly_chart(fig, width="stretch")
        per_class = card.get("metrics", {}).get("test_per_class", {})
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
