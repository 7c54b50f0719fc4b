"""Data-parallel training under torchrun: two CPU processes (gloo) on `digits`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.engine.checkpoint import read_card
from tests.conftest import ROOT

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
FLAGS = ["--dataset", "digits", "--model", "fast_cnn", "--lr", "0.003", "--val-split", "0.1", "--threads", "1"]


def train(out: Path, *extra: str, processes: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    prefix = TORCHRUN if processes == 2 else [sys.executable]
    return subprocess.run([*prefix, "-m", "core", "train", *FLAGS, *extra, "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CNN_STUDIO_OFFLINE": "1"})


def test_two_processes_train_like_one_and_only_rank_0_writes(tmp_path):
    one = train(tmp_path / "one", "--epochs", "3", processes=1)
    two = train(tmp_path / "two", "--epochs", "3")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert "(2 processes)" in two.stdout and two.stdout.count("test accuracy") == 1  # rank 0 reports, once
    single, parallel = read_card(tmp_path / "one"), read_card(tmp_path / "two")
    assert parallel.training["steps"] == single.training["steps"]  # the same global batches
    assert abs(parallel.metrics["test_accuracy"] - single.metrics["test_accuracy"]) < 0.03
    assert parallel.metrics["test_accuracy"] > 0.9
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert "card.json" in files and "model.safetensors" in files
    assert sum(name.startswith("events.out.tfevents") for name in files) == 2  # one writer: scalars + hparams


def _rank_pids(parent: int) -> dict[int, int]:
    """rank -> pid of the worker processes torchrun started."""
    found = {}
    for pid in subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ranks = [e.split(b"=", 1)[1] for e in env if e.startswith(b"RANK=")]
        if ranks:
            found[int(ranks[0])] = int(pid)
    return found


def test_a_killed_rank_ends_the_run_with_a_message_and_leaves_a_resumable_checkpoint(tmp_path):
    out = tmp_path / "run"
    runner = subprocess.Popen([*TORCHRUN, "-m", "core", "train", *FLAGS, "--epochs", "500", "--out", str(out)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "CNN_STUDIO_OFFLINE": "1"})
    try:
        deadline = time.time() + 120
        while not (out / "card.json").is_file() and time.time() < deadline:  # epoch 1 saved
            time.sleep(0.2)
        assert (out / "card.json").is_file(), "no epoch finished"
        ranks = _rank_pids(runner.pid)
        assert set(ranks) == {0, 1}
        os.kill(ranks[1], signal.SIGKILL)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode != 0
    assert "ChildFailedError" in output or "exitcode" in output  # torchrun names the rank that died
    card = read_card(out)
    assert card.run["state"] == "in_progress" and card.run["epoch"] >= 1  # the last finished epoch, resumable
    assert (out / "resume.safetensors").is_file()


def test_the_gpu_check_says_clearly_when_there_is_no_gpu():
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU: run bench/gpu_check.sh itself (about 10 minutes)")
    done = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no NVIDIA GPU here" in done.stderr


def test_mixed_precision_is_chosen_from_the_device():
    import torch

    from core.engine.fit import mixed_precision

    assert mixed_precision(torch.device("cpu")) is None  # CPU trains in float32, as the shipped runs did
