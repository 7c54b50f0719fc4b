"""The one pipeline: `python -m core evaluate --json` on every shipped checkpoint, identical metrics from
two seeded runs, and a run killed with SIGKILL mid-training that is listed, then resumed to the same result."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from core import paths
from core.engine.checkpoint import CARD, list_checkpoints, load_checkpoint, read_card
from core.data import AugmentConfig
from core.engine import TrainConfig
from core.engine.run import run
from core.classifier import ClassifierRecipe
from tests.conftest import ROOT

SHIPPED = sorted(p.name for p in paths.SHIPPED_CHECKPOINTS.iterdir() if (p / CARD).is_file())
# headline each shipped checkpoint must reach again when re-measured (composed sets: 300 fresh images)
# (fashion_fast_cifar: 93.43 %, trained with 5 % of the training images held out to fit its temperature)
FLOOR = {"mnist_fast_cnn": 0.995, "mnist_seed004": 0.985, "mnist_seed004_mlp": 0.97, "fashion_fast_cifar": 0.93,
         "cifar10_fast_cifar": 0.895, "mnist_pair_cnn": 0.96, "mnist_crnn": 0.93, "scenes_captioner": 0.85, "efficientnet_lite0_imagenet": 0.75}


def test_evaluate_json_on_every_shipped_checkpoint(real_data):
    proc = subprocess.run([sys.executable, "-m", "core", "evaluate", "--json", "--n", "300", "--data-dir",
                           str(real_data), *[f"checkpoints/{n}" for n in SHIPPED]], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "CNN_STUDIO_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    reports = {os.path.basename(r["checkpoint"]): r for r in json.loads(proc.stdout)}
    assert set(reports) == set(SHIPPED)
    for name, report in reports.items():
        card = read_card(paths.SHIPPED_CHECKPOINTS / name)
        head = report["headline"]
        assert report["task"] == card.task and head["name"] == card.headline.name and report["metrics"], name
        if card.task in ("classification", "reconstruction"):  # whole test split: the card's figure exactly
            assert head["value"] == pytest.approx(card.headline.value, abs=2e-4), name
        if name in FLOOR:
            assert head["value"] >= FLOOR[name], (name, head)
    assert reports["fashion_ae"]["headline"]["value"] < 0.0055 and reports["fashion_vae"]["metrics"]["test_ssim"] > 0.75
    assert reports["efficientnet_lite0_imagenet"]["measured"] is False  # ImageNet is not here: the reported figure


SPEC = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.1, augment=AugmentConfig(translate=1),
                 mixup_alpha=0.2, config=TrainConfig(epochs=3, batch_size=64, optimizer="adam", lr=3e-3,
                                                     schedule="onecycle", threads=1))


def _history(card) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in card.training["history"]]


def test_two_seeded_runs_give_identical_metrics(tmp_path):
    a, b = run(SPEC, out=tmp_path / "a"), run(SPEC, out=tmp_path / "b")
    assert len(_history(a)) == 3 and _history(a) == _history(b)
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"] and a.metrics["test_confusion"] == b.metrics["test_confusion"]
    weights_a, weights_b = load_checkpoint(tmp_path / "a")[0].state_dict(), load_checkpoint(tmp_path / "b")[0].state_dict()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    other = run(ClassifierRecipe(**{**SPEC.__dict__, "config": TrainConfig(**{**SPEC.config.__dict__, "seed": 1})}))
    assert other.training["history"][0]["train_loss"] != a.training["history"][0]["train_loss"]  # the seed matters


@pytest.mark.parametrize("kind", ["autoencoder", "pair"])
def test_other_recipe_kinds_are_reproducible_too(kind, tmp_path, real_data):
    from core.engine.recipe import RECIPES as KINDS

    small = {"autoencoder": dict(dataset="digits", epochs=2, latent_dim=8, widths=(8, 16, 16)),
             "pair": dict(epochs=1, n_train=256, eval_n=100, channels=(8, 16, 16), hidden=16,
                          data_dir=str(real_data))}[kind]
    recipe = KINDS[kind](**small)
    a, b = run(recipe), run(recipe)
    assert a.headline.value == b.headline.value and _history(a) == _history(b)


def test_a_killed_run_is_listed_and_resumes_to_the_same_result(tmp_path, monkeypatch):
    from core import runs

    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path))
    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.1,
                     config=TrainConfig(epochs=6, batch_size=8, optimizer="adam", lr=1e-3, schedule="cosine",
                                        warmup_epochs=1, threads=1, ema_decay=0.9))
    run_dir = runs.start_run(spec, root=tmp_path)
    worker = runs.service._workers[str(run_dir)]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for the second epoch's checkpoint, then kill the worker outright
        card = json.loads((run_dir / CARD).read_text()) if (run_dir / CARD).is_file() else {}
        if card.get("run", {}).get("epoch", 0) >= 2 or worker.poll() is not None:
            break
        time.sleep(0.05)
    assert worker.poll() is None, "the run ended before it could be killed"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(30)
    status = runs.read_status(run_dir)
    epoch = status["epoch"]
    assert status["state"] == "interrupted" and 2 <= epoch < 6 and f"Interrupted at epoch {epoch}" in status["message"]
    model, card = load_checkpoint(run_dir)  # a complete, loadable model of that epoch, listed for the other pages
    assert card.run == {"state": "in_progress", "epoch": epoch} and len(card.training["history"]) == epoch
    assert run_dir in [folder for folder, _ in list_checkpoints(tmp_path)]
    assert runs.can_resume(run_dir)
    runs.resume_run(run_dir)
    final = runs.wait(run_dir, timeout=300)
    assert final["state"] == "finished", final
    resumed = read_card(run_dir)
    assert resumed.run == {"state": "complete", "epoch": 6} and resumed.training["resumed_from_epoch"] == epoch
    assert not runs.can_resume(run_dir) and not (run_dir / "resume.safetensors").exists()
    straight = run(spec, out=tmp_path / "straight")  # the same run, never interrupted
    assert resumed.metrics["test_accuracy"] == straight.metrics["test_accuracy"]
    assert _history(resumed) == _history(straight)


def test_a_recipe_with_live_views_resumes_to_the_same_result(tmp_path):
    """The autoencoder's reconstructions after each epoch must not change the run: resumed == uninterrupted."""
    from core.latent.recipe import AutoencoderRecipe

    recipe = AutoencoderRecipe(dataset="digits", epochs=4, latent_dim=8, widths=(8, 16, 16), batch_size=64, noise=0.1)

    def die_in_epoch_3(event):
        if event.kind == "step" and event.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(recipe, die_in_epoch_3, out=tmp_path / "cut")
    assert read_card(tmp_path / "cut").run == {"state": "in_progress", "epoch": 2}
    resumed = run(recipe, out=tmp_path / "cut", resume=True)
    straight = run(recipe, out=tmp_path / "straight")
    assert resumed.metrics == straight.metrics and _history(resumed) == _history(straight)
    assert resumed.training["resumed_from_epoch"] == 2


def test_live_views_do_not_move_the_random_generators():
    import random

    import numpy as np

    from core.engine.run import preserved_rng

    def seed_all():
        torch.manual_seed(3)
        np.random.seed(3)
        random.seed(3)

    seed_all()
    with preserved_rng():  # what a monitor does: draw from every generator
        torch.rand(5), np.random.rand(5), random.random()
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    seed_all()
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())


def test_runs_write_event_files_tensorboard_reads(tmp_path):
    """Scalars per step and epoch, the learning rate, the live pictures and the hparams view, read back with
    TensorBoard's own event reader (no TensorFlow)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from core.latent.recipe import AutoencoderRecipe

    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.2, config=TrainConfig(epochs=2, lr=3e-3))
    card = run(spec, out=tmp_path / "classifier")
    events = EventAccumulator(str(tmp_path / "classifier"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"step/loss", "step/lr", "step/accuracy", "epoch/train_loss", "epoch/val_accuracy", "epoch/lr"} <= scalars
    steps = events.Scalars("step/loss")
    assert len(steps) == card.training["steps"] and steps[-1].step == card.training["steps"]
    assert [e.step for e in events.Scalars("epoch/val_accuracy")] == [1, 2]
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # settings + final metrics
    assert "test/test_accuracy" in scalars
    run(AutoencoderRecipe(dataset="digits", epochs=2, latent_dim=8, widths=(8, 16)), out=tmp_path / "ae")
    ae = EventAccumulator(str(tmp_path / "ae"))
    ae.Reload()
    assert "samples" in ae.Tags()["images"] and len(ae.Images("samples")) == 2  # reconstructions per epoch
    assert any(tag.startswith("monitor/") for tag in ae.Tags()["scalars"])
    probe = ("import sys; from core.engine.tblog import TensorBoardLog; log = TensorBoardLog(sys.argv[1], {'a': 1}); "
             "log.close({'x': 1.0}); print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "probe")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-500:]  # event files without importing TensorFlow
