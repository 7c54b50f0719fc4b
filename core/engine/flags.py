"""A recipe on the command line: its flags, generated from its fields, and the one command that rebuilds it.

Every setting of a recipe class is a flag, nested settings flattened (`TrainConfig.lr` of the classifier is
`--lr`, `AugmentConfig.translate` is `--translate`): typed from its default, with the class's `choices`,
its `flags` spelling where one is given (`--lambda`), `--no-NAME` for a setting that is on by default,
comma-separated values for a tuple, `--model-option KEY=VALUE` (JSON values) for a dict, and the comment
on the field's default as its help. `--recipe NAME` starts from one of the class's named recipes. Parsing
keeps only the flags given (`argparse.SUPPRESS`), so `recipe_from_args` applies them on top of the starting
recipe. `recipe_command` is the one replay-command builder: the verb and a flag for every setting that
differs from the kind's default, so the command rebuilds the run. `--lr-at STEP:LR` replays a learning rate
changed by hand (`RunControl`).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from core.errors import SettingsError


@dataclass(frozen=True)
class Leaf:
    path: str  # dotted path from the recipe, e.g. "config.lr"
    name: str  # the field's own name, e.g. "lr"
    owner: type  # the dataclass that declares it
    default: Any  # its value in the kind's default recipe


def leaves(cls: type) -> list[Leaf]:
    """The settings of recipe class `cls`, nested dataclasses flattened, in declaration order."""
    def walk(obj, prefix: str) -> list[Leaf]:
        found = []
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                found += walk(value, f"{prefix}{f.name}.")
            else:
                found.append(Leaf(prefix + f.name, f.name, type(obj), value))
        return found
    return walk(cls(), "")


@functools.cache
def _comments(owner: type) -> dict[str, str]:
    """field name -> the comment on its default in the class's source (the flag's help)."""
    try:
        source = inspect.getsource(owner)
    except (OSError, TypeError):
        return {}
    return {m[1]: m[2].strip() for m in re.finditer(r"^\s+(\w+): [^#\n]*?#\s*(.+)$", source, re.M)}


def flag_of(cls: type, leaf: Leaf) -> str:
    spelled = cls.flags.get(leaf.path) or cls.flags.get(leaf.name)
    if spelled:
        return spelled
    return ("--no-" if leaf.default is True else "--") + leaf.name.replace("_", "-")


def model_options(items: list[str]) -> dict:
    """["widths=[48,96,192]", "dropout=0.1"] -> {"widths": [48, 96, 192], "dropout": 0.1} (JSON where it parses)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingsError(f"--model-option expects KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value  # a word
        except RecursionError:
            raise SettingsError(f"--model-option {key[:40]}: its value is nested too deeply; options are numbers, "
                                "words or short lists of them.") from None
    return options


def add_recipe_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per setting of recipe class `cls` (see the module docstring), and --recipe for its named ones."""
    if named := cls.named():
        parser.add_argument("--recipe", choices=sorted(named), default=argparse.SUPPRESS,
                            help="start from a named recipe (flags still override)")
    for leaf in leaves(cls):
        if leaf.path in cls.no_flag:
            continue
        flag, text = flag_of(cls, leaf), _comments(leaf.owner).get(leaf.name, "").replace("%", "%%") or None
        common = {"dest": leaf.path, "default": argparse.SUPPRESS, "help": text}
        allowed = getattr(leaf.owner, "choices", {}).get(leaf.name)
        if isinstance(leaf.default, bool):
            if leaf.default and text:
                common["help"] = f"switch off: {text}"
            parser.add_argument(flag, action="store_false" if leaf.default else "store_true", **common)
        elif isinstance(leaf.default, dict):
            parser.add_argument(flag, action="append", metavar="KEY=VALUE", **common)
        elif isinstance(leaf.default, (list, tuple)):
            item = type(leaf.default[0]) if leaf.default else int
            parser.add_argument(flag, metavar="A,B,...", type=functools.partial(_numbers, item=item), **common)
        elif leaf.default is None or isinstance(leaf.default, str):
            parser.add_argument(flag, choices=allowed() if callable(allowed) else allowed, metavar=None if allowed
                                else leaf.name.upper(), **common)
        else:
            parser.add_argument(flag, type=type(leaf.default), metavar=leaf.name.upper(), **common)


def _numbers(text: str, item: type) -> tuple:
    try:
        return tuple(item(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {item.__name__} values separated by commas, got {text!r}") from None


def recipe_from_args(cls: type, args: argparse.Namespace):
    """The recipe the parsed flags describe: the named recipe (or the kind's default) with the given flags on top."""
    from core.engine.settings import with_settings

    given = vars(args)
    base = cls.named()[given["recipe"]] if "recipe" in given else cls()
    values = {}
    for leaf in leaves(cls):
        if leaf.path not in given:
            continue
        if isinstance(leaf.default, dict):
            values.update({f"{leaf.path}.{k}": v for k, v in model_options(given[leaf.path]).items()})
        else:
            values[leaf.path] = given[leaf.path]
    return with_settings(base, values)


def flag_args(recipe, base=None) -> list[str]:
    """Flags for every setting of `recipe` that differs from `base` (default: its kind's default recipe)."""
    cls, args = type(recipe), []
    for leaf in leaves(cls):
        value = _value(recipe, leaf.path)
        said = base is None and leaf.path in cls.always  # what the run is, written even when it is the default
        if leaf.path in cls.no_flag or (value == (leaf.default if base is None else _value(base, leaf.path))
                                        and not said):
            continue
        flag = flag_of(cls, leaf)
        if isinstance(value, bool):
            args.append(flag)
        elif isinstance(value, dict):
            args += [a for k, v in value.items() for a in (flag, f"{k}={json.dumps(v, separators=(',', ':'))}")]
        else:
            text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            args += [f"{flag}={text}"] if text.startswith("-") else [flag, text]  # "-6,4" is no option
    return args


def _value(recipe, path: str):
    for part in path.split("."):
        recipe = getattr(recipe, part)
    return recipe


def recipe_command(recipe, out, named: str | None = None) -> str:
    """`python -m core VERB [--recipe NAME] --flags --out OUT`: the command recorded in the card, which rebuilds the
    run; with `named`, the flags are those that differ from that named recipe."""
    base = type(recipe).named()[named] if named else None
    start = ["--recipe", named] if named else []
    return f"python -m core {recipe.verb} " + shlex.join(start + flag_args(recipe, base) + ["--out", str(out)])


def lr_change(text: str) -> tuple[int, float]:
    """`STEP:LR` (an --lr-at value) as (steps, learning rate)."""
    step, _, lr = text.partition(":")
    try:
        change = int(step), float(lr)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEP:LR such as 120:0.001, got {text!r}") from None
    if change[0] < 0 or not 0 < change[1] < float("inf"):
        raise argparse.ArgumentTypeError(f"STEP must be >= 0 and LR a positive number, got {text!r}")
    return change


def lr_flags(changes) -> str:
    """` --lr-at STEP:LR ...`: the learning-rate changes a command must make to replay a run (see RunControl)."""
    return "".join(f" --lr-at {int(step)}:{float(lr)!r}" for step, lr in changes)


def add_train_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """A train verb's whole parser: the recipe's flags, --lr-at, --out and --resume."""
    add_recipe_flags(parser, cls)
    parser.add_argument("--lr-at", type=lr_change, action="append", default=[], metavar="STEP:LR",
                        help="after STEP optimizer steps, continue at the constant learning rate LR (the schedule "
                             "stops); repeatable. Model cards record a rate changed by hand this way.")
    parser.add_argument("--out", required=True, help="checkpoint folder to write (a complete one after every epoch)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run in --out from its last finished epoch (same flags)")


def recipe_from_command(cls: type, command: str):
    """The `cls` recipe a recorded `python -m core VERB ...` command of its own verb describes, read by today's
    flags without running anything; ValueError when it is another verb's or does not parse."""
    words = shlex.split(command or "")
    if words[:3] != ["python", "-m", "core"] or words[3:4] != [cls.verb]:
        raise ValueError(f"not a `python -m core {cls.verb}` command: {str(command)[:80]!r}")
    parser = raising(argparse.ArgumentParser(prog=f"python -m core {cls.verb}"))
    add_train_flags(parser, cls)
    return recipe_from_args(cls, parser.parse_args(words[4:]))


def raising(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`parser`, raising ValueError with its message where it would print and exit: for a command that is read
    (a model card's), not run."""
    def refuse(message=None, *_):
        raise ValueError(message or "bad arguments")
    parser.error, parser.exit = refuse, (lambda status=0, message=None: refuse(message))
    return parser
