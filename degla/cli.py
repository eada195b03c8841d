"""One entry-point pattern for every stage of the pipeline (training, negative generation, evaluation, ...).

A stage is its argument dataclasses and a `run_<stage>(*arguments)` function in its package; it knows no data of
its own. A script wires it to its embedded default (`degla.demo`, the only code that knows the demo's data):

    from degla import demo
    from degla.cli import main
    from degla.training import TRAINING
    main(TRAINING.with_default(demo.TRAINING))

and takes its options on the command line, from a `--config` JSON or YAML file (command-line options override
the file's), or both. The embedded default is the default of the data options: when none of them is given
(`--train_file`, `--captions`, any evaluation data option), the run starts from the default's options and the
command line applies over them, announced on the console with every option it filled in. A run that names its
data never gets the default. The default's own output folder is the default's: when the run did not name
`--output_dir`, an earlier run there is replaced (said on the console), unless the run resumes it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import logging
import os
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

from transformers import HfArgumentParser

from .errors import InputError, MissingPathError

CONFIG_FLAG = "--config"


@dataclass(frozen=True)
class EmbeddedDefault:
    """What a script runs when its command line names none of the stage's data options.

    `options()` (called only then: it may build the default's data once) maps option names to values; the
    command line applies over them. With no `data_options` the default always applies (a stage without data).
    When the run leaves `--output_dir` to the default and that folder already holds files, `replace_option` (the
    stage's own overwrite flag) is set, unless one of `resume_options` is given (then the run continues there)."""

    description: str
    options: Callable[[], dict]
    data_options: tuple[str, ...] = ()
    replace_option: str | None = None
    resume_options: tuple[str, ...] = ()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default once: not where its help already states one, nor for an unset (None or empty) default;
    lists as they are typed (`0.9 1.0`); a negated flag (`--no_x`) has its own line; each option under its one
    spelling (`--a_b`; `--a-b` is accepted too)."""

    def _format_action_invocation(self, action):
        spellings = [o for o in action.option_strings if "-" not in o.lstrip("-")] or action.option_strings
        return super()._format_action_invocation(_with_options(action, spellings))

    def _get_help_string(self, action):
        text = action.help or ""
        if any(o.startswith("--no_") for o in action.option_strings):
            return f"Sets --{action.dest} to false."
        default = action.default
        if ("(default" in text.lower() or "default:" in text.lower() or default in (None, argparse.SUPPRESS, "", [])
                or not action.option_strings or action.nargs == 0):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


@dataclass(frozen=True)
class Stage:
    """A stage as its script runs it.

    `run` is the function, or its name `"package.module:function"`, imported only when the stage runs (so that
    `--help` and an option error import none of its code). `help_groups` lists the headings of `--help` in order,
    each with its option names (`"*"`: every option no heading names); options of no heading stay under `options`.
    """

    name: str
    argument_types: tuple[type, ...]
    run: Callable[..., Any] | str
    embedded_default: EmbeddedDefault | None = None
    description: str = ""
    help_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def with_default(self, default: EmbeddedDefault) -> Stage:
        """This stage with `default` as the default of its data options (wired by the script)."""
        return dataclasses.replace(self, embedded_default=default)

    def run_function(self) -> Callable[..., Any]:
        if callable(self.run):
            return self.run
        module, name = self.run.split(":")
        return getattr(importlib.import_module(module), name)

    def parser(self, add_help: bool = True) -> HfArgumentParser:
        epilog = (f"{CONFIG_FLAG} FILE reads options from a JSON or YAML mapping of option names to values; "
                  "options given on the command line override it.")
        description = self.description
        default = self.embedded_default
        if default is not None:
            given = f"without any data option ({_listed(default.data_options)}) " if default.data_options else ""
            epilog += (f" Run {given}it starts from its embedded default ({default.description}); the options given "
                       "apply over it.")
            if default.data_options:
                description += (" The defaults shown are those of a run that names its data; a run without any data "
                                "option starts from the embedded default, which sets its own values and prints them.")
        parser = HfArgumentParser(self.argument_types, description=description, epilog=epilog, add_help=add_help,
                                  formatter_class=HelpFormatter, usage=f"%(prog)s [{CONFIG_FLAG} FILE] [options]")
        _group_options(parser, self.help_groups)
        return parser


def _with_options(action: argparse.Action, option_strings: list[str]) -> argparse.Action:
    shown = copy.copy(action)
    shown.option_strings = option_strings
    return shown


def _group_options(parser: argparse.ArgumentParser, groups) -> None:
    """Move the options under the headings of `groups` (only how --help shows them: parsing is unchanged)."""
    if not groups:
        return
    existing = list(parser._action_groups)
    headings = [(parser.add_argument_group(title), set(names)) for title, names in groups]
    listed = set().union(*(names for _, names in groups))
    for old in existing:
        for action in list(old._group_actions):
            heading = next((group for group, names in headings if action.dest in names
                            or ("*" in names and action.dest not in listed and action.dest != "help")), None)
            if heading is not None:
                old._group_actions.remove(action)
                heading._group_actions.append(action)


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


def _listed(options) -> str:
    names = [f"--{name}" for name in options]
    return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")


def given_options(stage: Stage, argv: list[str]) -> set[str]:
    """The option names (dataclass fields) that `argv` sets, however spelt (`--a_b`, `--a-b`, `--no_a`, `--a=1`)."""
    probe = stage.parser(add_help=False)
    for action in probe._actions:
        action.default = argparse.SUPPRESS  # only what argv sets lands in the namespace
        action.required = False
    probe._defaults.clear()
    namespace, _ = probe.parse_known_args(argv)
    return set(vars(namespace))


def _shown(text: str) -> str:
    """`text` with the working directory left out of paths and the home folder written `~`."""
    return text.replace(os.getcwd() + os.sep, "").replace(os.path.expanduser("~"), "~")


def _holds_files(folder: str) -> bool:
    return os.path.isdir(folder) and any(os.scandir(folder))


def apply_embedded_default(stage: Stage, argv: list[str]) -> list[str]:
    """`argv` over the stage's embedded default, when it names none of the data options (said on the console,
    with every option filled in); `argv` unchanged otherwise."""
    default = stage.embedded_default
    if default is None or {"-h", "--help"} & set(argv):
        return argv
    given = given_options(stage, argv)
    if given & set(default.data_options):
        return argv
    filled = {name: value for name, value in default.options().items() if name not in given}
    output_dir = filled.get("output_dir")
    replacing = (output_dir is not None and default.replace_option is not None and _holds_files(output_dir)
                 and default.replace_option not in given and not given & set(default.resume_options))
    if replacing:
        filled[default.replace_option] = True
    if not filled:
        return argv
    why = f"No data option ({_listed(default.data_options)}) given: " if default.data_options else ""
    lines = [f"{why}{stage.name} starts from its embedded default, {default.description}; the options given apply "
             "over it (--help lists them). Filled in:"]
    lines += textwrap.wrap(_shown(" ".join(options_argv(filled))), 116, initial_indent="  ", subsequent_indent="    ",
                           break_on_hyphens=False, break_long_words=False)
    if replacing:
        keep = "; --output_dir DIR keeps a run"
        resume = "".join(f", --{name} continues one" for name in default.resume_options)
        lines.append(f"{_shown(output_dir)} is the embedded default's own folder and holds an earlier run: replacing "
                     f"it{keep}{resume}")
    print("\n".join(lines), flush=True)
    return options_argv(filled) + argv


def parse_stage_arguments(stage: Stage, argv: list[str]) -> tuple:
    """The stage's argument dataclasses from `argv` (with a `--config` file's options under it, and the embedded
    default's under both when they name none of the stage's data options)."""
    argv = apply_embedded_default(stage, expand_config(argv))
    try:
        return stage.parser().parse_args_into_dataclasses(argv)
    except InputError:
        raise
    except ValueError as err:  # an option refused by an arguments dataclass that is not ours (TrainingArguments)
        raise InputError(" ".join(str(err).split())) from err


def run(stage: Stage, argv: list[str]):
    """Parse `argv` (over the stage's embedded default where it applies) and run the stage; errors propagate."""
    arguments = parse_stage_arguments(stage, argv)  # first: --help and option errors import nothing more
    return stage.run_function()(*arguments)


def main(stage: Stage, argv: list[str] | None = None):
    """A script's entry point: `run` on the command line; input errors become one `error: ...` line on stderr
    and exit status 1 (bugs keep their traceback)."""
    logging.getLogger("huggingface_hub").propagate = False  # it has its own handler: a run's root one doubled it
    try:
        return run(stage, sys.argv[1:] if argv is None else argv)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
