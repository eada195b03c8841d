"""Shared pieces of the tasks: results container, metric loading, JSON reading with clear errors."""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field

import evaluate
import torch

logger = logging.getLogger("degla.eval")

METRICS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "metrics")


@dataclass
class TaskResult:
    """Scores of one task (subset -> percent, 0-100) and the bookkeeping printed and written beside them.

    `counts[subset] = {"scored": n, "skipped": m, "skip_reasons": {reason: k}}`.
    """

    scores: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # subset not run -> why (e.g. missing option)
    details: dict = field(default_factory=dict)

    def count(self, subset: str, scored: int, skip_reasons: dict[str, int] | None = None):
        skip_reasons = {k: v for k, v in (skip_reasons or {}).items() if v}
        self.counts[subset] = {"scored": scored, "skipped": sum(skip_reasons.values()), "skip_reasons": skip_reasons}

    def summary_lines(self, task: str) -> list[str]:
        lines = []
        for subset, c in self.counts.items():
            why = ", ".join(f"{k}: {v}" for k, v in c["skip_reasons"].items())
            lines.append(f"[{task}] {subset}: scored {c['scored']}, skipped {c['skipped']}" + (f" ({why})" if why else ""))
        for subset, why in self.skipped.items():
            lines.append(f"[{task}] {subset}: not run ({why})")
        return lines


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


def paired_scores(image_feats: torch.Tensor, text_feats: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of already-normalised features: [N, D] x [N, D] -> [N]."""
    return (image_feats * text_feats).sum(-1)


def percent(x: float) -> float:
    return round(100.0 * x, 2)
