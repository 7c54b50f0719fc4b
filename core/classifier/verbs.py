"""The classifier kind's verbs besides `train`: `imagenet-card` writes the explorer's pretrained ImageNet model,
`ood` measures how well "none of these" works (`calibrate`, common to every kind, is in core/cli.py)."""
from __future__ import annotations

from core import paths
from core.classifier.transfer import write_imagenet_checkpoint
from core.engine.verbs import register_verb


def _imagenet_arguments(parser) -> None:
    parser.add_argument("--out", default=str(paths.SHIPPED_CHECKPOINTS / "efficientnet_lite0_imagenet"))


@register_verb("imagenet-card", "write the pretrained ImageNet model's card (its weights come from the package)",
               _imagenet_arguments)
def imagenet_card(args) -> None:
    print(f"wrote {write_imagenet_checkpoint(args.out)}")


def _ood_arguments(parser) -> None:
    parser.add_argument("checkpoints", nargs="+", help="classifier checkpoints")
    parser.add_argument("--ood", required=True, help="the other images: a data set's name (e.g. fashion_mnist), or "
                        "scribbles, textures or photos (made by CNN Studio)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per checkpoint")
    parser.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")


@register_verb("ood", "how well a classifier tells its test images from others (AUROC, the other images accepted "
               "at 95 % of its own): the energy and maximum-probability scores", _ood_arguments)
def ood(args) -> None:
    import json

    from core.classifier.ood import ood_report
    from core.engine.checkpoint import load_checkpoint

    for folder in args.checkpoints:
        model, card = load_checkpoint(folder)
        report = {"checkpoint": folder, **ood_report(model, card, args.ood, args.data_dir)}
        if args.json:
            print(json.dumps(report))
        else:
            print(f"{folder} against {args.ood}: " + "; ".join(f"{name}: AUROC {r['auroc']:.4f}, FPR at 95 % TPR "
                                                               f"{r['fpr_at_95_tpr']:.2%}"
                                                               for name, r in report["scores"].items()))
