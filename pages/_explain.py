"""Inside the network's tabs that rerun on their own (fragments): occlusion with a box to draw."""
from __future__ import annotations

import streamlit as st

from core.engine.predict import input_spec, predict_proba, to_batch
from core.inside.explain import canvas_box, hide_box, occluder_rect, occlusion
from core.viz import enlarge, overlay
from pages._ui import remembered


@st.fragment  # a square, a stride or a box reruns this tab only, not the whole page
def occlusion_tab(model, card, image, probs, label: str) -> None:
    """How the predicted class's probability drops where a square hides the input, and a box the user draws."""
    (_, size), classes, top, x = input_spec(card), card.dataset.class_names, int(probs.argmax()), to_batch(image, card)
    st.caption("How much the predicted class's probability drops when a square of mean grey hides each spot.")
    left, right = st.columns(2)
    patch = left.slider("Square size", 2, max(3, size // 2), max(2, size // 5), key="inside_patch")
    stride = left.slider("Stride", 1, max(2, size // 4), max(1, size // 14 if size <= 64 else size // 8),
                         key="inside_stride")  # a 224 px photo: 7 x 7 positions, one batch, about a second
    memo = (label, hash(image.tobytes()), top, patch, stride)  # the map only changes with these: reuse it
    drop = remembered("inside_occlusion", memo, lambda: occlusion(model, x, lambda out: out.softmax(1)[:, top],
                                                                   patch=patch, stride=stride)).clamp_min(0).numpy()
    left.image(enlarge(overlay(image, drop / max(drop.max(), 1e-6)), 280), caption="occlusion sensitivity")
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script
    scale, grey = 280 / size, [round(m * 255) for m in card.dataset.mean]  # the grey the map's squares use
    start = occluder_rect(size, patch, scale, grey)
    with right:
        st.caption("Drag out a box on the input to hide that part (the last box drawn counts):")
        moved = st_canvas(background_image=enlarge(image, 280), drawing_mode="rect", fill_color=start["fill"],
                          stroke_color="#e4572e", stroke_width=2, height=280, width=280,
                          initial_drawing={"version": "4.4.0", "objects": [start]},
                          key=f"inside_occluder_{label}_{patch}")
    boxes = ((moved.json_data or {}).get("objects") if moved is not None else None) or [start]
    x0, y0, x1, y1 = box = canvas_box(boxes[-1], scale, size)
    change = (p_hidden := predict_proba(model, card, hide_box(image, box, grey)))[top] - probs[top]
    right.metric(f"P({classes[top]}) with pixels x {x0}-{x1 - 1}, y {y0}-{y1 - 1} hidden", f"{p_hidden[top]:.1%}",
                 f"{change:+.1%}" if abs(change) >= 5e-4 else None)  # under a tenth of a point: no change to show
