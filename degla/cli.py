"""One entry-point pattern for every stage of the pipeline (training, negative generation, evaluation, ...).

A stage is its argument dataclasses, a `run_<stage>(*arguments)` function in the package, and the arguments of
its embedded default (what the script does when run without arguments). A script is three lines:

    from degla.cli import main
    from degla.training import TRAINING
    main(TRAINING)

and takes its options on the command line, from a `--config` JSON or YAML file (command-line options override
the file's), or neither (the embedded default, announced on the console).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from transformers import HfArgumentParser

from .errors import InputError, MissingPathError

CONFIG_FLAG = "--config"


@dataclass(frozen=True)
class Stage:
    """A stage as its script runs it."""

    name: str
    argument_types: tuple[type, ...]
    run: Callable[..., Any]
    embedded_default: Callable[[], list[str]] | None = None
    description: str = ""

    def parser(self) -> HfArgumentParser:
        epilog = (f"{CONFIG_FLAG} FILE reads options from a JSON or YAML mapping of option names to values; "
                  "options given on the command line override it."
                  + (" Without any argument the script runs its embedded default." if self.embedded_default else ""))
        return HfArgumentParser(self.argument_types, description=self.description, epilog=epilog)


def options_argv(options: dict) -> list[str]:
    """A mapping of option names to values as command-line arguments (`{"lr": 1e-6, "tags": ["a", "b"]}` →
    `--lr 1e-06 --tags a b`); booleans as true/false, dicts as JSON, None values left out."""
    argv = []
    for name, value in options.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        argv.append(f"--{name}")
        argv.extend(json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v)
                    for v in values)
    return argv


def config_file_argv(path: str) -> list[str]:
    """The options of a JSON/YAML config file as command-line arguments (`{"lr": 1e-6}` → `--lr 1e-06`)."""
    if not os.path.isfile(path):
        raise MissingPathError(f"{CONFIG_FLAG} {path}: no such file")
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            import yaml

            options = yaml.safe_load(f)
        else:
            options = json.load(f)
    if not isinstance(options, dict):
        raise InputError(f"{CONFIG_FLAG} {path}: expected a mapping of option names to values")
    return options_argv(options)


def expand_config(argv: list[str]) -> list[str]:
    """Replace `--config FILE` by the file's options, placed first so that the command line overrides them."""
    if CONFIG_FLAG not in argv:
        return argv
    at = argv.index(CONFIG_FLAG)
    if at + 1 >= len(argv):
        raise InputError(f"{CONFIG_FLAG} needs a file name")
    return config_file_argv(argv[at + 1]) + argv[:at] + argv[at + 2:]


def parse_stage_arguments(stage: Stage, argv: list[str]) -> tuple:
    """The stage's argument dataclasses from `argv` (or from its embedded default when `argv` is empty)."""
    if not argv and stage.embedded_default is not None:
        argv = stage.embedded_default()
        print(f"No arguments: running the embedded default of {stage.name} (--help lists the options)", flush=True)
    return stage.parser().parse_args_into_dataclasses(expand_config(argv))


def run(stage: Stage, argv: list[str]):
    """Parse `argv` (or take the embedded default when it is empty) and run the stage; errors propagate."""
    return stage.run(*parse_stage_arguments(stage, argv))


def main(stage: Stage, argv: list[str] | None = None):
    """A script's entry point: `run` on the command line; input errors become one `error: ...` line on stderr
    and exit status 1 (bugs keep their traceback)."""
    try:
        return run(stage, sys.argv[1:] if argv is None else argv)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
