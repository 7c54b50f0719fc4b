"""Progress on the console for every command that trains or measures: one tqdm bar fed by engine events.

Owns turning the engine's event stream into a progress bar with epoch lines (loss and the metrics of any
task) and Ctrl-C into a cooperative stop (the step finishes, the run ends and is saved), so no
`python -m core train...` verb is silent for more than a few seconds. The verbs themselves are `core.cli`'s.
"""
from __future__ import annotations

import signal
from typing import Callable

from core.engine import Event, RunControl, distributed


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))


def console_run(desc: str = "training", lr_at=()) -> tuple[Callable[[Event], None], RunControl, Callable[[], None]]:
    """(event callback, control stopped by Ctrl-C and making the `lr_at` changes, close) for one run on the console."""
    from tqdm import tqdm

    control = RunControl(lr_at)
    signal.signal(signal.SIGINT, lambda *_: control.stop())  # finish the step, then save what we have
    if not distributed.is_main():  # under torchrun only rank 0 reports
        return (lambda event: None), control, (lambda: None)
    bar = tqdm(total=None, unit="step", dynamic_ncols=True, desc=desc)

    def on_event(event: Event) -> None:
        if event.kind == "step":
            if bar.total is None and event.progress:
                bar.total = round(event.step / event.progress)
            bar.update(1)
            bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}",
                            img_s=f"{event.images_per_s:.0f}")
        elif event.kind == "prepare" and (event.done == event.total or event.done % 1024 < 64):
            bar.write(f"{event.done:,}/{event.total:,}: {event.message}")
        elif event.kind == "epoch":
            val = f"; validation {_fmt(event.val)}" if event.val else ""
            bar.write(f"epoch {event.epoch}: train {_fmt(event.train)}{val} ({event.seconds:.1f} s)")
        elif event.kind == "monitor" and event.metrics:
            bar.write(f"epoch {event.epoch}: {_fmt(event.metrics)}")
        elif event.kind == "fold":
            bar.write(f"fold {event.fold}/{event.folds}: held-out accuracy {event.accuracy:.4%}")
        elif event.kind == "warning":
            bar.write(f"warning: {event.message}")
        elif event.kind == "end":
            bar.write(event.message)

    return on_event, control, bar.close


def counted(items, desc: str, unit: str = "item"):
    """`items` with a progress bar (for evaluations that take more than a few seconds)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
