"""The exemplar bank: (caption, negative) pairs per rule, sampled 5 at a time into prompts (one draw per
caption, or per group of captions)."""

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
    rule, the caption's index (or its group's) and the attempt number (a retry sees new exemplars).

    With ``group_size`` G > 1 the captions ``[g*G, (g+1)*G)`` of a rule share one draw (exemplar
    groups): their prompts then share everything before the caption, so a backend can prefill that
    prefix once per group (:class:`~degla.generation.backend.LLMRewriter`, ``shared_prefix``). Each
    caption's exemplars are still a uniform draw of ``k`` pairs; only draws of neighbours are equal.
    A caption that is itself an exemplar's caption gets the group's draw with that pair replaced by
    the group's next one. ``group_size=1`` is one draw per caption (the draw of earlier versions).

    Args:
        k: exemplars per prompt (the paper uses 5).
        seed: base seed.
        exemplar_dir: folder with one ``<rule>.jsonl`` per rule (default: the shipped bank).
        group_size: consecutive captions (by index) that share one draw.
    """

    def __init__(self, k: int = 5, seed: int = 0, exemplar_dir: str | Path | None = None, group_size: int = 1):
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.k, self.seed, self.group_size = k, seed, group_size
        self.bank = {rule: load_exemplars(rule, exemplar_dir) for rule in RULES}
        for rule, pairs in self.bank.items():
            if len(pairs) < k + (group_size > 1):
                raise ValueError(f"the exemplar bank of {rule!r} has {len(pairs)} pairs, too few for k={k}")

    def sample(self, rule: str, key: int | str, attempt: int = 0, caption: str | None = None) -> list[tuple[str, str]]:
        """The exemplars of caption ``key`` (its index; an int when ``group_size`` > 1) at ``attempt``,
        never a pair whose caption is ``caption``."""
        if self.group_size == 1:
            rng = random.Random(zlib.crc32(f"{self.seed}|{rule}|{key}|{attempt}".encode()))
            pool = [p for p in self.bank[check_rule(rule)] if p[0] != caption]
            return rng.sample(pool, self.k)
        if not isinstance(key, int):
            raise TypeError(f"exemplar groups need the caption's index as key, got {key!r}")
        group = key // self.group_size
        rng = random.Random(zlib.crc32(f"{self.seed}|{rule}|group{self.group_size}:{group}|{attempt}".encode()))
        drawn = rng.sample(self.bank[check_rule(rule)], self.k + 1)
        return [p for p in drawn if p[0] != caption][: self.k]
