"""A run's events as TensorBoard event files, beside its checkpoint, so `tensorboard --logdir <runs folder>`
shows and compares every run (the app keeps its own live charts; this is for people who live in TensorBoard).

Written with PyTorch's `torch.utils.tensorboard.SummaryWriter`, which needs the `tensorboard` package and
never TensorFlow (`without_tensorflow`). Tags: `step/loss`, `step/lr`, `step/<metric>` per optimizer step; `epoch/train_<metric>`,
`epoch/val_<metric>`, `epoch/lr` per epoch; `eval/<metric>` for validations within an epoch;
`monitor/<metric>` for a recipe's own per-epoch measurements (BLEU, reconstruction error); the recipe's
live pictures as the image `samples`; warnings as text; and at the end the settings with the final test
metrics in TensorBoard's hparams view.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


def without_tensorflow() -> None:
    """Make TensorBoard use its own TensorFlow stub even where TensorFlow is installed (it would otherwise
    import all of TensorFlow, seconds and hundreds of MB, into every training process): registering the
    module `tensorboard.compat.notf` is TensorBoard's own switch for that (its no_tensorflow build target)."""
    import sys
    import types

    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def flat_settings(settings: dict, prefix: str = "") -> dict:
    """Nested recipe settings as the scalar values the hparams view takes ('config.lr': 0.003, ...)."""
    out = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_settings(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif value is not None:
            out[name] = str(value)
    return out


class TensorBoardLog:
    """Call it with every engine event; `pictures(array, epoch)` for live pictures; `close(metrics)` at the end."""

    def __init__(self, folder: str | Path, settings: dict):
        without_tensorflow()
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401  (fails now, not mid-run, if missing)

        self.folder = Path(folder)
        self.settings = flat_settings(settings)
        self.step = 0
        self._writer = None

    @property
    def writer(self):
        """The event file's writer, created with the first event: a run refused before it starts leaves no file."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.folder), flush_secs=5)
        return self._writer

    def __call__(self, event) -> None:
        w, kind = self.writer, event.kind
        if kind == "step":
            self.step = event.step
            w.add_scalar("step/loss", event.loss, event.step)
            w.add_scalar("step/lr", event.lr, event.step)
            for key, value in (event.metrics or {}).items():
                w.add_scalar(f"step/{key}", float(value), event.step)
        elif kind == "epoch":
            for split, values in (("train", event.train), ("val", event.val)):
                for key, value in (values or {}).items():
                    w.add_scalar(f"epoch/{split}_{key}", float(value), event.epoch)
            w.add_scalar("epoch/lr", event.lr, event.epoch)
        elif kind == "eval":
            for key, value in event.metrics.items():
                w.add_scalar(f"eval/{key}", float(value), event.step)
        elif kind == "monitor":
            for key, value in (event.metrics or {}).items():
                if isinstance(value, (int, float)):
                    w.add_scalar(f"monitor/{key}", float(value), event.epoch)
        elif kind == "warning":
            w.add_text("warnings", event.message, self.step)

    def pictures(self, array: np.ndarray, epoch: int) -> None:
        image = np.asarray(array)
        self.writer.add_image("samples", image, epoch, dataformats="HW" if image.ndim == 2 else "HWC")

    def close(self, metrics: dict) -> None:
        if self._writer is None:
            return
        final = {f"test/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if final:
            self.writer.add_hparams(self.settings, final, run_name=".")
        self.writer.close()


def open_log(folder: str | Path | None, recipe) -> TensorBoardLog | None:
    """A TensorBoardLog for a run that saves to `folder`, or None (no folder, or no tensorboard package)."""
    if folder is None:
        return None
    try:
        return TensorBoardLog(folder, {"kind": recipe.kind, **dataclasses.asdict(recipe)})
    except ImportError:
        return None
