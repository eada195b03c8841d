"""Shared pieces of the tasks: the task description (`EvalTask`, `Table`), the results container, metric loading,
JSON reading and data checks with clear errors, multiple-choice scoring."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import evaluate
import numpy as np
import torch

from ...errors import InputError

logger = logging.getLogger("degla.eval")

METRICS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "metrics")


class EvalDataError(InputError):
    """A requested evaluation cannot run with the data it was given; the message names the option to fix."""


@dataclass(frozen=True)
class Table:
    """The results table of a task (one row per model): `columns` are (header, result key) pairs.

    `only_present`: drop the columns that no run has (datasets chosen at run time). `extra_columns`: add result
    keys that are not columns (e.g. a local zero-shot dataset), before a trailing `avg` column.
    """

    title: str
    columns: tuple[tuple[str, str], ...]
    only_present: bool = False
    extra_columns: bool = False


@dataclass(frozen=True)
class EvalTask:
    """One benchmark of the harness. Each module of `degla.eval.tasks` that defines `TASK = EvalTask(...)` is a task:
    the task list, `--tasks` help, the harness and the results tables are all read from these.

    Args:
        name: the `--tasks` name and the key of its scores in results.json.
        description: one line for `--help`.
        run: `run(encoder, data: EvalDataConfig, seed: int) -> TaskResult`.
        check: `check(data) -> bool`, called for every task before any model is loaded: `False` when none of the
            task's data options is given; raises `EvalDataError` naming the option when data is given but
            unusable (a path that does not exist, a missing companion option or requirement).
        table: its results table (title and columns).
        order: position among the tasks (the paper's table order): tasks run and tables print in this order.
        data_options: the `EvalDataConfig` fields that give the task its data (named in `--help` and errors).
        suite: the task's headline column(s) in the field-suite table, (header, result key) pairs; a task with
            one is a compositional benchmark, run by `--tasks compositional`.
    """

    name: str
    description: str
    run: Callable[..., TaskResult]
    check: Callable[..., bool]
    table: Table
    order: int
    data_options: tuple[str, ...]
    suite: tuple[tuple[str, str], ...] = ()


def check_path(path: str | None, option: str, kind: str = "folder") -> bool:
    """False when the option is not given; raises `EvalDataError` when it names a missing folder or file."""
    if not path:
        return False
    exists = os.path.isdir(path) if kind == "folder" else os.path.isfile(path)
    if not exists:
        raise EvalDataError(f"--{option}: {kind} not found: {path}")
    return True


def check_annotation_folder(folder: str | None, option: str, names, benchmark: str) -> bool:
    """False when the option is not given; raises `EvalDataError` when the folder is missing or holds none of the
    benchmark's `<name>.json` files."""
    if not check_path(folder, option):
        return False
    if not any(os.path.exists(os.path.join(folder, f"{name}.json")) for name in names):
        raise EvalDataError(f"--{option} {folder} holds none of the {benchmark} files "
                            f"({', '.join(f'{n}.json' for n in names)})")
    return True


@dataclass
class TaskResult:
    """Scores of one task (subset -> percent, 0-100) and the bookkeeping printed and written beside them.

    `counts[subset] = {"scored": n, "skipped": m, "skip_reasons": {reason: k}}`.
    """

    scores: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # subset not run -> why (e.g. missing option)
    details: dict = field(default_factory=dict)
    # per-example outputs of multiple-choice subsets, kept in memory only (parity checks):
    # subset -> {"scores": [N, C] tensor, "labels": [N], "correct": [N] bools}
    items: dict[str, dict] = field(default_factory=dict, repr=False)

    def count(self, subset: str, scored: int, skip_reasons: dict[str, int] | None = None):
        skip_reasons = {k: v for k, v in (skip_reasons or {}).items() if v}
        self.counts[subset] = {"scored": scored, "skipped": sum(skip_reasons.values()), "skip_reasons": skip_reasons}

    def summary_lines(self, task: str) -> list[str]:
        lines = []
        for subset, c in self.counts.items():
            why = ", ".join(f"{k}: {v}" for k, v in c["skip_reasons"].items())
            lines.append(f"[{task}] {subset}: scored {c['scored']}, skipped {c['skipped']}"
                         + (f" ({why})" if why else ""))
        for subset, why in self.skipped.items():
            lines.append(f"[{task}] {subset}: not run ({why})")
        return lines


def load_subset_files(folder: str, names, load_subset: Callable, result, *args) -> dict:
    """`{name: load_subset(<folder>/<name>.json, *args)}` for each subset file present; a missing one is recorded in
    `result.skipped` (a benchmark's folder may hold only some of its files)."""
    loaded = {}
    for name in names:
        path = os.path.join(folder, f"{name}.json")
        if os.path.exists(path):
            loaded[name] = load_subset(path, *args)
        else:
            result.skipped[name] = f"{path} not found"
    return loaded


@functools.lru_cache(maxsize=None)
def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a metric module shipped in `degla/eval/metrics/<name>/` by path: nothing is fetched."""
    return evaluate.load(os.path.join(METRICS_DIR, name))


def read_json(path: str, what: str):
    """`json.load` with errors that name the file and what it should hold."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: malformed JSON in {path}: {err}") from err


def require_keys(record: dict, keys: tuple[str, ...], path: str, rid) -> None:
    if not isinstance(record, dict):
        raise ValueError(f"{path}: record {rid!r} should be an object, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"{path}: record {rid!r} lacks field(s) {missing} (expected {list(keys)})")


def candidate_scores(encoder, task: str, refs: list, candidates: list[list[str]]) -> torch.Tensor:
    """[N, C] cosine similarity of example i's image with each of its C candidate captions.

    Every distinct (image, caption) pair is scored once and its score copied to each place it occurs, so a
    candidate identical to another candidate of the same example (e.g. an ARO-Order perturbation that changed
    nothing) gets a bit-identical score: their tie is decided by the protocol's tie rule, never by float noise,
    whatever the batch size or the candidates' order. Images and texts go through the encoder in one call each
    (de-duplicated and cached there).
    """
    n = len(refs)
    width = len(candidates[0]) if n else 0
    if any(len(c) != width for c in candidates):
        raise ValueError(f"[{task}] every example needs the same number of candidate captions")
    img = encoder.encode_images(refs, task=task)
    txt = encoder.encode_texts([t for cands in candidates for t in cands], task=task)
    first: dict[tuple, int] = {}  # (image, caption) -> flat position (example * C + candidate) of its first use
    first_use = [first.setdefault((ref.key(), t), i)
                 for i, (ref, t) in enumerate((ref, t) for ref, cands in zip(refs, candidates) for t in cands)]
    scored = torch.as_tensor(list(first.values()), dtype=torch.long)
    flat = torch.zeros(n * width)
    flat[scored] = (img[scored // max(width, 1)] * txt[scored]).sum(-1)  # one score per distinct pair
    return flat[torch.as_tensor(first_use, dtype=torch.long)].view(n, width)


def ragged_scores(queries: torch.Tensor, candidates: torch.Tensor, widths: list[int]) -> list[torch.Tensor]:
    """Per query i, the cosines of its own `widths[i]` candidates (the next `widths[i]` rows of `candidates`): for
    benchmarks whose examples have different numbers of candidates."""
    out, offset = [], 0
    for query, width in zip(queries, widths):
        out.append(candidates[offset : offset + width] @ query)
        offset += width
    return out


def percent(x: float) -> float:
    return round(100.0 * x, 2)


def add_means(scores: dict[str, float], groups: dict[str, tuple[str, ...]]) -> None:
    """Add `scores[group]` = unweighted mean of its members, for every group whose members are all present,
    then `scores["avg"]` = mean of the groups when all of them are present."""
    for group, members in groups.items():
        if all(m in scores for m in members):
            scores[group] = round(float(np.mean([scores[m] for m in members])), 2)
    if all(g in scores for g in groups):
        scores["avg"] = round(float(np.mean([scores[g] for g in groups])), 2)


def pairwise_accuracies(encoder, task: str, subsets: dict[str, tuple[list, list[str], list[str]]],
                        result: TaskResult) -> None:
    """Per subset, the percent of examples with score(image, positive) > score(image, negative) (a tie is wrong),
    into `result.scores`; the per-example scores into `result.items`.

    `subsets[name] = (image refs, positive captions, negative captions)`. The images and texts of all subsets are
    encoded in one pass, so an image or caption shared by several subsets is encoded once.
    """
    refs = [r for v in subsets.values() for r in v[0]]
    scores = candidate_scores(encoder, task, refs, [[p, n] for v in subsets.values() for p, n in zip(v[1], v[2])])
    metric = load_metric("multiple_choice_accuracy")
    offset = 0
    for name, (r, _, _) in subsets.items():
        part = scores[offset : offset + len(r)]
        offset += len(r)
        out = metric.compute(scores=part.tolist(), labels=[0] * len(r), tie_break="strict", return_correct=True)
        result.scores[name] = percent(out["accuracy"])
        result.items[name] = {"scores": part, "labels": [0] * len(r), "correct": out["correct"]}
