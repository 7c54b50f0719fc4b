"""Teach: new classes from a few shots each (camera, files, sample photos), a head trained in seconds on the
pretrained EfficientNet-Lite0, checked on held-out shots, then used live, explained, saved and exported."""
import numpy as np
import streamlit as st

from core import paths
from core.classifier.ood import answer
from core.draw.preprocess import SAMPLE_PHOTOS, sample_photo
from core.errors import ProjectError
from core.inside.explain import class_target, grad_cam
from core.plots import confusion_figure, line_figure
from core.teach.head import teach
from core.teach.shots import VIEWS, as_shot, check_classes
from core.teach.verbs import save_taught, taught_checkpoint
from core.engine.predict import to_batch
from core.engine.recipe import kind_of_task
from core.viz import enlarge, overlay
from pages._inputs import upload_image
from pages._shots import (class_rows, examples_zip, feature_bank, shot_input, start_example, state, thumbnails, total,
                          training_set)
from pages._models import model_choices
from pages._ui import page_title, pressed, show_answer
from pages._web import onnx_button

page_title("Teach")
s = state()
st.caption("Name 2-10 classes, give each a few shots (5-10 is plenty), press Train: a linear head learns them on top "
           "of EfficientNet-Lite0's ImageNet features in seconds. Each shot is also seen mirrored and zoomed.")
if st.button("Start from an example: cat, coffee and rocket, 8 shots each from sample photos", icon=":material/bolt:"):
    start_example(s)
    st.rerun()

st.subheader("1. Classes and their shots")
class_rows(s)
shot_input(s)
thumbnails(s)

st.subheader("2. Train")
if st.button("Train", type="primary", icon=":material/model_training:", disabled=total(s) == 0, key="teach_train"):
    try:
        classes = check_classes(s["classes"])
        shots, labels, counts = training_set(s)
        bar = st.progress(0.0, "Features of the new shots...")
        features = feature_bank().features(shots, progress=lambda d, n: bar.progress(d / n, f"Features: {d} of {n} "
                                                                                   "new shots"))
        bar.empty()
        taught = teach(features, labels, classes)
        model, card = taught_checkpoint(taught, counts)
        s["taught"] = {"taught": taught, "model": model, "card": card, "counts": counts, "saved": None,
                       "shots": [[k for k, _ in per_class] for per_class in s["shots"]], "classes": classes}
    except ProjectError as exc:
        st.error(f"Cannot train yet: {exc}")
done = s["taught"]
if done is None:
    st.info("Add at least 2 shots to every class, then press Train.")
    st.stop()
taught, model, card = done["taught"], done["model"], done["card"]
if done["shots"] != [[k for k, _ in per_class] for per_class in s["shots"]] or done["classes"] != s["classes"]:
    st.info("The classes or shots changed since this training: press Train again to use them. Below: the last "
            "model trained.", icon=":material/update:")
check, classes = taught.check, taught.classes
left, mid, right = st.columns([3, 4, 4])
left.metric("Held-out accuracy", f"{check['accuracy']:.0%}")
left.caption(f"By {check['method']}: each shot answered by a head trained without it. Trained in "
             f"{taught.seconds:.2f} s on {check['shots']} shots x {len(VIEWS)} views.")
left.dataframe({"class": list(check["per_class"]), "held out": list(check["per_class"].values()),
                "shots": [done["counts"][c] for c in classes]}, hide_index=True,
               column_config={"held out": st.column_config.NumberColumn(format="percent")})
mid.plotly_chart(confusion_figure(check["confusion"], classes, "held-out shots: true (rows) x predicted"),
                 key="teach_confusion")
loss = line_figure({"training loss": list(enumerate(taught.losses))}, "L-BFGS evaluation", "training loss")
right.plotly_chart(loss.update_xaxes(dtick=None), key="teach_loss")

st.subheader("3. Try it")
source = st.radio("Input", ["Camera", "Upload", "Sample photo"], index=2, horizontal=True, key="teach_try_source")
if source == "Sample photo":
    photo = st.selectbox("Photo (bundled with scikit-image)", list(SAMPLE_PHOTOS), key="teach_try_photo")
    raw = sample_photo(photo)
else:
    picked = upload_image("teach_try", "Image", camera=source == "Camera")
    raw = picked[0] if picked else None
if raw is not None:
    image = as_shot(np.asarray(raw))
    said = answer(model, card, image)
    top = int(said.probs.argmax())
    left, mid, right = st.columns([1, 1, 2])
    left.image(enlarge(image, 224), caption="input (as the model reads it)")
    heat = grad_cam(model, to_batch(image, card), class_target(top))[0].numpy()
    mid.image(enlarge(overlay(image, heat, alpha=0.55), 224), caption=f"Grad-CAM for {classes[top]}")
    show_answer(said, classes, "teach_try", right)

st.subheader("4. Keep it")
left, right = st.columns([2, 1], vertical_alignment="bottom")
default = "taught-" + "-".join(paths.safe_name(c, "class")[:12] for c in classes)[:48]
name = left.text_input("Name", default, key="teach_save_name", max_chars=64)
if right.button("Save as a model", icon=":material/save:", key="teach_save"):
    try:
        folder = paths.runs_dir() / paths.safe_name(name)
        if folder.exists() and str(folder) != done["saved"]:
            raise FileExistsError(f"a run or model called {folder.name} exists; give this one another name")
        done["saved"] = str(save_taught(taught, done["counts"], folder))
    except (ProjectError, OSError) as exc:
        st.error(f"Cannot save it: {exc}")
if done["saved"]:
    st.success(f"Saved as {paths.shown(done['saved'])}: it is listed on Draw, Inside the network and Compare runs.",
               icon=":material/check_circle:")
    label = next((lbl for lbl, f in model_choices(card.task).items() if f == done["saved"]), None)
    columns = st.columns(3)
    for column, (page, key, text) in zip(columns, kind_of_task(card.task).opens if label else ()):
        if pressed(text, f"teach_open_{key}", column, icon=":material/arrow_forward:"):
            st.session_state[key] = label
            st.switch_page(page)
    onnx_button(done["saved"], model, card, "teach", columns[2])
st.download_button("Download the shots (zip of class folders)", lambda: examples_zip(s), file_name="shots.zip",
                   mime="application/zip", on_click="ignore", icon=":material/folder_zip:", key="teach_zip",
                   help="Class folders of PNG shots: this page's zip input and python -m core teach read them back.")
