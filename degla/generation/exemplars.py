"""The exemplar bank: (caption, negative) pairs per rule, sampled 5 at a time into prompts."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

from .rules import RULES, check_rule

EXEMPLAR_DIR = Path(__file__).parent / "exemplars"


def load_exemplars(rule: str, exemplar_dir: str | Path | None = None) -> list[tuple[str, str]]:
    """The (caption, negative) pairs of ``rule`` from ``<exemplar_dir>/<rule>.jsonl``."""
    check_rule(rule)
    path = Path(exemplar_dir or EXEMPLAR_DIR) / f"{rule}.jsonl"
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pairs.append((row["caption"], row["negative"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{path}, line {line_no}: expected a JSON object with 'caption' and 'negative' ({e})"
                ) from None
    return pairs


class ExemplarSampler:
    """Draws ``k`` exemplars per prompt, reproducibly: the draw depends only on the seed, the
    rule, the caption's index and the attempt number (a retry sees new exemplars).

    Args:
        k: exemplars per prompt (the paper uses 5).
        seed: base seed.
        exemplar_dir: folder with one ``<rule>.jsonl`` per rule (default: the shipped bank).
    """

    def __init__(self, k: int = 5, seed: int = 0, exemplar_dir: str | Path | None = None):
        self.k, self.seed = k, seed
        self.bank = {rule: load_exemplars(rule, exemplar_dir) for rule in RULES}
        for rule, pairs in self.bank.items():
            if len(pairs) < k:
                raise ValueError(f"the exemplar bank of {rule!r} has {len(pairs)} pairs, fewer than k={k}")

    def sample(self, rule: str, key: int | str, attempt: int = 0, caption: str | None = None) -> list[tuple[str, str]]:
        rng = random.Random(zlib.crc32(f"{self.seed}|{rule}|{key}|{attempt}".encode()))
        pool = [p for p in self.bank[check_rule(rule)] if p[0] != caption]
        return rng.sample(pool, self.k)
