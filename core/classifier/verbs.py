"""The classifier kind's verbs besides `train`: `imagenet-card` writes the explorer's pretrained ImageNet model."""
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
