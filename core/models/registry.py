"""The model registry: a name -> builder table, so pages, the CLI and checkpoints pick models by name.

Owns registration, construction and parameter counting. Every builder takes keyword-only
`in_channels`, `image_size` and `num_classes` (plus its own options) and returns an `nn.Module`;
`build_model` records the exact arguments on the module as `model.spec` so a checkpoint can rebuild it.
Does not own any architecture: those live in sibling modules that register themselves.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    defaults: dict = field(default_factory=dict)  # preset keyword arguments, e.g. a tuned variant's widths
    kind: str = "classifier"  # classifier | autoencoder
    input_stats: bool = False  # the builder takes the data set's data_mean / data_std (a pretrained network
    # that must undo the data set's normalisation to apply its own)
    any_size: bool = False  # resizes its input itself: it takes images of any size, whatever its image_size


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, description: str, kind: str = "classifier", input_stats: bool = False,
                   any_size: bool = False, **defaults) -> Callable:
    """Decorator: register `builder(*, in_channels, image_size, num_classes, **options)` under `name`.

    Autoencoders (kind="autoencoder") take no num_classes.
    """

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = ModelEntry(name, builder, description, defaults, kind, input_stats, any_size)
        return builder

    return wrap


def list_models(kind: str = "classifier") -> dict[str, str]:
    """Registered model names of one kind with a one-line description."""
    return {name: entry.description for name, entry in _MODELS.items() if entry.kind == kind}


def resizes_input(name: str) -> bool:
    """Whether registered model `name` resizes its input itself (so a card's image size may differ from its own)."""
    return name in _MODELS and _MODELS[name].any_size


def build_model(name: str, *, in_channels: int, image_size: int, num_classes: int | None = None,
                stats: tuple | None = None, seed: int | None = None, **options) -> nn.Module:
    """Build a registered model; `model.spec` holds {"name", "kwargs"} to rebuild it exactly.

    `stats` = (mean, std) of the training data, passed on only to models registered with input_stats.
    `seed` makes the initial weights a function of the seed alone (the global RNG is left as it was), so
    two runs with the same seed start from the same weights.
    """
    if name not in _MODELS:
        raise KeyError(f"Unknown model {name!r}. Known models: {', '.join(sorted(_MODELS))}.")
    entry = _MODELS[name]
    kwargs = {**entry.defaults, **options, "in_channels": in_channels, "image_size": image_size}
    if entry.input_stats and stats is not None:
        kwargs["data_mean"], kwargs["data_std"] = [float(v) for v in stats[0]], [float(v) for v in stats[1]]
    if entry.kind == "classifier":
        if num_classes is None:
            raise TypeError(f"model {name!r} needs num_classes")
        kwargs["num_classes"] = num_classes
    if seed is None:
        model = entry.builder(**kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(**kwargs)
    model.spec = {"name": name, "kwargs": _jsonable(kwargs)}
    return model


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Within the block `model` is in eval mode (dropout off, batch norm on its running statistics); the mode it
    had is restored afterwards, even when the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


TRAINING_BUDGET = 8 * 2**30  # bytes a training run may be estimated to need (weights, gradients, optimizer, a batch)
UPLOAD_BUDGET = 2 * 2**30  # bytes an uploaded model's weights may take
RESERVED = ("in_channels", "image_size", "num_classes", "stats", "seed", "data_mean", "data_std")  # set by CNN Studio


def check_options(name: str, options: dict) -> None:
    """Refuse (ValueError in words) options model `name` does not take, that CNN Studio sets itself, or that are not
    plain JSON values of a few levels."""
    import inspect

    if name not in _MODELS:
        raise KeyError(f"Unknown model {name!r}. Known models: {', '.join(sorted(_MODELS))}.")
    entry = _MODELS[name]
    params = inspect.signature(entry.builder).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = sorted(p for p in params if p not in RESERVED and params[p].kind is inspect.Parameter.KEYWORD_ONLY)
    for key, value in options.items():
        if key in RESERVED:
            raise ValueError(f"model option {key!r} is set by CNN Studio from the data set; leave it out.")
        if key not in params and not takes_any:
            raise ValueError(f"model {name} has no option {key[:40]!r}; its options: {', '.join(known) or 'none'}.")
        if _depth(value) > 4:
            raise ValueError(f"model option {key!r} is nested {_depth(value)} levels deep; options are numbers, words "
                             "or short lists of them.")


def _depth(value) -> int:
    stack, deepest = [(value, 1)], 0
    while stack:  # iterative: a hostile value must not exhaust the interpreter's recursion
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > 64:
            break
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, (list, tuple)):
            stack += [(v, depth + 1) for v in item]
    return deepest


def weights_bytes(name: str, **kwargs) -> int | None:
    """The bytes of model `name`'s weights (float32) for these constructor arguments, found on the meta device
    without allocating them; None for a pretrained network (its weights are a package's)."""
    if name not in _MODELS or _MODELS[name].input_stats:
        return None
    with torch.device("meta"):
        return 4 * count_parameters(build_model(name, **kwargs))


def training_bytes(name: str, *, in_channels: int, image_size: int, num_classes: int | None = None,
                   batch_size: int = 1, **options) -> int | None:
    """An estimate of the memory training model `name` needs, found without allocating it: the model is built on
    PyTorch's meta device (shapes only), its parameters counted four times (weights, gradients, two optimizer
    moments) and one batch's layer outputs twice (kept for the backward pass). None when the model cannot be
    built that way (a pretrained network reading its weights); TypeError/ValueError for options it refuses."""
    if _MODELS[name].input_stats if name in _MODELS else False:
        return None  # a pretrained backbone: frozen, its features cached; its weights are a package's
    with torch.device("meta"):
        try:
            model = build_model(name, in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                                **options)
        except (TypeError, ValueError, KeyError):
            raise
        except Exception:  # noqa: BLE001 - e.g. a pretrained network that reads its weights while it is built
            return None
        outputs = []
        hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.numel() if isinstance(o, torch.Tensor)
                                                                          else 0))
                 for m in model.modules() if not list(m.children())]
        try:
            with torch.no_grad():
                model(torch.empty(batch_size, in_channels, image_size, image_size))
        except Exception:  # noqa: BLE001 - a forward the meta device cannot run: count the weights alone
            outputs = []
        finally:
            for h in hooks:
                h.remove()
    return 4 * 4 * count_parameters(model) + 2 * 4 * sum(outputs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_count(name: str, *, in_channels: int, image_size: int, num_classes: int, **options) -> int:
    """Parameter count of a registered model for the given input, without keeping the model."""
    return count_parameters(build_model(name, in_channels=in_channels, image_size=image_size,
                                        num_classes=num_classes, **options))


def flat_features(module: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features `module` produces for one input image, found by a dry run."""
    with torch.no_grad():
        return int(module(torch.zeros(1, in_channels, image_size, image_size)).flatten(1).shape[1])


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
