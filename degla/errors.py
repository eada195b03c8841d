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


_RANGES = {"> 0": lambda v: v > 0, ">= 0": lambda v: v >= 0, ">= 1": lambda v: v >= 1,
           "in [0, 1)": lambda v: 0 <= v < 1}


def check_ranges(args, **ranges: str) -> None:
    """In an arguments dataclass's `__post_init__` (as trl's configs check theirs): raise one `InputError` naming
    the first option whose value lies outside its range, e.g. `check_ranges(self, learning_rate="> 0")` →
    `--learning_rate -1.0: must be > 0`. Ranges: '> 0', '>= 0', '>= 1', 'in [0, 1)'; unset (None) options pass."""
    for name, allowed in ranges.items():
        value = getattr(args, name)
        if value is not None and not _RANGES[allowed](value):
            raise InputError(f"--{name} {value}: must be {allowed}")
