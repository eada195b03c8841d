"""How well `validate_negative` sorts human-verified negatives of known type.

Reads SugarCrepe files (`{caption, negative_caption}` records; the first 20 of each are in
`../shared/data/sugarcrepe-sample`) and prints, per SugarCrepe type, how many negatives each
rule's validator accepts. The expected rule of each type is on the diagonal:
swap_att → swap_adjectives, swap_obj → swap_nouns, replace_att → replace_adjectives,
replace_obj → replace_nouns; add_att / add_obj are hard positives-by-addition and replace_rel
changes a relation, so no rule should accept them. Usage:

    python benchmarks/eval_validator.py [--sugarcrepe_dir ../shared/data/sugarcrepe-sample] [--show_rejected]
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter

from degla.generation import RULES, validate_negative

EXPECTED = {"swap_att": "swap_adjectives", "swap_obj": "swap_nouns", "replace_att": "replace_adjectives",
            "replace_obj": "replace_nouns", "add_att": None, "add_obj": None, "replace_rel": None}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sugarcrepe_dir", default=os.path.join(here, "..", "..", "shared", "data", "sugarcrepe-sample"))
    parser.add_argument("--show_rejected", action="store_true", help="print the expected rule's rejections")
    args = parser.parse_args()

    print("| SugarCrepe type | n | expected rule | " + " | ".join(RULES) + " |")
    print("|---|---|---|" + "---|" * len(RULES))
    recall, false_accept = Counter(), Counter()
    for name, expected in EXPECTED.items():
        path = os.path.join(args.sugarcrepe_dir, f"{name}.json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            records = list(json.load(f).values())
        cells, reasons = [], Counter()
        for rule in RULES:
            verdicts = [validate_negative(r["caption"], r["negative_caption"], rule) for r in records]
            accepted = sum(v is None for v in verdicts)
            cells.append(f"**{accepted}**" if rule == expected else str(accepted))
            if rule == expected:
                recall[name] = (accepted, len(records))
                reasons.update(v for v in verdicts if v)
                if args.show_rejected:
                    for r, v in zip(records, verdicts):
                        if v:
                            print(f"  rejected ({v}): {r['caption']!r} -> {r['negative_caption']!r}")
            elif expected is None or rule not in ("reshuffle",):
                false_accept[name] += accepted
        print(f"| {name} | {len(records)} | {expected or 'none'} | " + " | ".join(cells) + " |"
              + (f" rejected: {dict(reasons)}" if reasons else ""))
    hits = sum(a for a, _ in recall.values())
    total = sum(n for _, n in recall.values())
    print(f"\naccepted by the expected rule: {hits}/{total}; "
          f"accepted by a wrong rule (reshuffle excepted: every swap is a reshuffle): {sum(false_accept.values())}")


if __name__ == "__main__":
    main()
