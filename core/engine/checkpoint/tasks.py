"""The tasks model cards may have: each model kind registers its task (`register_task`, called by
`core.engine.recipe.register_recipe`) with its headline metrics, the extra sections its cards carry, its own card
rules and how its commands were spelled by older versions. `core.engine.checkpoint.card` validates a card against
them; nothing here names a task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class TaskRules:
    headlines: list  # [(metrics key path, words for a reader, higher is better)]: the first present is used
    sections: dict  # extra top-level card fields of the task: name -> JSON type
    check: Callable[[object, str], None]  # the task's own rules on a ModelCard (CheckpointError naming the field)


TASKS: dict[str, TaskRules] = {}  # filled by the model kinds (core.engine.recipe.register_recipe)
LEGACY_COMMANDS: dict[str, str] = {}  # how the first version's CLIs were spelled -> today's `python -m core VERB`


def register_task(task: str, *, headlines: list, sections: dict, check: Callable, legacy: dict) -> None:
    TASKS[task] = TaskRules(list(headlines), dict(sections), check)
    LEGACY_COMMANDS.update(legacy)
