"""The Trainer's parts: the settings form (any recipe's fields, `Recipe.form_fields`, as widgets, with a data set
upload and a preview of the augmentation; the form itself is data in core, `core.engine.form`), the live view of
a run and the results of a finished one."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data import AugmentConfig, DataError, list_datasets
from core.engine.form import parse_numbers
from core.errors import SettingsError
from core.plots import confusion_figure, training_figure
from core.runs import (read_events, read_status, report, request_stop, set_learning_rate, uploaded_datasets,
                       uploads_dir)
from core.viz import augmented_grid, enlarge
from pages._ui import cached_dataset, pressed


def recipe_form(base, key: str, grouped: list[str] = ()):
    """The settings of any recipe as widgets keyed by `key` + field key (the fields are the recipe's own,
    `Recipe.form_fields`); returns the recipe they describe. A form that chooses a data set also takes an uploaded
    one; a form with augmentation settings shows what they do to training images."""
    fields = base.form_fields({"datasets": [*list_datasets(), *uploaded_datasets()], "grouped": list(grouped)})
    if any(f.setting == "dataset" and f.widget == "select" for f in fields):
        zip_uploader(key + next(f.key for f in fields if f.setting == "dataset"))
    if not any(f.path for f in fields):  # one field per setting of the dataclass
        st.caption(f"{base.title}: each setting is a field of its recipe; the defaults made the shipped checkpoint "
                   "(or train in seconds, for the quick recipes).")
    columns = st.columns(4)
    values = {f.setting: _widget(columns[i % 4], f, key + f.key) for i, f in enumerate(fields)}
    steps_per_epoch = _augmentation_preview(values) if "augment.translate" in values else 0
    return base.apply_form(values, steps_per_epoch)


def _widget(column, f, key: str):
    """One form field as its Streamlit widget; returns the value (the field's own for a bad number list)."""
    if f.widget == "select":
        shown = (lambda n: f"uploaded: {Path(n).name}" if str(n).startswith("folder:") else str(n))
        return column.selectbox(f.label, f.options, index=f.options.index(f.value), key=key, help=f.help,
                                disabled=f.disabled, format_func=shown)
    if f.widget == "select_slider":
        return column.select_slider(f.label, f.options, f.value, key=key)
    if f.widget in ("int", "float"):
        cast = int if f.widget == "int" else float
        value = column.number_input(f.label, cast(f.low), cast(f.high), cast(f.value), key=key, help=f.help,
                                    **({} if f.widget == "int" else {"format": "%.5g"}))
        return cast(value)
    if f.widget == "slider":
        return column.slider(f.label, f.low, f.high, f.value, key=key)
    if f.widget == "toggle":
        return column.toggle(f.label, f.value, key=key)
    if f.widget == "numbers":
        try:
            return parse_numbers(column.text_input(f.label, ",".join(map(str, f.value)), key=key), f.value)
        except SettingsError as exc:
            st.error(f"{f.label}: {exc}.")
            return f.value
    return column.text_input(f.label, f.value, key=key)


def _augmentation_preview(values: dict) -> int:
    """Four training images with six augmented draws each, and the data set's problems; returns the steps per epoch
    (0 when unknown). `values` by setting path."""
    try:
        data = cached_dataset(values["dataset"])
    except DataError as exc:
        st.caption(f"No preview: {exc}")
        return 0
    augment = AugmentConfig(values["augment.translate"], values["augment.hflip"], float(values["augment.rotate"]),
                            values["augment.scale"])
    st.image(enlarge(augmented_grid(data.train_x[:4], augment, copies=6), 360, square=False),
             caption="four training images, six augmented draws each (what the model sees this run)")
    if data.sample:
        st.caption(f"{values['dataset']} is not on this machine: the run reads it from the data directory (or "
                   "downloads it) first. The preview uses the sample shipped with CNN Studio.")
    for problem in data.problems():
        st.warning(f"This data set can be used, but: {problem}.", icon=":material/warning:")
    kept = int(len(data.train_x) * (1 - values.get("val_split", 0)))  # the training images after validation
    return 0 if data.sample else kept // values["config.batch_size"]


def zip_uploader(select_key: str) -> None:
    """Upload an image-folder .zip as a data set; a good one becomes the value of the `select_key` selectbox."""
    from core.data.folder import store_uploaded_zip

    zipped = st.file_uploader("Your own data set: a .zip of class folders (`train/<class>/*.png` and "
                              "`test/<class>/*`, or just `<class>/*`)", type=["zip"], key="trainer_zip")
    if zipped is not None and st.session_state.get("trainer_zip_done") != zipped.file_id:
        st.session_state.trainer_zip_done = zipped.file_id
        try:
            st.session_state[select_key] = store_uploaded_zip(zipped.getvalue(), zipped.name, uploads_dir())
        except DataError as exc:
            st.error(f"{zipped.name} cannot be used: {exc}")


def live_run(run_dir: Path) -> None:
    """The run's progress, live charts, the recipe's pictures and controls; reruns the app once it ends."""
    status, events = read_status(run_dir), read_events(run_dir)
    st.progress(*report.progress_line(status, events))
    for warning in events.get("warning", []):  # e.g. a class missing from the test split: said, not hidden
        st.warning(warning["message"], icon=":material/warning:")
    if events.get("step") or status.get("state") not in report.WORKING:  # no empty axes while the data loads
        st.plotly_chart(training_figure(events, *report.live_metric(run_dir)), width="stretch", key="trainer_chart")
    left, right = st.columns([2, 3])
    if (figure := report.monitor_figure(events.get("monitor", []))) is not None:
        left.plotly_chart(figure, width="stretch", key="trainer_monitor")
    if events.get("monitor") and (picture := report.latest_picture(run_dir)) is not None:
        right.image(enlarge(picture, 720, square=False), caption=report.picture_caption(events["monitor"]))
    if status.get("state") == "running":
        left, mid, right = st.columns([2, 2, 1])
        new_lr = left.number_input("Change the learning rate now", 1e-6, 2.0, report.current_lr(run_dir, events),
                                   format="%.6g", key="trainer_new_lr", help="The run continues at this constant rate "
                                   "(the schedule stops). The card records it: its command replays it with --lr-at.")
        if pressed("Apply learning rate", "trainer_apply_lr", mid):
            set_learning_rate(run_dir, new_lr)
        if pressed("Stop", "trainer_stop", right, icon=":material/stop:"):
            request_stop(run_dir)
    elif st.session_state.get("trainer_shown") != (run_dir.name, status.get("state")):
        st.session_state["trainer_shown"] = (run_dir.name, status.get("state"))
        st.rerun(scope="app")  # the run ended: draw the results below once


def results(card, summary: str) -> None:
    """A finished model: its headline, confusion matrix (classifiers) or metrics, and the command that made it."""
    st.success(summary)
    left, right = st.columns([3, 2])
    if confusion := card.metrics.get("test_confusion"):
        left.plotly_chart(confusion_figure(confusion, card.dataset.class_names), width="stretch", key="confusion")
    (right if confusion else left).dataframe(report.metric_table(card), hide_index=True)
    right.code(card.command or "", language="bash", wrap_lines=True)
