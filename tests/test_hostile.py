"""Every case of the hostile corpus (tests/hostile_corpus.py) fed to every entry point that takes it.

Each case must be refused with a message naming the problem (the refusal types the pages and the CLI turn
into one line of words) or converted correctly (checked against the expected pixels or model); never a
traceback, a hang, a file outside the app's folders, or a leftover temporary file. Failures are collected
per kind and reported together, with the case names.
"""
from __future__ import annotations

import io
import re
import signal
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from core.byo import ModelFileError, load_model_file
from core.data import DataError, load_dataset
from core.data.folder import store_uploaded_zip
from core.data.images import ImageError, decode_image
from core.draw.preprocess import preprocess_photo
from core.engine.predict import predict_proba
from core.draw.preprocess import read_photo
from tests import hostile_corpus as corpus
from tests import hostile_corpus3 as corpus3

CASE_SECONDS = 30  # a case that takes longer has hung


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Temporary files go to a folder of their own (checked empty after every case); the app's cache and
    runs live under tmp_path; /tmp is checked for the marker a hostile file would create."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CNN_STUDIO_RUNS", str(tmp_path / "runs"))
    marker = Path("/tmp") / corpus.MARKER
    marker.unlink(missing_ok=True)
    yield temp
    assert not marker.exists(), "a hostile input wrote a file on the server"


@contextmanager
def time_limit(seconds: int):
    def hung(*_):
        raise TimeoutError(f"no answer within {seconds} s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def judge(case, call, refusals: tuple, temp: Path, failures: list) -> None:
    """Run `call()` for `case`; record what went wrong, if anything, in `failures`."""
    try:
        with time_limit(CASE_SECONDS):
            result = call()
    except refusals as exc:
        if not case.refused:
            failures.append(f"{case.name}: refused ({exc}) but should convert")
        elif not re.search(case.expect, str(exc), re.IGNORECASE):
            failures.append(f"{case.name}: refused with {str(exc)!r}, which does not name /{case.expect}/")
    except Exception as exc:  # noqa: BLE001 - anything else would reach the user as a traceback
        failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
    else:
        if case.refused:
            failures.append(f"{case.name}: accepted but should be refused (/{case.expect}/)")
        else:
            try:
                case.expect(result)
            except AssertionError as exc:
                failures.append(f"{case.name}: converted wrongly: {exc}")
    leftovers = list(temp.iterdir())
    if leftovers:
        failures.append(f"{case.name}: left temporary files {[p.name for p in leftovers]}")
        for p in leftovers:
            p.unlink() if p.is_file() else __import__("shutil").rmtree(p)


@pytest.fixture(scope="module")
def cases():
    return {"image": corpus.image_cases() + corpus3.image_cases(), "dataset": corpus.dataset_cases()
            + corpus3.dataset_cases(), "model": corpus.model_cases() + corpus3.card_cases() + corpus3.onnx_cases()
            + corpus3.keras_cases(), "photo": corpus3.photo_cases()}


def args_cases(tmp: Path) -> list:
    return corpus.args_cases(tmp) + corpus3.args_cases(tmp)


def settings_cases() -> list:
    return corpus.settings_cases() + corpus3.settings_cases()


def test_the_corpus_is_large_and_varied(cases, tmp_path):
    files = sum(len(v) for v in cases.values())
    total = files + len(args_cases(tmp_path)) + len(settings_cases())
    assert total >= 150 and all(any(c.refused for c in v) and any(not c.refused for c in v) for v in cases.values())
    third = (len(corpus3.card_cases()) + len(corpus3.onnx_cases()) + len(corpus3.keras_cases())
             + len(corpus3.image_cases()) + len(corpus3.photo_cases()) + len(corpus3.dataset_cases())
             + len(corpus3.args_cases(tmp_path)) + len(corpus3.settings_cases()) + len(corpus3.RUN_NAMES))
    assert third >= 80  # the third round's cases (issue 26)


def test_images_through_the_upload_decoder_and_the_pages(cases, sandbox):
    failures = []
    for case in cases["image"]:
        judge(case, lambda: decode_image(case.data), (ImageError,), sandbox, failures)
        if not case.refused:  # what the pages then do with it: a digit model's input and a photo model's
            image = decode_image(case.data)
            digit = preprocess_photo(image, size=28, channels=1, dark_background=True)
            photo = preprocess_photo(image, size=32, channels=3)
            if digit.shape != (1, 28, 28) or photo.shape != (3, 32, 32):
                failures.append(f"{case.name}: page preprocessing gave {digit.shape}, {photo.shape}")
    assert failures == []


def test_photos_the_pages_read_are_refused_when_they_would_show_nothing(cases, sandbox):
    """Decodable images too small or thin to classify (a 10,000 x 1 strip would be one uniform input): the pages'
    reader refuses them with words; an ordinary photo passes."""
    failures = []
    for case in cases["photo"]:
        judge(case, lambda: read_photo(case.data), (ImageError,), sandbox, failures)
    assert failures == []


def test_images_inside_a_data_set_zip_are_decoded_or_skipped(cases, sandbox, tmp_path):
    """The same decoder guards the data set path: a bad image is skipped with a note, a good one decoded."""
    good = corpus._png(np.full((8, 8), 100, np.uint8))
    failures = []
    for case in cases["image"]:
        files = {f"train/{c}/{i}.png": good for c in ("a", "b") for i in range(2)}
        files.update({f"test/{c}/0.png": good for c in ("a", "b")} | {"train/a/case.png": case.data})
        data = corpus._zip(files)

        def load():
            return load_dataset(store_uploaded_zip(data, "set.zip", tmp_path / "uploads"))
        before = len(failures)
        judge(corpus.Case("dataset", case.name, data, lambda ds: None), load, (DataError,), sandbox, failures)
        if len(failures) == before:
            ds = load()
            skipped = any("skipped 1" in n for n in ds.notes)
            if case.refused != skipped or len(ds.train_y) != (4 if case.refused else 5):
                failures.append(f"{case.name}: in a zip, skipped={skipped}, {len(ds.train_y)} training images")
    assert failures == []


def test_data_set_zips(cases, sandbox, tmp_path):
    failures = []
    root = tmp_path / "uploads"
    for case in cases["dataset"]:
        before = set(root.iterdir()) if root.exists() else set()
        judge(case, lambda: load_dataset(store_uploaded_zip(case.data, case.name, root)), (DataError,), sandbox,
              failures)
        if case.refused and root.exists() and set(root.iterdir()) - before:
            failures.append(f"{case.name}: a refused upload was kept in {root}")
    assert failures == []


def test_model_files(cases, sandbox):
    failures = []

    def load(case):
        model, card = load_model_file(case.data, case.name)
        channels, size = card.dataset.channels, card.dataset.image_size
        probs = predict_proba(model, card, np.zeros((channels, size, size), np.uint8))
        assert np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-4
        return model, card
    for case in cases["model"]:
        started = time.perf_counter()
        judge(case, lambda: load(case), (ModelFileError,), sandbox, failures)
        if time.perf_counter() - started > 10:
            failures.append(f"{case.name}: took {time.perf_counter() - started:.0f} s")
    assert failures == []


def test_command_lines_are_refused_before_any_work(sandbox, tmp_path, capsys):
    from core.cli import main

    failures = []
    for case in args_cases(tmp_path):
        started = time.perf_counter()
        try:
            with time_limit(CASE_SECONDS):
                code = main(list(case.data))
        except SystemExit as exc:  # argparse's own refusals (a value of the wrong type)
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - a traceback
            failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
            continue
        err = capsys.readouterr().err
        if code == 0 or "Traceback" in err or not re.search(case.expect, err, re.IGNORECASE):
            failures.append(f"{case.name}: exit {code}, stderr {err[-300:]!r}")
        if time.perf_counter() - started > 15:
            failures.append(f"{case.name}: refused only after {time.perf_counter() - started:.0f} s")
    assert failures == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing trained or saved


def test_trainer_settings_are_refused_before_a_worker_starts(sandbox, tmp_path):
    import dataclasses

    from core import runs
    from core.engine.recipe import RECIPES as KINDS

    failures = []
    for case in settings_cases():
        kind, field, value = case.data
        recipe = KINDS[kind]()
        if "." in field:
            outer, inner = field.split(".")
            recipe = dataclasses.replace(recipe, **{outer: dataclasses.replace(getattr(recipe, outer), **{inner: value})})
        else:
            recipe = dataclasses.replace(recipe, **{field: value})
        try:
            started = runs.start_runs([recipe])
            failures.append(f"{case.name}: a run was started")
            for run_dir in started:  # a run that should never have started must not train on: end its worker now
                runs.service._workers[str(run_dir)].kill()
                runs.wait(run_dir)
        except ValueError as exc:
            if not re.search(case.expect, str(exc), re.IGNORECASE):
                failures.append(f"{case.name}: refused with {exc!r}")
    assert failures == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_tiny_imagenet_with_every_validation_image_unreadable(tmp_path, sandbox):
    from core.data.base import CorruptDataError
    from core.data.tiny_imagenet import read_tiny_imagenet

    png = corpus._png(np.zeros((64, 64, 3), np.uint8))
    files = {"tiny-imagenet-200/wnids.txt": b"n01\nn02\n", "tiny-imagenet-200/val/val_annotations.txt":
             b"v0.JPEG\tn01\t0\t0\t1\t1\nv1.JPEG\tn02\t0\t0\t1\t1\n",
             "tiny-imagenet-200/val/images/v0.JPEG": b"broken", "tiny-imagenet-200/val/images/v1.JPEG": b"junk"}
    files.update({f"tiny-imagenet-200/train/{w}/images/{w}_{i}.JPEG": png for w in ("n01", "n02") for i in range(2)})
    path = tmp_path / "tiny-imagenet-200.zip"
    path.write_bytes(corpus._zip(files))
    with pytest.raises(CorruptDataError, match="none of the 2 test images could be read"):
        read_tiny_imagenet(path)


def test_divergence_stops_the_run_with_advice():
    from core.engine import TrainConfig
    from core.engine.run import run
    from core.classifier import ClassifierRecipe

    for lr in (10.0, 50.0):  # Adam: unstable from the first steps
        card = run(ClassifierRecipe(dataset="digits", model="fast_cnn", config=TrainConfig(epochs=3, lr=lr)))
        assert card.training["stop_reason"] == "diverged", lr
        assert "Lower the learning rate" in card.training["message"]
    with pytest.raises(ValueError, match="lr must be positive and at most 100"):  # 1e6 is refused before training
        run(ClassifierRecipe(dataset="digits", model="fast_cnn", config=TrainConfig(epochs=3, lr=1e6)))
    healthy = run(ClassifierRecipe(dataset="digits", model="fast_cnn", config=TrainConfig(epochs=2, lr=3e-3)))
    assert healthy.training["stop_reason"] == "completed"


def test_guarded_zip_limits_members_and_cleans_its_temporary_folder(sandbox):
    from core.data.archive import ArchiveError, open_zip, temporary_folder

    data = corpus._zip({f"f{i}.txt": b"x" for i in range(50)})
    with pytest.raises(ArchiveError, match="50 entries; the limit is 10"):
        with open_zip(data, max_members=10):
            pass
    with pytest.raises(RuntimeError):
        with temporary_folder() as folder:
            (folder / "partial").write_bytes(b"half")
            raise RuntimeError("an error in the middle")
    assert not folder.exists() and list(sandbox.iterdir()) == []
    with open_zip(data) as archive:
        assert archive.read("f3.txt") == b"x" and len(archive.names) == 50
    assert isinstance(zipfile.ZipFile(io.BytesIO(data)).testzip(), type(None))


def test_run_names_never_leave_the_runs_folder(sandbox, tmp_path):
    """Every name that becomes a path goes through one function (core.paths.safe_name): a run's folder stays in
    the runs folder whatever its name, and a name with nothing usable in it is refused with words."""
    from core.classifier import ClassifierRecipe
    from core.errors import SettingsError
    from core.runs.service import create_run

    root = tmp_path / "runs"
    for name in corpus3.RUN_NAMES:
        try:
            folder = create_run(root, ClassifierRecipe(), name=name)
        except SettingsError as exc:
            assert "letters or digits" in str(exc), name
            continue
        assert folder.parent == root and len(folder.name) < 120 and (folder / "spec.json").is_file(), name
    assert sorted(p.parent for p in root.rglob("spec.json")) == [root / p.name for p in sorted(root.iterdir())]
    assert not (tmp_path.parent / "x").exists()


def test_a_resumed_run_counts_each_step_once(tmp_path):
    """After a kill -9, the abandoned epoch's steps are in events.jsonl; the resumed run writes those steps again.
    The run's events, as every chart reads them, hold each step once, the resumed ones."""
    import json

    from core.runs import read_events

    def step(n, epoch, loss):
        return json.dumps({"kind": "step", "step": n, "epoch": epoch, "loss": loss}) + "\n"
    lines = [step(n, 1, 1.0) for n in range(1, 11)] + [json.dumps({"kind": "epoch", "epoch": 1}) + "\n"]
    lines += [step(n, 2, 2.0) for n in range(11, 16)]  # epoch 2, killed half-way
    lines += [step(n, 2, 0.5) for n in range(11, 21)] + [json.dumps({"kind": "epoch", "epoch": 2}) + "\n"]
    (tmp_path / "events.jsonl").write_text("".join(lines))
    events = read_events(tmp_path)
    assert [e["step"] for e in events["step"]] == list(range(1, 21))
    assert [e["loss"] for e in events["step"][10:]] == [0.5] * 10 and [e["epoch"] for e in events["epoch"]] == [1, 2]
