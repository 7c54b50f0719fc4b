"""Trainer: configure a run (or pick a seed's recipe), watch it learn live, and inspect the result."""
import dataclasses
from pathlib import Path

import streamlit as st

from core.data import AugmentConfig, DataError, list_datasets
from core.trainer.keras import KERAS_MODELS
from core.models import list_models
from core.engine.optim import OPTIMIZERS, SCHEDULES
from core.plots import confusion_figure
from core.trainer.presets import GROUPS, PRESETS, preset
from core.trainer.runs import (active_run, can_resume, list_runs, read_group, read_status, resume_run, start_run, start_runs,
                       uploaded_datasets)
from core.viz import augmented_grid
from pages._common import cached_checkpoint, cached_dataset, cached_report, enlarge
from pages._models import zip_uploader
from pages._results import cv_results, group_results, live_run, open_elsewhere, transfer_evidence

st.title("Train a CNN")
name = st.selectbox("Recipe", [*PRESETS, *GROUPS], key="trainer_preset")
grouped = [s.model for s in GROUPS.get(name, [])]  # a group trains each of these models with the settings below
if grouped:
    st.info(f"This recipe trains {' and '.join(grouped)} one after the other with the same settings, then compares "
            "them on one screen: accuracy, training time and each one's most common confusions.")
base, k = preset(name), f"trainer_{name}_"  # widget keys per recipe: choosing a recipe resets the settings
with st.expander("Settings", expanded=True):
    zip_uploader(k + "data")
    a, b, c, d = st.columns(4)
    datasets, models = [*list_datasets(), *uploaded_datasets()], list(list_models())
    dataset = a.selectbox("Data set", datasets, index=datasets.index(base.dataset), key=k + "data",
                          format_func=lambda n: f"uploaded: {Path(n).name}" if n.startswith("folder:") else n)
    model = b.selectbox("Model", models, index=models.index(base.model), key=k + "model", disabled=bool(grouped),
                        help="Set by the recipe: it trains " + " and ".join(grouped) if grouped else None)
    epochs = c.number_input("Epochs", 1, 500, base.config.epochs, key=k + "epochs")
    batch = d.select_slider("Batch size", [16, 32, 64, 128, 256, 512], base.config.batch_size, key=k + "batch")
    optimizer = a.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(base.config.optimizer), key=k + "opt")
    lr = b.number_input("Learning rate", 1e-5, 2.0, base.config.lr, format="%.5f", key=k + "lr")
    schedule = c.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index(base.config.schedule), key=k + "sched")
    decay = d.number_input("Weight decay", 0.0, 1.0, base.config.weight_decay, format="%.5f", key=k + "wd")
    smoothing = a.slider("Label smoothing", 0.0, 0.3, base.label_smoothing, key=k + "ls")
    mixup = b.slider("Mixup alpha", 0.0, 1.0, base.mixup_alpha, key=k + "mixup")
    cutmix = c.slider("Cutmix alpha", 0.0, 1.0, base.cutmix_alpha, key=k + "cutmix")
    val_split = d.slider("Validation share", 0.0, 0.3, base.val_split, key=k + "val")
    translate = a.slider("Shift (px)", 0, 6, base.augment.translate, key=k + "tr")
    rotate = b.slider("Rotate (deg)", 0, 30, int(base.augment.rotate), key=k + "rot")
    scale = c.slider("Zoom (+/-)", 0.0, 0.3, base.augment.scale, key=k + "scale")
    hflip = d.toggle("Horizontal flip (photos only)", base.augment.hflip, key=k + "flip")
    early = a.number_input("Early stopping (epochs, 0 off)", 0, 50, base.config.early_stopping, key=k + "early")
    seed = b.number_input("Seed", 0, 10_000, base.config.seed, key=k + "seed")
    threads = c.number_input("CPU threads (0 = all)", 0, 64, base.config.threads, key=k + "threads")
    device = d.selectbox("Device", ["auto", "cpu", "cuda", "mps"], key=k + "device")
    folds = a.number_input("Stratified k-fold (0 = off)", 0, 10, base.folds, key=k + "folds",
                           help="Train k models, each scored on the fold of the training set it never saw.")
    checks = b.number_input("Validations per epoch", 1, 10, 4, key=k + "checks",
                            help="Score the validation share this many times per epoch: a per-step validation curve.")
    keras_ok = all(m in KERAS_MODELS for m in (grouped or [model]))
    framework = c.selectbox("Framework", ["torch", "keras"], key=k + "framework", disabled=not keras_ok,
                            format_func={"torch": "PyTorch", "keras": "Keras 3 (TensorFlow)"}.get,
                            help=f"Keras trains the seed models ({', '.join(KERAS_MODELS)}) with TensorFlow.")
    augment = AugmentConfig(translate, hflip, float(rotate), scale)
    try:
        steps_per_epoch = int(len(cached_dataset(dataset).train_x) * (1 - val_split)) // batch
        sample = cached_dataset(dataset).train_x[:4]
        st.image(enlarge(augmented_grid(sample, augment, copies=6), 360, square=False),
                 caption="four training images, six augmented draws each (what the model sees this run)")
    except DataError as exc:
        steps_per_epoch = 0
        st.caption(f"No preview: {exc}")
spec = dataclasses.replace(
    base, dataset=dataset, model=model, label_smoothing=smoothing, mixup_alpha=mixup, cutmix_alpha=cutmix,
    val_split=val_split, augment=augment, folds=int(folds) if folds != 1 else 0,
    model_options=base.model_options if model == base.model else {},  # e.g. the transfer recipe's fine_tune
    framework=framework if keras_ok else "torch",
    config=dataclasses.replace(base.config, epochs=int(epochs), batch_size=batch, optimizer=optimizer, lr=lr,
                               schedule=schedule, weight_decay=decay, early_stopping=int(early), seed=int(seed),
                               threads=int(threads), device=device,
                               eval_every_steps=steps_per_epoch // checks if val_split and checks > 1 else 0))
transfer_evidence(model)
busy = active_run()
if st.button("Start training", type="primary", disabled=busy is not None, icon=":material/play_arrow:"):
    try:
        st.session_state["trainer_run"] = str(start_runs([dataclasses.replace(spec, model=m) for m in grouped],
                                                         group=name)[0] if grouped else start_run(spec))
        st.session_state["trainer_watch"] = Path(st.session_state["trainer_run"]).name  # watch the new run
    except RuntimeError as exc:
        st.error(str(exc))
if busy is not None:
    st.caption(f"Training now: `{busy.name}`. Runs keep going when you leave the page; any tab can watch them.")

runs = list_runs()
if not runs:
    st.info("No runs yet: pick a recipe and press Start. The quick demo trains on the bundled digits in seconds.")
    st.stop()
names = [r[0].name for r in runs]
if busy is not None and read_group(busy) and busy.name in names:
    st.session_state["trainer_watch"] = busy.name  # follow the group's runs as they take turns
current = Path(st.session_state.get("trainer_run") or busy or runs[0][0]).name
watched = runs[names.index(st.selectbox("Watch run", names, index=names.index(current) if current in names else 0,
                                        key="trainer_watch"))][0]


status = read_status(watched)  # only a run in progress refreshes itself, every second, without rerunning the page
st.fragment(live_run, run_every=1.0 if status.get("state") in ("starting", "running", "queued") else None)(watched)
if status.get("state") in ("failed", "diverged", "interrupted") or (
        status.get("state") == "stopped" and not (watched / "card.json").is_file()):  # stopped before training
    (st.warning if status["state"] in ("stopped", "interrupted") else st.error)(status.get("message", "The run failed."))
if busy is None and can_resume(watched) and st.button("Resume the run", icon=":material/play_arrow:",
                                                      key="trainer_resume"):
    resume_run(watched)
    st.rerun()
if status.get("cv"):
    cv_results(status)
if status.get("state") in ("finished", "stopped", "diverged") and (watched / "card.json").is_file():
    model, card = cached_checkpoint(str(watched))
    st.success(f"Test accuracy **{status['test_accuracy']:.2%}** after {status['train_seconds']:.1f} s of "
               f"training. {status.get('message', '')} The model is now listed on the Draw and Inside pages.")
    open_elsewhere(watched)
    report = cached_report(str(watched))
    left, right = st.columns([3, 2])
    left.plotly_chart(confusion_figure(report["confusion"], card.dataset.class_names), width="stretch",
                      key="trainer_confusion")
    right.dataframe({"class": list(report["per_class"]), "test accuracy": list(report["per_class"].values())},
                    hide_index=True, width="stretch")
    right.code(card.command, language="bash", wrap_lines=True)
group_results([str(watched.parent / n) for n in read_group(watched).get("runs", [])])
