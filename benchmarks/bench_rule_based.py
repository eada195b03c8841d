"""Coverage and speed of the rule-based generator (`degla.generation.generate_rule_based`): on the
first `--n_captions` captions of a NegCLIP-style TSV (a `title` column; NegCLIP's COCO-val file in
`../shared/data/negclip/valid_neg_clip.tsv`), the share of captions each rule rewrites (every
output checked by the validator) and captions per CPU second for all five rules. Usage:

    python benchmarks/bench_rule_based.py --tsv ../shared/data/negclip/valid_neg_clip.tsv [--n_captions 1000]
"""

from __future__ import annotations

import argparse
import csv
import time

from degla.generation import RULES, generate_rule_based


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tsv", required=True, help="a TSV with a 'title' column of captions")
    parser.add_argument("--n_captions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.tsv, encoding="utf-8", newline="") as f:
        captions = [row["title"] for row in csv.DictReader(f, delimiter="\t")][: args.n_captions]
    if not captions:
        raise SystemExit(f"error: --tsv {args.tsv!r} has no captions in a 'title' column")
    t0 = time.process_time()
    negatives = generate_rule_based(captions, RULES, seed=args.seed)
    seconds = time.process_time() - t0
    print(f"{len(captions)} captions of {args.tsv}\n\n| rule | rewritten |\n|---|---|")
    for rule in RULES:
        done = sum(n is not None for n in negatives[rule])
        print(f"| {rule} | {done}/{len(captions)} ({done / len(captions):.1%}) |")
    print(f"\n{len(captions) / seconds:.1f} captions per CPU second (all five rules, one process)")


if __name__ == "__main__":
    main()
