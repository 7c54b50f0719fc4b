"""Trainer page and background runs: a run survives reruns, reports live, can be stopped, ends in results."""
import dataclasses
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from core import runs
from core.engine import TrainConfig
from core.engine.checkpoint import load_checkpoint
from core.classifier import ClassifierRecipe
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path / "runs"))


def test_background_run_records_events_and_becomes_a_checkpoint(tmp_path):
    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.1, config=TrainConfig(epochs=3, lr=3e-3))
    run_dir = runs.start_run(spec)
    with pytest.raises(RuntimeError, match="already training"):
        runs.start_run(spec)
    status = runs.wait(run_dir)
    events = runs.read_events(run_dir)
    assert status["state"] == "finished" and 0 < status["test_accuracy"] <= 1
    assert len(events["epoch"]) == 3 and events["end"][0]["reason"] == "completed"
    assert events["step"][-1]["progress"] == pytest.approx(1.0)
    _, card = load_checkpoint(run_dir)
    assert card.command.startswith("python -m core train --dataset digits --model fast_cnn --epochs 3")


def test_stop_and_learning_rate_orders_reach_the_worker():
    spec = ClassifierRecipe(dataset="digits", model="seed001_cnn", config=TrainConfig(epochs=200, lr=1e-3))
    run_dir = runs.start_run(spec)
    deadline = time.time() + 60
    while not runs.read_events(run_dir)["step"] and time.time() < deadline:
        time.sleep(0.1)
    runs.set_learning_rate(run_dir, 0.0123)
    time.sleep(1.0)
    runs.request_stop(run_dir)
    status = runs.wait(run_dir, timeout=60)
    events = runs.read_events(run_dir)
    assert status["state"] == "stopped" and len(events["epoch"]) < 200
    assert events["step"][-1]["lr"] == pytest.approx(0.0123)
    _, card = load_checkpoint(run_dir)  # the card says when the rate changed, and its command does the same
    (step, lr), = card.training["lr_changes"]
    assert lr == pytest.approx(0.0123) and f"--lr-at {step}:0.0123" in card.command


def test_page_starts_a_run_and_shows_results():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120).run()
    assert not at.exception and any("No runs yet" in i.value and "mnist_fast_cnn" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 2 and any("test accuracy" in s.value for s in at.success)  # its curves, result
    at.selectbox(key="trainer_preset").set_value("Quick demo (digits)").run()
    at.number_input(key="trainer_Quick demo (digits)_epochs").set_value(3).run()
    at.button[0].click().run()
    assert not at.exception
    run_dir = runs.active_run() or runs.list_runs()[0][0]
    runs.wait(run_dir)
    at.run()
    assert not at.exception
    assert any("test accuracy" in s.value for s in at.success)
    assert any("--epochs 3" in c.value for c in at.code)
    # the whole app (st.navigation), so the button can switch to the Inside page with this run's model
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    app.switch_page("pages/trainer.py").run()
    next(b for b in app.button if b.label == "Look inside it").click().run()
    assert not app.exception
    assert app.selectbox(key="inside_model").value.startswith(run_dir.name)


def test_compare_page_shows_runs_and_mistakes():
    for lr in (3e-3, 1e-3):
        runs.wait(runs.start_run(ClassifierRecipe(dataset="digits", model="seed004_cnn", val_split=0.1,
                                           config=TrainConfig(epochs=2, lr=lr))))
    at = AppTest.from_file(str(ROOT / "pages" / "runs.py"), default_timeout=120).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 2 and set(table["state"]) == {"finished"} and table["test accuracy"].notna().all()
    assert set(table["lr"]) == {3e-3, 1e-3}
    assert any("Most common confusions" in c.value for c in at.caption)
    together = next(m.value for m in at.markdown if m.value.startswith("Together:"))  # the two runs as an ensemble
    alone = [float(v) for v in re.findall(r" (\d+\.\d+)%", together.split("alone:")[1])]
    assert len(alone) == 2 and [a / 100 for a in sorted(alone)] == pytest.approx(sorted(table["test accuracy"]),
                                                                              abs=1e-4)
    captions = [c for img in at.get("image") for c in img.captions]
    assert captions and all(c.startswith("true ") for c in captions)
    box = next(s for s in at.selectbox if s.key and s.key.startswith("runs_true_"))
    box.set_value(3).run()
    assert not at.exception
    assert "test images of **3** predicted as" in " ".join(m.value for m in at.markdown)


def test_augmentation_preview_follows_the_settings():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120).run()
    name = at.selectbox(key="trainer_preset").value
    assert any("augmented draws" in c for img in at.get("image") for c in img.captions)
    at.slider(key=f"trainer_{name}_tr").set_value(3).run()
    assert not at.exception and any("augmented draws" in c for img in at.get("image") for c in img.captions)


def test_augmented_grid_shows_each_image_in_a_row():
    import torch
    from core.data import AugmentConfig
    from core.viz import augmented_grid
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    images[1] = 255
    grid = augmented_grid(images, AugmentConfig(), copies=3)
    assert grid.shape == (16, 24, 3) and grid[:8].max() == 0 and grid[8:].min() == 255
    shifted = augmented_grid(images[1:], AugmentConfig(translate=2), copies=8, seed=1)
    assert shifted.min() == 0  # some draws moved the image and let the zero padding in


def test_uploaded_zip_data_set_is_offered_and_trains(tmp_path):
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    from core.data.folder import store_uploaded_zip

    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buffer, "w") as zf:
        for cls, level in (("dark", 40), ("light", 210)):
            for i in range(12):
                png = io.BytesIO()
                Image.fromarray(np.clip(rng.normal(level, 20, (16, 16)), 0, 255).astype(np.uint8)).save(png, "PNG")
                zf.writestr(f"{cls}/{i}.png", png.getvalue())
    name = store_uploaded_zip(buffer.getvalue(), "levels.zip", runs.uploads_dir())
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=60).run()
    data = next(s for s in at.selectbox if s.key.endswith("data"))
    assert f"uploaded: {name.rsplit('/', 1)[-1]}" in data.options
    data.set_value(name).run()
    assert not at.exception
    spec = ClassifierRecipe(dataset=name, model="fast_cnn", config=TrainConfig(epochs=2, lr=3e-3, batch_size=8))
    status = runs.wait(runs.start_run(spec))
    assert status["state"] == "finished" and status["test_accuracy"] >= 0.8  # dark vs light is easy


def test_cnn_vs_mlp_recipe_trains_both_and_is_compared_side_by_side():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=60).run()
    at.selectbox(key="trainer_preset").set_value("Seed 004 CNN vs MLP (MNIST)").run()
    prefix = "trainer_Seed 004 CNN vs MLP (MNIST)_"
    assert at.selectbox(key=prefix + "model").disabled
    at.selectbox(key=prefix + "data").set_value("digits")
    at.number_input(key=prefix + "epochs").set_value(2)
    at.button[0].click().run()  # Start training
    assert not at.exception
    run_dirs = sorted(runs.list_runs(), key=lambda r: r[0].name)
    assert [spec["model"] for _, spec, _ in run_dirs] == ["seed004_cnn", "mlp"]
    status = runs.wait(run_dirs[-1][0], timeout=300)
    assert status["state"] == "finished", status
    events = runs.read_events(run_dirs[0][0])
    assert len(events["eval"]) >= 2 * 3  # validated 4 times per epoch (the page's default), not just at epoch ends
    assert "accuracy" in events["step"][-1]["metrics"]
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "test accuracy" in text and "points** above" in text and "Compare runs" in text
    compare = AppTest.from_file(str(ROOT / "pages" / "runs.py"), default_timeout=120).run()
    assert not compare.exception
    assert len(compare.selectbox(key="runs_group").value) == 2  # the group's two runs, compared below
    text = " ".join(m.value for m in compare.markdown)
    assert "points** above" in text and "the time" in text
    assert sum("most common confusions" in m.value for m in compare.markdown) == 2
    assert len(compare.get("plotly_chart")) >= 4 + 3  # the group's curves, time, two matrices; the page's own


def test_k_fold_mode_reports_every_fold():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=60).run()
    prefix = "trainer_Quick demo (digits)_"
    at.number_input(key=prefix + "epochs").set_value(2)
    at.number_input(key=prefix + "folds").set_value(3)
    at.button[0].click().run()
    run_dir = runs.list_runs()[0][0]
    status = runs.wait(run_dir, timeout=300)
    assert status["state"] == "finished" and status["cv"]["completed"] == 3
    assert runs.read_spec(run_dir)["folds"] == 3 and len(runs.read_events(run_dir)["fold"]) == 3
    at.run()
    assert not at.exception
    assert any("3-fold cross-validation" in s.value for s in at.success)
    folds = next(df.value for df in at.dataframe if "fold" in df.value.columns)
    assert list(folds["fold"]) == [1, 2, 3] and folds["accuracy"].between(0.5, 1).all()


def test_an_interrupted_run_says_so_and_resumes_from_the_page(tmp_path):
    """A worker that died after epoch 2 (simulated: the epoch-3 steps raise, status still says running)."""
    from core.engine.checkpoint import read_card
    from core.engine.run import run

    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", config=TrainConfig(epochs=4, lr=3e-3, threads=1))
    run_dir = tmp_path / "runs" / "20261201-000000_digits_fast_cnn"
    run_dir.mkdir(parents=True)
    from core.engine.recipe import recipe_to_dict
    from core.runs.folder import SPEC, STATUS, write_json

    write_json(run_dir / SPEC, recipe_to_dict(spec))
    write_json(run_dir / STATUS, {"state": "running", "started": time.time(), "pid": 2**22 + 7})

    def die_in_epoch_3(event):
        if event.kind == "step" and event.epoch == 3:
            raise KeyboardInterrupt  # as abrupt as it gets inside one process

    with pytest.raises(KeyboardInterrupt):
        run(spec, die_in_epoch_3, out=run_dir)
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120)
    at.session_state["trainer_watch"] = run_dir.name
    at.run()
    assert not at.exception
    assert any("Interrupted at epoch 2" in w.value for w in at.warning)
    at.button(key="trainer_resume").click().run()
    assert not at.exception
    assert runs.wait(run_dir)["state"] == "finished"
    card = read_card(run_dir)
    assert card.run == {"state": "complete", "epoch": 4} and card.training["resumed_from_epoch"] == 2
    at.run()
    assert any("test accuracy" in s.value for s in at.success) and not any(b.key == "trainer_resume" for b in at.button)


def test_an_autoencoder_recipe_trains_live_from_the_page():
    at = AppTest.from_file(str(ROOT / "pages" / "trainer.py"), default_timeout=120).run()
    at.selectbox(key="trainer_kind").set_value("Autoencoder or VAE").run()
    at.selectbox(key="trainer_preset").set_value("Quick autoencoder (digits)").run()
    at.number_input(key="trainer_Quick autoencoder (digits)_epochs").set_value(3).run()
    assert not at.exception
    at.button[0].click().run()
    run_dir = runs.active_run() or runs.list_runs()[0][0]
    status = runs.wait(run_dir)
    assert status["state"] == "finished", status
    assert runs.read_spec(run_dir)["kind"] == "autoencoder"
    events = runs.read_events(run_dir)
    assert len(events["epoch"]) == 3 and "mse" in events["step"][-1]["metrics"]
    assert [m["epoch"] for m in events["monitor"]] == [1, 2, 3] and (run_dir / "samples.npz").is_file()
    at.run()
    assert not at.exception
    assert any("test MSE" in s.value for s in at.success)
    assert any("reconstructions" in c for img in at.get("image") for c in img.captions)
    assert any("python -m core train-autoencoder --dataset digits" in c.value for c in at.code)
    from core.engine.checkpoint import read_card
    card = read_card(run_dir)
    assert card.task == "reconstruction" and card.headline.name == "test_mse" and card.run["state"] == "complete"


def test_the_settings_form_maps_widgets_to_the_recipe():
    """The form is data (core.engine.form, the recipe's form_fields): every classifier widget lands in its setting,
    and any other recipe gets one typed field per setting."""
    from core.classifier.presets import PRESETS
    from core.engine.form import parse_numbers
    from core.latent.recipe import AutoencoderRecipe

    base = PRESETS["Quick demo (digits)"]
    fields = base.form_fields({"datasets": ["digits", "mnist"]})
    values = {f.setting: f.value for f in fields}
    assert base.apply_form(values, steps_per_epoch=40) == dataclasses.replace(
        base, config=dataclasses.replace(base.config, eval_every_steps=10 if base.val_split else 0))
    by_key = {f.key: f.setting for f in fields}
    values.update({by_key[k]: v for k, v in dict(data="mnist", model="mlp", epochs=7, lr=0.01, rot=15, flip=True,
                                                  folds=1, val=0.1, checks=4).items()})
    spec = base.apply_form(values, steps_per_epoch=40)
    assert (spec.dataset, spec.model, spec.config.epochs, spec.config.lr) == ("mnist", "mlp", 7, 0.01)
    assert spec.augment.rotate == 15.0 and spec.augment.hflip and spec.folds == 0 and spec.config.eval_every_steps == 10
    ae = AutoencoderRecipe()
    by_key = {f.key: f for f in ae.form_fields({})}
    assert by_key["widths"].widget == "numbers" and by_key["epochs"].widget == "int" and "dataset" not in by_key
    assert parse_numbers("8, 16,32", (1,)) == (8, 16, 32)
    with pytest.raises(ValueError, match="e.g. 32,64,128"):
        parse_numbers("8,x", (32, 64, 128))
    assert ae.apply_form({"epochs": 2, "widths": (8, 16)}).widths == (8, 16)


def test_the_trainer_starts_a_run_in_two_processes():
    """A run with processes=2 trains under torchrun; only rank 0 writes its events, status and checkpoint."""
    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.1, processes=2,
                     config=TrainConfig(epochs=2, lr=3e-3, threads=1))
    run_dir = runs.start_run(spec)
    status = runs.wait(run_dir, timeout=300)
    assert status["state"] == "finished", (status, (run_dir / "worker.log").read_text()[-2000:])
    assert len(runs.read_events(run_dir)["epoch"]) == 2 and status["test_accuracy"] > 0.8
    from core.engine.checkpoint import read_card
    assert "--processes 2" in read_card(run_dir).command


def test_a_finished_worker_is_reaped_without_anyone_waiting_on_it():
    from pathlib import Path

    run_dir = runs.start_run(ClassifierRecipe(dataset="digits", config=TrainConfig(epochs=1)))
    stat = Path(f"/proc/{runs.service._workers[str(run_dir)].pid}/stat")
    deadline = time.monotonic() + 120
    while stat.exists() and time.monotonic() < deadline:  # training, then gone, or a zombie ("Z") for ever
        time.sleep(0.1)
    assert not stat.exists(), f"the finished worker is left behind: {stat.read_text()[:60]}"
    assert runs.read_status(run_dir)["state"] == "finished"


def test_the_live_chart_of_a_long_run_stays_light_and_ends_on_the_latest_step():
    from core.plots import training_figure

    steps = [{"step": i + 1, "loss": 2.0 if i % 2 else 0.0, "lr": 0.01, "metrics": {"accuracy": 0.5}} for i in range(2501)]
    fig = training_figure({"step": steps}, max_points=300)
    per_step = [trace for trace in fig.data if trace.name in ("smoothed", "lr") or "mean of" in (trace.name or "")]
    assert len(per_step) == 3 and all(len(trace.x) <= 300 for trace in per_step)
    assert all(trace.x[-1] == 2501 for trace in per_step)  # the newest step is drawn, not dropped by the thinning
    raw = next(trace for trace in per_step if "mean of 9 steps" in trace.name)
    assert all(0.8 < y < 1.2 for y in raw.y[1:])  # each point averages its 9 steps (alternating 0 and 2)
    short = training_figure({"step": steps[:50]})
    assert [len(trace.x) for trace in short.data] == [50] * 4 and short.data[0].name == "loss per step"
    assert short.layout.yaxis3.tickformat == ".2~g"  # the learning rate reads 0.00035, not Plotly's "350µ"
    assert short.layout.margin.t >= 60  # the subplot titles sit below the chart's toolbar


def test_the_server_does_not_collect_garbage_after_every_rerun():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False  # a full gc.collect(2) per rerun cost the live view ~0.2 s each
    assert config["server"]["fileWatcherType"] == "none"
