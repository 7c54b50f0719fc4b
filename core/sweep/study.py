"""Sweeps on Optuna, for any model kind with a validation metric: every trial is a run (its own folder in the runs folder, with live events, a checkpoint and
a card, so the Trainer watches it and the other pages offer its model), chosen by a sampler (grid, random,
TPE) and stopped early by a pruner from its validation curve.

    python -m core sweep --preset seed004-mnist --trials 16
    python -m core sweep --dataset digits --model fast_cnn --epochs 4 --space config.lr=loguniform:1e-4:1e-1 \\
        --space config.batch_size=choice:32,64,128 --trials 12 --sampler tpe --pruner median
    python -m core sweep --kind autoencoder ...    # flags after the sweep's own are the kind's train flags

The study lives in an SQLite file in the runs folder (`sweeps.db`: embedded, nothing to start); `--storage`
takes any database URL Optuna supports, e.g. `postgresql://user:pass@host/db`, so workers on several
machines share one study: start the same command (same `--study`) on each. Trials are scored on the
validation share (best validation accuracy over the epochs), never on the test set, which each trial's
card still reports.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core import paths
from core.engine.recipe import RECIPES
from core.engine.settings import with_settings
from core.engine.verbs import register_verb
from core.errors import SettingsError
from core.paths import safe_name
from core.sweep.space import PRESETS, grid, parse_space, suggest

SWEEP_FILE = "sweep.json"  # in a trial's run folder: the study, the trial number, its parameters


def default_storage(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(root / 'sweeps.db').resolve()}"


def make_sampler(name: str, space, seed: int):
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(grid(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)  # random trials before TPE models the space
    raise SettingsError(f"unknown sampler {name!r}: grid, random or tpe")


def make_pruner(name: str):
    import optuna

    if name == "median":  # a trial whose validation accuracy is below the median of earlier trials at that epoch
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SettingsError(f"unknown pruner {name!r}: median or none")


def open_study(name: str, storage: str, sampler, pruner):
    """Create the study, or join it when another worker has: workers started together race to create the
    database's tables, so a worker that loses the race tries again a moment later."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(8):
        try:
            return optuna.create_study(study_name=name, storage=storage, direction="maximize", sampler=sampler,
                                       pruner=pruner, load_if_exists=True)
        except (OperationalError, IntegrityError, optuna.exceptions.DuplicatedStudyError):
            if attempt == 7:
                raise
            time.sleep(0.2 * (attempt + 1))


def run_trial(trial, base, space, root: Path, study_name: str) -> float:
    """One trial: a run folder trained through the Trainer's worker code, reporting the kind's validation metric
    after every epoch to the pruner; returns its best value."""
    import optuna

    from core.runs.service import create_run
    from core.runs.worker import train_run

    values = suggest(trial, space)
    spec = with_settings(base, values)
    metric = spec.sweep_metric
    run_dir = create_run(root, spec, name=f"{study_name}-t{trial.number}")
    (run_dir / SWEEP_FILE).write_text(json.dumps({"study": study_name, "trial": trial.number, "params": values}))
    pruned = {}

    def observe(event, control) -> None:
        if event.kind == "epoch" and event.val.get(metric) is not None:
            trial.report(event.val[metric], event.epoch)
            if trial.should_prune():
                pruned["epoch"] = event.epoch
                control.stop()
    card = train_run(run_dir, spec, observe=observe,
                          stopped_message=lambda: f"Pruned by the sweep after epoch {pruned['epoch']}: its validation "
                          "accuracy was below the median of earlier trials." if pruned else None)
    trial.set_user_attr("run", run_dir.name)
    if card is None:
        raise RuntimeError(f"trial {trial.number} failed: see {run_dir / 'status.json'}")
    trial.set_user_attr("test_accuracy", card.metrics.get("test_accuracy"))
    if card.headline is not None:
        trial.set_user_attr("headline", card.headline.describe())
    if pruned:
        raise optuna.TrialPruned()
    history = [h.get(f"val_{metric}") for h in card.training.get("history", [])]
    if all(v is None for v in history):
        raise RuntimeError(f"trial {trial.number} reported no validation {metric}")
    return max(v for v in history if v is not None)


def sweep(base, space_items: list[str], trials: int, sampler: str = "tpe", pruner: str = "median",
          storage: str | None = None, study_name: str | None = None, root: Path | None = None, seed: int = 0):
    """Run `trials` trials of the study (created, or joined when it exists); returns the Optuna study."""
    import optuna

    if base.sweep_metric is None:
        raise SettingsError(f"{base.title} recipes are not swept: they have no validation metric to maximise.")
    space = parse_space(space_items)
    with_settings(base, {p: (s.args[0]) for p, s in space.items()})  # every path names a setting: fail before trial 1
    base = base.for_sweep()  # a sweep chooses on validation data, never on the test set
    root = Path(root or paths.runs_dir())
    study = open_study(study_name or time.strftime("sweep-%Y%m%d-%H%M%S"), storage or default_storage(root),
                       make_sampler(sampler, space, seed), make_pruner(pruner))
    study.set_user_attr("space", space_items)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda t: run_trial(t, base, space, root, study.study_name), n_trials=trials,
                   catch=(RuntimeError,))
    return study


def trials_table(study) -> list[dict]:
    """One row per trial: number, state, validation accuracy, test accuracy, run folder, and the parameters."""
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name.lower(), "val accuracy": t.value,
                     "test accuracy": t.user_attrs.get("test_accuracy"), "run": t.user_attrs.get("run", ""),
                     **t.params})
    return rows


def _arguments(parser) -> None:
    parser.description = ("Tune a recipe with Optuna: each trial is a run. Flags after these are the kind's train "
                          "flags (as for its train verb), e.g. --dataset digits --epochs 3.")
    parser.add_argument("--kind", default="classifier", help="the model kind to tune (default: classifier)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a ready classifier sweep (recipe and space)")
    parser.add_argument("--space", action="append", default=[], metavar="PATH=KIND:ARGS",
                        help="a parameter: config.lr=loguniform:1e-4:1e-1, label_smoothing=uniform:0:0.2, "
                             "augment.translate=int:0:3, config.optimizer=choice:adam,sgd (repeatable)")
    parser.add_argument("--trials", type=int, default=8, help="trials this worker runs")
    parser.add_argument("--sampler", choices=["tpe", "random", "grid"], default=None,
                        help="default: grid for a preset, else tpe")
    parser.add_argument("--pruner", choices=["median", "none"], default="median")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: sqlite in the runs folder)")
    parser.add_argument("--study", default=None, help="study name; workers with the same name share the study")
    parser.add_argument("--runs", default=None, help="the runs folder (default: $CNN_STUDIO_RUNS or runs/)")


def base_recipe(kind: str, flags: list[str]):
    """The recipe a sweep starts from: `kind`'s default with its train `flags` on top."""
    from core.engine.flags import add_recipe_flags, recipe_from_args

    if kind not in RECIPES:
        raise SettingsError(f"unknown model kind {kind!r}; known: {', '.join(RECIPES)}")
    parser = argparse.ArgumentParser(prog=f"python -m core sweep --kind {kind}", add_help=False)
    add_recipe_flags(parser, RECIPES[kind])
    parser.error = lambda message: (_ for _ in ()).throw(SettingsError(f"the recipe's flags: {message}"))
    return recipe_from_args(RECIPES[kind], parser.parse_args(flags))


@register_verb("sweep", "tune a recipe with Optuna (grid, random or TPE, with pruning): every trial is a run",
               _arguments, more=True)
def sweep_verb(args) -> int:
    flags, space = PRESETS[args.preset] if args.preset else ([], [])
    if args.trials < 1:
        raise SettingsError(f"--trials must be at least 1; got {args.trials}")
    base = base_recipe(args.kind, flags + args.more)
    study = sweep(base, space + args.space, args.trials, args.sampler or ("grid" if args.preset else "tpe"),
                  args.pruner, args.storage, args.study, Path(args.runs) if args.runs else None, base.seed)
    rows = trials_table(study)
    keys = list(rows[0]) if rows else []
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    done = [t for t in study.trials if t.value is not None]
    if done:
        best = study.best_trial
        print(f"best: trial {best.number}, validation {base.sweep_metric} {best.value:.4f}, run "
              f"{best.user_attrs.get('run')}: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    return 0


def start_sweep(root: Path, trials: int, preset: str | None = None, flags: list[str] = (), space: list[str] = (),
                sampler: str | None = None, pruner: str = "median", study: str | None = None):
    """Start `python -m core sweep ...` in its own process (the Sweeps page); returns (process, study name)."""
    import subprocess

    study = study or time.strftime("sweep-%Y%m%d-%H%M%S")
    command = [sys.executable, "-m", "core", "sweep", *(["--preset", preset] if preset else []), *flags,
               *[a for item in space for a in ("--space", item)], "--trials", str(trials), "--pruner", pruner,
               *(["--sampler", sampler] if sampler else []), "--study", study, "--runs", str(root)]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{safe_name(study)}.log", "ab") as log:  # the study's name, never a path
        process = subprocess.Popen(command, cwd=paths.PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    return process, study


def studies(root: Path) -> list[str]:
    """Names of the studies in the runs folder's sweeps.db, newest last."""
    import optuna

    if not (root / "sweeps.db").is_file():
        return []
    return [s.study_name for s in optuna.get_all_study_summaries(default_storage(root))]


def load(root: Path, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=default_storage(root))
