"""The train and evaluate CLIs, end to end in subprocesses, and the shipped checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import paths
from core.engine.checkpoint import read_card
from tests.conftest import ROOT


def run(*args, env_extra=None, check=True):
    import os
    env = {**os.environ, "CNN_STUDIO_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          check=check, timeout=300)


def test_train_then_evaluate(tmp_path):
    out = tmp_path / "run"
    proc = run("core", "train", "--dataset", "digits", "--model", "fast_cnn", "--epochs", "3", "--lr", "0.05",
               "--optimizer", "sgd", "--schedule", "onecycle", "--val-split", "0.1", "--out", str(out))
    assert "test accuracy" in proc.stdout
    card = read_card(out)
    assert card.command.startswith("python -m core train --dataset digits")
    assert card.training["epochs"] == 3 and card.dataset.name == "digits" and card.run["state"] == "complete"
    assert card.metrics["test_accuracy"] > 0.8 and "val_accuracy" in card.training["history"][-1]
    report = json.loads(run("core", "evaluate", str(out), "--json").stdout)
    assert report["task"] == "classification" and report["headline"]["name"] == "test_accuracy"
    assert report["headline"]["value"] == pytest.approx(card.metrics["test_accuracy"], abs=1e-4)
    metrics = report["metrics"]
    assert sum(map(sum, metrics["test_confusion"])) == metrics["test_n"] == 450 and len(metrics["test_per_class"]) == 10
    text = run("core", "evaluate", str(out)).stdout
    assert "confusion matrix" in text and "per-class accuracy" in text and "test accuracy" in text
    replay = card.command.split()[3:]  # the recorded command replays to the same model (seeded, deterministic)
    run("core", *replay[:replay.index("--out")], "--out", str(tmp_path / "again"))
    assert read_card(tmp_path / "again").metrics["test_accuracy"] == card.metrics["test_accuracy"]


def test_cli_reports_missing_data_clearly(tmp_path):
    proc = run("core", "train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "x"),
               check=False)
    assert proc.returncode == 2 and "train-images-idx3-ubyte.gz" in proc.stderr and str(tmp_path) in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run("core", "evaluate", str(tmp_path / "missing"), check=False)
    assert proc.returncode == 2 and "no such checkpoint" in proc.stderr


def test_shipped_checkpoint_card():
    card = read_card(paths.SHIPPED_CHECKPOINTS / "mnist_fast_cnn")
    assert card.dataset.name == "mnist" and card.model.name == "fast_cnn"
    assert card.metrics["test_accuracy"] >= 0.995
    assert card.command.startswith("python -m core train") and card.training["epochs"] >= 1
    assert card.training["train_seconds"] > 0


def test_shipped_checkpoint_accuracy_on_real_mnist(real_data):
    report = json.loads(run("core", "evaluate", "checkpoints/mnist_fast_cnn", "--data-dir", str(real_data),
                            "--json").stdout)
    assert report["headline"]["value"] >= 0.995 and report["metrics"]["test_n"] == 10000


def test_model_options_are_parsed_as_json():
    from core.engine.flags import model_options
    assert model_options(["widths=[8,16,32]", "dropout=0.1", "name=x"]) == {
        "widths": [8, 16, 32], "dropout": 0.1, "name": "x"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        model_options(["widths"])


def test_snapshots_flag_keeps_every_epoch(tmp_path):
    from core.engine.checkpoint import list_snapshots
    run("core", "train", "--dataset", "digits", "--model", "seed004_cnn", "--epochs", "2", "--snapshots",
        "--out", str(tmp_path / "snap"))
    assert list_snapshots(tmp_path / "snap") == [1, 2]


@pytest.mark.parametrize("name", ["Quick demo (digits)", "Seed 001 MNIST", "Seed 001 CIFAR-10",
                                  "Seed 003 CIFAR-100 (cosine with warm-up)",
                                  "Fast CIFAR-10, 90 % in 15 min (bfloat16)", "Fast MNIST, 99.5 % in 20 s (bfloat16)",
                                  "Seed 003 MNIST: one conv layer of 8 kernels, 5-fold (reported 97.4 %)"])
def test_recorded_command_rebuilds_the_same_run(name):
    from core.classifier.presets import PRESETS
    from core.cli import recorded_recipe
    spec = PRESETS[name]
    assert recorded_recipe(spec.command("runs/x")) == spec


def test_every_shipped_command_still_replays():
    """Each command a shipped card records (training, the probe table, the lambda table) parses with today's
    CLI, and the training ones rebuild the checkpoint's model and data set."""
    from core.cli import parse_recorded

    for folder in sorted(p.parent for p in paths.SHIPPED_CHECKPOINTS.glob("*/card.json")):
        card = read_card(folder)
        commands = [card.command] + [s["command"] for s in (card.section("probe"), card.section("lambda_sweep")) if s]
        for command in commands:
            verb, args = parse_recorded(command)
            if hasattr(args, "out"):  # it writes the shipped folder again
                assert Path(args.out).parts[-2:] == ("checkpoints", folder.name), command
        verb, args = parse_recorded(card.command)
        if verb.startswith("train"):
            from core.cli import recorded_recipe
            spec = recorded_recipe(card.command)
            assert (spec.model, spec.dataset) == (card.model.name, card.dataset.name), folder.name
    with pytest.raises(ValueError):
        parse_recorded("python -m core train --no-such-flag 3 --out x")
    with pytest.raises(ValueError):
        parse_recorded("python -m core.train --dataset digits")


@pytest.mark.parametrize("verb_args", [
    ["train", "--dataset", "digits", "--epochs", "2", "--lr", "0.003", "--schedule", "onecycle"],
    ["train-autoencoder", "--dataset", "digits", "--epochs", "1"]])
def test_a_learning_rate_changed_by_hand_is_recorded_and_replayed_by_the_cards_command(tmp_path, verb_args):
    """The Trainer's "change the learning rate now" mid-run: the card records when and to what, and its command
    (`--lr-at STEP:LR`) makes the same change at the same step, so it rebuilds the same run."""
    import shlex

    from core.cli import main, parse_recorded, recorded_recipe
    from core.engine import RunControl
    from core.engine.run import run as run_recipe

    recipe = recorded_recipe(shlex.join(["python", "-m", "core", *verb_args, "--out", str(tmp_path / "a")]))
    control, lrs = RunControl(), {}

    def by_hand(event):
        if event.kind == "step":
            lrs.setdefault("a", []).append(event.lr)
            if event.step == 5:
                control.set_lr(0.000125)

    first = run_recipe(recipe, by_hand, control, out=tmp_path / "a")
    assert first.training["lr_changes"] == [[5, 0.000125]]
    assert " --lr-at 5:0.000125" in first.command
    command = first.command.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    verb, replay_args = parse_recorded(command)
    assert replay_args.lr_at == [(5, 0.000125)]
    assert main(shlex.split(command)[3:]) == 0  # the command itself, as a user would run it
    second = read_card(tmp_path / "b")
    assert second.training["lr_changes"] == first.training["lr_changes"]
    assert second.command == command  # replaying records the change once, not twice
    assert [h["train_loss"] for h in second.training["history"]] == pytest.approx(
        [h["train_loss"] for h in first.training["history"]], rel=1e-4)
    assert all(lr == pytest.approx(0.000125) for lr in lrs["a"][6:]) and lrs["a"][4] != pytest.approx(0.000125)
    with pytest.raises(ValueError):
        parse_recorded(command + " --lr-at soon")
