"""The `visualize` verb: a feature visualisation of one conv channel or one class of a classifier checkpoint, as a
PNG, with the activation it reaches beside that of the most exciting test image."""
from __future__ import annotations

from core.engine.verbs import register_verb
from core.errors import ProjectError


def _arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a classifier checkpoint (folder)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--layer", help="a conv layer's name (e.g. features.5; `--layer list` lists them)")
    what.add_argument("--class", dest="klass", type=int, help="a class index: visualise that class's logit")
    parser.add_argument("--channel", type=int, default=0, help="the layer's channel (default 0)")
    parser.add_argument("--centre", action="store_true", help="excite the channel's centre unit, not its map's mean")
    parser.add_argument("--images", type=int, default=1, help="several different images (a diversity term)")
    parser.add_argument("--steps", type=int, default=256, help="gradient steps (default 256)")
    parser.add_argument("--out", default="visualisation.png", help="the PNG to write (enlarged for reading)")
    parser.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")


@register_verb("visualize", "feature visualisation by optimisation: the input a conv channel or a class responds to "
               "most, written as a PNG; prints the activation it reaches and the best test image's", _arguments)
def visualize_verb(args) -> None:
    import numpy as np
    from PIL import Image

    from core.data import DataError
    from core.engine.checkpoint import load_checkpoint
    from core.inside.atlas import search_images
    from core.inside.explain import conv_layer_names
    from core.inside.channels import Target, activation
    from core.inside.featvis import visualize
    from core.viz import image_grid

    model, card = load_checkpoint(args.checkpoint)
    if card.task != "classification":
        raise ProjectError(f"{args.checkpoint} is a {card.task} model; visualize reads classifiers")
    convs = conv_layer_names(model)
    if args.layer == "list":
        print("\n".join(f"{name}: {dict(model.named_modules())[name].out_channels} channels" for name in convs))
        return
    if args.layer is not None and args.layer not in convs:
        raise ProjectError(f"no conv layer {args.layer!r} in this model; its conv layers: {', '.join(convs)}")
    count = len(card.dataset.class_names) if args.layer is None else dict(model.named_modules())[args.layer].out_channels
    index = args.klass if args.layer is None else args.channel
    if not 0 <= index < count:
        raise ProjectError(f"{'class' if args.layer is None else 'channel'} {index} does not exist: 0 to {count - 1}")
    if not 1 <= args.images <= 16 or not 1 <= args.steps <= 10000:
        raise ProjectError("--images takes 1 to 16 and --steps 1 to 10000")
    target = Target(args.layer, index, "centre" if args.centre else "mean")
    result = visualize(model, card, args.layer, [index], mode=target.mode, per_channel=args.images,
                       diversity=0.5 if args.images > 1 else 0.0, steps=args.steps)
    grid = image_grid(result.images, cols=min(4, args.images))
    scale = max(1, 224 // result.images.shape[-1])
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST).save(args.out)
    line = f"{target.label(card.dataset.class_names)}: activation {float(np.max(result.activations)):.4f} " \
           f"in {result.seconds:.1f} s, written to {args.out}"
    try:
        images, what = search_images(card, args.data_dir)
        best = activation(model, card, target, images)
        line += f"; the most exciting of {what}: {float(best.max()):.4f} (image {int(best.argmax())})"
    except DataError as exc:
        line += f"; no test images to compare with ({exc})"
    print(line)
