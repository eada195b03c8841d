"""Errors the user can fix, as opposed to bugs: each message names the file, row or option and the fix.

Scripts (`degla.cli.main`) print these as one `error: ...` line and exit with status 1; anything else is a bug
and keeps its traceback.
"""


class InputError(ValueError):
    """Input that cannot be used as given: a bad option value, file, row or field."""


class MissingPathError(InputError, FileNotFoundError):
    """A local file or folder named by an option does not exist."""


class OutputExistsError(InputError, FileExistsError):
    """The output folder already holds finished work that the run would replace."""


class ModelLoadError(InputError):
    """A model or processor named by an option cannot be loaded (offline, a mistyped Hub id, a folder without it)."""
