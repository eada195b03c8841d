"""The evaluation tasks. Every module here that defines `TASK = EvalTask(...)` is a task (see `common.EvalTask`):
its `run(encoder, data, seed) -> TaskResult`, its data check, its results table and its `--help` line. The task
list, the harness, the tables and the command line are all derived from `TASKS`, so adding a benchmark is one
module here plus its data options in `degla/eval/config.py`."""

from __future__ import annotations

import importlib
import pkgutil

from .common import EvalDataError, EvalTask, Table, TaskResult


def _discover() -> dict[str, EvalTask]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        task = getattr(importlib.import_module(f"{__name__}.{info.name}"), "TASK", None)
        if isinstance(task, EvalTask):
            found.append(task)
    found.sort(key=lambda t: t.order)
    names = [t.name for t in found]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two evaluation tasks share a name: {names}")
    return {t.name: t for t in found}


TASKS: dict[str, EvalTask] = _discover()

__all__ = ["TASKS", "EvalDataError", "EvalTask", "Table", "TaskResult"]
