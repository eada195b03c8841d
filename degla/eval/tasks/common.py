"""Shared pieces of the tasks: results container, metric loading, JSON reading with clear errors."""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field

import evaluate
import numpy as np
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


def add_means(scores: dict[str, float], groups: dict[str, tuple[str, ...]]) -> None:
    """Add `scores[group]` = unweighted mean of its members, for every group whose members are all present,
    then `scores["avg"]` = mean of the groups when all of them are present."""
    for group, members in groups.items():
        if all(m in scores for m in members):
            scores[group] = round(float(np.mean([scores[m] for m in members])), 2)
    if all(g in scores for g in groups):
        scores["avg"] = round(float(np.mean([scores[g] for g in groups])), 2)


def pairwise_accuracies(encoder, task: str, subsets: dict[str, tuple[list, list[str], list[str]]]) -> dict[str, float]:
    """Percent of examples with score(image, positive) > score(image, negative), ties wrong, per subset.

    `subsets[name] = (image refs, positive captions, negative captions)`. The images and texts of all subsets are
    encoded in one pass, so an image or caption shared by several subsets is encoded once.
    """
    refs = [r for v in subsets.values() for r in v[0]]
    img = encoder.encode_images(refs, task=task)
    txt = encoder.encode_texts([t for v in subsets.values() for t in v[1] + v[2]], task=task)  # per subset: pos, neg
    metric = load_metric("multiple_choice_accuracy")
    out, i_off, t_off = {}, 0, 0
    for name, (r, _, _) in subsets.items():
        n = len(r)
        feats = img[i_off : i_off + n]
        scores = torch.stack([paired_scores(feats, txt[t_off : t_off + n]),
                              paired_scores(feats, txt[t_off + n : t_off + 2 * n])], 1)
        i_off, t_off = i_off + n, t_off + 2 * n
        out[name] = percent(metric.compute(scores=scores.tolist(), labels=[0] * n, tie_break="strict")["accuracy"])
    return out
