"""The command line's verbs besides training: each kind registers the verbs it owns (`probe`, `sweep-lambda`,
`imagenet-card`, ...) here, and `core.cli` lists and runs them with the train verbs of every kind, naming none.

A verb is a name, one line of help, a function that adds its arguments to an argparse parser and a function
that runs it with the parsed arguments (returning the exit status, or None for 0). Errors follow the CLI's
one policy: a `core.errors.ProjectError` is the user's and becomes `error: ...` with exit status 2.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    more: bool = False  # takes flags its arguments do not list (a recipe's, parsed by the verb): args.more


VERBS: dict[str, Verb] = {}


def register_verb(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
                  more: bool = False):
    """Decorator: `run(args)` is the verb `name` of `python -m core`; `arguments(parser)` adds its flags; with
    `more`, the flags it does not know reach it as the list `args.more`."""
    def wrap(run: Callable[[argparse.Namespace], int | None]):
        VERBS[name] = Verb(name, help, arguments, run, more)
        return run
    return wrap
