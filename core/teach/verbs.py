"""A taught head as a CNN Studio checkpoint, and the `teach` verb that makes one from a folder of class folders.

The checkpoint is an ordinary classifier: `efficientnet_lite0` (frozen, its weights from the package) with the
taught head as its `fc`, a card whose data set is TAUGHT (no test set to load: the held-out shots stand in),
the shots per class, the held-out check as its headline and the calibration section every classifier has.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from core.engine.verbs import register_verb
from core.teach.head import Taught, teach
from core.teach.shots import SIZE, VIEWS, FeatureBank, read_class_shots

TAUGHT = "taught"  # the data set name of a taught model's card (DatasetInfo.has_test_set knows it)


def to_model(taught: Taught):
    """The taught head inside the Lite0 classifier, in eval mode."""
    from core.models import build_model

    model = build_model("efficientnet_lite0", in_channels=3, image_size=SIZE, num_classes=len(taught.classes))
    with torch.no_grad():
        model.fc.weight.copy_(taught.weight)
        model.fc.bias.copy_(taught.bias)
    return model.eval()


def taught_checkpoint(taught: Taught, counts: dict[str, int], command: str | None = None):
    """(model, card) of the taught head, as `save_taught` writes them."""
    from core.engine.checkpoint import DatasetInfo, ModelCard, spec_of
    from core.models.pretrained import LITE_MEAN, LITE_STD

    model = to_model(taught)
    check = taught.check
    card = ModelCard(
        task="classification", model=spec_of(model),
        dataset=DatasetInfo(name=TAUGHT, channels=3, image_size=SIZE, mean=list(LITE_MEAN), std=list(LITE_STD),
                            class_names=list(taught.classes), train_size=sum(counts.values()), hflip=True,
                            source=f"{sum(counts.values())} shots taught on the Teach page or by python -m core teach",
                            extra={"shots": dict(counts)}),
        metrics={"heldout_accuracy": check["accuracy"], "heldout": check["method"], "per_class": check["per_class"],
                 "confusion": check["confusion"], **taught.metrics},
        training={"epochs": 1, "train_seconds": round(taught.seconds, 2), "steps": len(taught.losses),
                  "history": {"loss": [round(v, 5) for v in taught.losses]},
                  "note": f"linear head on frozen EfficientNet-Lite0 features of each shot seen as {', '.join(VIEWS)}; "
                          "L-BFGS on standardised features with an L2 penalty"},
        params=sum(p.numel() for p in model.parameters()), command=command)
    card.sections["calibration"] = taught.calibration
    card.run = {"state": "complete", "epoch": 1}
    return model, card


def save_taught(taught: Taught, counts: dict[str, int], out: str | Path, command: str | None = None) -> Path:
    """Write the taught model as a checkpoint folder `out`; returns it."""
    from core.engine.checkpoint import save_checkpoint
    from core.runs.folder import EVENTS, SPEC, STATUS, write_json

    folder = save_checkpoint(out, *taught_checkpoint(taught, counts, command))
    check = taught.check  # the run files Compare runs lists a run by: the held-out check stands in for validation
    write_json(folder / SPEC, {"kind": "teach", "dataset": f"{TAUGHT}: {', '.join(taught.classes)}"[:120],
                               "model": "efficientnet_lite0 + taught head", "shots": dict(counts)})
    write_json(folder / STATUS, {"state": "finished", "train_seconds": round(taught.seconds, 2),
                                 "cv": {"mean": check["accuracy"], "method": check["method"]}})
    n, seconds = len(taught.losses), max(taught.seconds, 1e-6)
    steps = [{"kind": "step", "epoch": 1, "step": i + 1, "loss": loss, "lr": 1.0, "metrics": {},
              "progress": (i + 1) / n, "train_seconds": round(seconds * (i + 1) / n, 3),
              "images_per_s": round(check["shots"] * n / seconds, 1)}
             for i, loss in enumerate(taught.losses)]  # one per L-BFGS evaluation (each sees every shot)
    epoch = {"kind": "epoch", "epoch": 1, "step": len(taught.losses), "seconds": round(taught.seconds, 2),
             "train": {"loss": taught.losses[-1]}, "lr": 1.0, "improved": True,
             "val": {"accuracy": check["accuracy"], "loss": taught.metrics["nll"]}}  # held-out answers' loss
    (folder / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in [*steps, epoch]))
    return folder


def _arguments(parser) -> None:
    parser.add_argument("folder", help="a folder (or .zip) of class folders: <class>/*.jpg, 2 to 10 classes")
    parser.add_argument("--out", required=True, help="the checkpoint folder to write")


@register_verb("teach", "teach new classes from a few photos each (a folder or zip of class folders): a linear head "
               "on the pretrained EfficientNet-Lite0, checked on held-out shots", _arguments)
def teach_verb(args) -> None:
    from core.engine.checkpoint import invoking_command

    began = time.perf_counter()
    classes, shots, labels, skipped = read_class_shots(args.folder)
    features = FeatureBank().features(shots)
    taught = teach(features, torch.tensor(labels), classes)
    counts = {c: labels.count(i) for i, c in enumerate(classes)}
    folder = save_taught(taught, counts, args.out, invoking_command("core.teach.verbs"))
    check = taught.check
    print(f"taught {len(classes)} classes from {len(shots)} shots in {time.perf_counter() - began:.1f} s "
          f"(head {taught.seconds:.2f} s)" + (f"; {skipped} files were not readable images and were skipped"
                                             if skipped else ""))
    print(f"{check['method']}: accuracy {check['accuracy']:.1%} ("
          + ", ".join(f"{c} {a:.0%}" for c, a in check["per_class"].items()) + ")")
    print(f"wrote {folder}")
