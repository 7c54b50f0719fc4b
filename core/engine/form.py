"""The Trainer's settings form as data: which widget sets which setting of a recipe.

A form is a list of `Field`s that a recipe class gives (`Recipe.form_fields`); the page draws each one
(`pages/_training.py`) and hands the values back to the recipe's `apply_form`, each under the field's
`setting`: the dotted path of the setting it sets (`config.lr`), or a key the recipe computes settings from. Kinds with no
form of their own get one field per setting, typed from the current value (`recipe_fields`). Pure data, no
Streamlit, so the mapping is tested without a browser.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.errors import SettingsError


@dataclass(frozen=True)
class Field:
    key: str  # the widget key's suffix
    label: str
    widget: str  # select | select_slider | int | float | slider | toggle | text | numbers
    value: object  # the starting value
    low: float | None = None
    high: float | None = None
    options: tuple = ()  # select / select_slider choices
    help: str | None = None
    disabled: bool = False
    path: str | None = None  # the setting it sets (a dotted path such as config.lr); None: the key itself

    @property
    def setting(self) -> str:
        """What the value comes back to `apply_form` under: the setting's path (or a key the recipe reads)."""
        return self.path or self.key


def recipe_fields(base, hidden: tuple = ()) -> list[Field]:
    """One field per top-level setting of `base` not in `hidden`, typed from its value (the class's limits and
    choices, where it has them, bound the widgets)."""
    fields = []
    limits, choices = getattr(base, "limits", {}), getattr(base, "choices", {})
    for f in dataclasses.fields(base):
        value, label = getattr(base, f.name), f.name.replace("_", " ")
        if f.name in hidden or dataclasses.is_dataclass(value) or isinstance(value, dict):
            continue
        allowed = choices.get(f.name)
        low, high = limits.get(f.name) if isinstance(limits.get(f.name), tuple) else (0, None)
        if allowed is not None:
            fields.append(Field(f.name, label, "select", value, options=tuple(allowed() if callable(allowed) else allowed)))
        elif isinstance(value, bool):
            fields.append(Field(f.name, label, "toggle", value))
        elif isinstance(value, int):
            fields.append(Field(f.name, label, "int", value, low, high if high is not None else 10_000_000))
        elif isinstance(value, float):
            fields.append(Field(f.name, label, "float", value, float(low), float(high if high is not None else 1000.0)))
        elif isinstance(value, tuple):
            fields.append(Field(f.name, label + " (comma separated)", "numbers", value))
        else:
            fields.append(Field(f.name, label, "text", value))
    return fields


def parse_numbers(text: str, like: tuple) -> tuple:
    """'8,16,32' -> (8, 16, 32), typed like the default's items; SettingsError with an example otherwise."""
    kind = type(like[0]) if like else int
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SettingsError(f"numbers separated by commas, e.g. {','.join(map(str, like)) or '8,16,32'}") from None
