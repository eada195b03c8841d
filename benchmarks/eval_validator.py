"""How well `validate_negative` sorts negatives of known type.

Two sources of `(type, caption, negative)` records:

- `--data sugarcrepe` (default): SugarCrepe's human-verified negatives, one `<type>.json` of
  `{caption, negative_caption}` records per type (the first 20 of each are in
  `tests/fixtures/sugarcrepe-sample`, MIT). Reported on, never tuned on.
- `--data dev`: our own hand-written development set (`degla/generation/data/validator_dev.jsonl`,
  real COCO captions from NegCLIP's TSV with negatives written for this project), the one the
  validator was tuned on.

The expected rule of each type: swap_att → swap_adjectives, swap_obj → swap_nouns,
replace_att → replace_adjectives, replace_obj → replace_nouns; add_att / add_obj (hard
positives by addition), replace_rel (a relation changed) and paraphrase have none. Reported:

- per type, how many negatives each rule accepts (the expected rule's count is the recall);
- cross-rule pairs: a negative of a type with an expected rule judged by every *other* rule
  (`reshuffle` excepted for swaps: every swap is a reshuffle), which must reject it;
- identical pairs: every caption against itself under every rule, which must be rejected;
- the remaining rejections by the expected rule, by reason, with examples.

Usage:

    python benchmarks/eval_validator.py [--data sugarcrepe|dev] [--sugarcrepe_dir DIR] [--examples 3]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict

from degla.generation import RULES, validate_negative

EXPECTED = {"swap_att": "swap_adjectives", "swap_obj": "swap_nouns", "replace_att": "replace_adjectives",
            "replace_obj": "replace_nouns", "add_att": None, "add_obj": None, "replace_rel": None, "paraphrase": None}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUGARCREPE_SAMPLE = os.path.join(ROOT, "tests", "fixtures", "sugarcrepe-sample")
DEV_SET = os.path.join(ROOT, "degla", "generation", "data", "validator_dev.jsonl")


def load_sugarcrepe(directory: str) -> list[tuple[str, str, str]]:
    records = []
    for name in EXPECTED:
        path = os.path.join(directory, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                records += [(name, r["caption"], r["negative_caption"]) for r in json.load(f).values()]
    return records


def load_dev_set(path: str = DEV_SET) -> list[tuple[str, str, str]]:
    with open(path) as f:
        return [(r["type"], r["caption"], r["negative"]) for r in map(json.loads, filter(str.strip, f))]


def cross_rules(kind: str) -> list[str]:
    """The rules other than its own that must reject a negative of ``kind``."""
    expected = EXPECTED[kind]
    return [r for r in RULES if r != expected and not (r == "reshuffle" and expected.startswith("swap"))]


def evaluate(records: list[tuple[str, str, str]]) -> dict:
    """Verdicts of every rule on every record, summed up (see the module docstring)."""
    accepted = defaultdict(Counter)  # type -> rule -> accepted
    counts = Counter()
    recall = {}
    reasons = defaultdict(list)  # reason -> [(type, caption, negative)] rejected by the expected rule
    cross = Counter()  # "pairs", "rejected"
    identical = Counter()
    for kind, caption, negative in records:
        counts[kind] += 1
        for rule in RULES:
            verdict = validate_negative(caption, negative, rule)
            accepted[kind][rule] += verdict is None
            if rule == EXPECTED[kind] and verdict is not None:
                reasons[verdict].append((kind, caption, negative))
            if EXPECTED[kind] and rule in cross_rules(kind):
                cross["pairs"] += 1
                cross["rejected"] += verdict is not None
    for caption in {c for _, c, _ in records}:
        for rule in RULES:
            identical["pairs"] += 1
            identical["rejected"] += validate_negative(caption, caption, rule) is not None
    for kind, expected in EXPECTED.items():
        if counts[kind]:
            recall[kind] = accepted[kind][expected] if expected else counts[kind] - max(accepted[kind].values())
    return {"counts": counts, "accepted": accepted, "recall": recall, "reasons": reasons, "cross": cross,
            "identical": identical}


def format_report(result: dict, n_examples: int = 3) -> str:
    counts, accepted = result["counts"], result["accepted"]
    lines = ["| type | n | expected rule | " + " | ".join(RULES) + " | passed |",
             "|---|---|---|" + "---|" * (len(RULES) + 1)]
    for kind, expected in EXPECTED.items():
        if not counts[kind]:
            continue
        cells = [f"**{accepted[kind][r]}**" if r == expected else str(accepted[kind][r]) for r in RULES]
        passed = result["recall"][kind]
        what = "accepted by its rule" if expected else "rejected by every rule"
        lines.append(f"| {kind} | {counts[kind]} | {expected or 'none'} | " + " | ".join(cells)
                     + f" | {passed}/{counts[kind]} ({passed / counts[kind]:.0%}) {what} |")
    cross, identical = result["cross"], result["identical"]
    lines.append(f"\ncross-rule pairs rejected: {cross['rejected']}/{cross['pairs']} "
                 f"({cross['rejected'] / max(cross['pairs'], 1):.1%}); identical pairs rejected: "
                 f"{identical['rejected']}/{identical['pairs']} "
                 f"({identical['rejected'] / max(identical['pairs'], 1):.1%})")
    if result["reasons"]:
        lines.append("\nrejected by the expected rule:")
        for reason, examples in sorted(result["reasons"].items(), key=lambda kv: -len(kv[1])):
            lines.append(f"- {reason} ({len(examples)}):")
            lines += [f"    [{k}] {c.strip()!r} -> {n.strip()!r}" for k, c, n in examples[:n_examples]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["sugarcrepe", "dev"], default="sugarcrepe")
    parser.add_argument("--sugarcrepe_dir", default=SUGARCREPE_SAMPLE, help="folder of SugarCrepe <type>.json files")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per rejection reason")
    args = parser.parse_args()
    records = load_sugarcrepe(args.sugarcrepe_dir) if args.data == "sugarcrepe" else load_dev_set()
    print(format_report(evaluate(records), args.examples))


if __name__ == "__main__":
    main()
