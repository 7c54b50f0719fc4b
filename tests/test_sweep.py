"""Sweeps on Optuna: the search space, a small sweep on digits, two workers on one SQLite study, pruning."""
from __future__ import annotations

import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from core.engine import TrainConfig  # noqa: E402
from core.engine.settings import with_settings as with_params  # noqa: E402
from core.sweep.space import PRESETS, grid, parse_space  # noqa: E402
from core.sweep.study import sweep, trials_table  # noqa: E402
from core import runs  # noqa: E402
from core.classifier import ClassifierRecipe  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

BASE = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.2, config=TrainConfig(epochs=2, threads=1))


def test_the_space_parses_refuses_and_applies():
    space = parse_space(["config.lr=loguniform:1e-4:1e-1", "augment.translate=int:0:2",
                         "config.optimizer=choice:adam,sgd", "model_options.width=choice:32,64"])
    assert space["config.lr"].args == (1e-4, 0.1) and space["model_options.width"].args == (32, 64)
    for bad, words in (("config.lr=gauss:1:2", "KIND one of"), ("config.lr=loguniform:0:1", "LOW > 0"),
                       ("x=choice:1", "at least two"), ("config.lr=uniform:2:1", "LOW < HIGH")):
        with pytest.raises(ValueError, match=words):
            parse_space([bad])
    spec = with_params(BASE, {"config.lr": 0.01, "augment.translate": 2, "model_options.width": 64, "val_split": 0.1})
    assert (spec.config.lr, spec.augment.translate, spec.model_options, spec.val_split) == (0.01, 2, {"width": 64}, 0.1)
    with pytest.raises(ValueError, match="no setting"):
        with_params(BASE, {"nonsense.x": 1})
    assert grid(parse_space(PRESETS["seed004-mnist"][1])) == {
        "model_options.width": [32, 64], "model_options.kernel": [3, 5], "model_options.dropout": [0, 0.5],
        "config.lr": [0.001, 0.0001]}
    with pytest.raises(ValueError, match="grid"):
        grid(space)


def test_a_small_sweep_on_digits_finds_a_better_trial_and_its_runs_are_checkpoints(tmp_path):
    study = sweep(BASE, ["config.lr=choice:0.00001,0.003"], trials=2, sampler="grid", pruner="none",
                  root=tmp_path, study_name="small")
    rows = trials_table(study)
    assert [r["state"] for r in rows] == ["complete", "complete"]
    by_lr = {r["config.lr"]: r for r in rows}
    assert by_lr[0.003]["val accuracy"] > by_lr[0.00001]["val accuracy"] + 0.2  # the sensible rate wins clearly
    assert study.best_trial.params["config.lr"] == 0.003
    listed = {d.name: status for d, _, status in runs.list_runs(tmp_path)}
    assert {r["run"] for r in rows} <= set(listed) and all(s["state"] == "finished" for s in listed.values())
    assert (tmp_path / "sweeps.db").is_file()


def test_pruning_stops_a_hopeless_trial(tmp_path):
    """Two good trials set the median; a trial at a learning rate that cannot learn is pruned after epoch 1."""
    spec = ClassifierRecipe(dataset="digits", model="fast_cnn", val_split=0.2, config=TrainConfig(epochs=4, threads=1))
    study = optuna.create_study(study_name="prune", storage=f"sqlite:///{tmp_path / 'sweeps.db'}",
                                direction="maximize")
    for lr in (0.003, 0.002, 1e-7):  # the order: two good trials set the median, then the hopeless one
        study.enqueue_trial({"config.lr": lr})
    done = sweep(spec, ["config.lr=choice:0.003,0.002,0.0000001"], trials=3, sampler="random", pruner="median",
                 root=tmp_path, study_name="prune")
    states = {t.params["config.lr"]: t.state.name for t in done.trials}
    assert states[1e-7] == "PRUNED", states
    run_dir = tmp_path / next(t.user_attrs["run"] for t in done.trials if t.params["config.lr"] == 1e-7)
    status = runs.read_status(run_dir)
    assert status["state"] == "stopped" and "Pruned by the sweep" in status["message"]
    assert len(runs.read_events(run_dir)["epoch"]) < 4


def test_two_workers_share_one_sqlite_study(tmp_path):
    command = [sys.executable, "-m", "core", "sweep", "--dataset", "digits", "--model", "fast_cnn", "--epochs", "1",
               "--threads", "1", "--space", "config.lr=loguniform:1e-3:1e-2", "--trials", "2", "--sampler", "random", "--pruner", "none",
               "--study", "shared", "--runs", str(tmp_path)]
    workers = [subprocess.Popen(command + ["--seed", str(i)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for i in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=300)
        assert w.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'sweeps.db'}")
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(finished) == 4 and len({t.number for t in finished}) == 4  # distinct trials from both workers
    assert len({t.user_attrs["run"] for t in finished}) == 4


def test_the_sweeps_page_shows_trials_plots_and_the_best_run(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "sweeps.py"), default_timeout=60).run()
    assert not at.exception and any("No sweeps yet" in i.value for i in at.info)
    sweep(BASE, ["config.lr=choice:0.00001,0.003"], trials=2, sampler="grid", pruner="none", root=tmp_path,
          study_name="page")
    at = AppTest.from_file(str(ROOT / "pages" / "sweeps.py"), default_timeout=60).run()
    assert not at.exception and at.selectbox(key="sweep_show").value == "page"
    table = at.dataframe[0].value
    assert list(table["trial"]) == [0, 1] and set(table["state"]) == {"complete"}
    assert any("Best: trial" in s.value and "config.lr = 0.003" in s.value for s in at.success)
    assert len(at.get("plotly_chart")) == 1  # parallel coordinates; importances of two trials would be noise:
    assert any("need at least 4 completed trials" in c.value for c in at.caption)  # the page says so instead
