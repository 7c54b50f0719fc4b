"""The one error a user can act on: `ProjectError`, and the settings error every entry point raises.

Every failure that comes from what a user gave (a file, a value, a data set, a checkpoint) is a
`ProjectError` (the data layer's `DataError`, the checkpoint's `CheckpointError`, an upload's
`ModelFileError`, a refused setting's `SettingsError`), whose message names the thing and the problem
in words. The command line prints `error: MESSAGE` and exits 2 for these, and only these: anything
else is a bug in CNN Studio and keeps its traceback. Pages show the message.
"""
from __future__ import annotations


class ProjectError(Exception):
    """Something the user gave cannot be used; the message says what and what would work."""


class SettingsError(ProjectError, ValueError):
    """A setting (a flag, a form field, a recipe value) that no run can use."""
