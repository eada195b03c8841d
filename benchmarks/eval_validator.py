"""How well `validate_negative` sorts negatives of known type.

Two sources of `(type, caption, negative)` records:

- `--data sugarcrepe` (default): SugarCrepe's human-verified negatives, one `<type>.json` of
  `{caption, negative_caption}` records per type, from `--sugarcrepe_dir` (default: the 20-record
  sample in `tests/fixtures/sugarcrepe-sample`, MIT, tuned on earlier; the 3,825-record dev
  split lives in `../shared/data/sugarcrepe-dev`).
- `--data valse`: VALSE's pieces that are rewrites of our kinds (:data:`VALSE_PIECES`: actant-swap
  as swap_obj, FOIL-it as replace_obj, relations and action-replacement as replace_rel), from
  `--valse_dir` (`../shared/data/valse`), split into folds the same way (`fold_of(f"valse/{piece}",
  key)`; folds 0-1 tuned on, 2-4 held out).
- `--data dev`: our own hand-written development set (`degla/generation/data/validator_dev.jsonl`,
  real COCO captions from NegCLIP's TSV with negatives written for this project), the one the
  validator was tuned on first.

**The split** (`--folds`, `--n_folds`): record `key` of file `<type>.json` is in fold
`int(sha1(f"{type}/{key}").hexdigest(), 16) % n_folds` (:func:`fold_of`; stable across runs and
machines, independent of the file's order). With the default 5 folds, folds 0 and 1 are the
tuning folds (`--folds 0,1`: the validator's rules were written looking at their misses), folds
2-4 are held out (`--folds 2,3,4`: only their figures are reported). A record that is also in the
20-record sample (same type, caption and negative) is in no fold: `--folds sample` gives those
alone, `--folds all` everything. A caption has records in several files, hence possibly in several
folds: `--unseen_captions_of 0,1` keeps only the records whose caption has no record in the tuning
folds (nor in the sample), and `--export_captions` writes only such captions.

The expected rule of each type: swap_att → swap_adjectives, swap_obj → swap_nouns,
replace_att → replace_adjectives, replace_obj → replace_nouns; add_att / add_obj (hard
positives by addition), replace_rel (a relation changed) and paraphrase have none. Reported:

- per type, how many negatives each rule accepts (the expected rule's count is the recall), and
  the recall on the negatives that keep their type's rule (:func:`keeps_rule`, a test on the
  words alone that uses neither the validator nor a tagger);
- cross-rule pairs: a negative of a type with an expected rule judged by every *other* rule
  (`reshuffle` excepted for swaps: every swap is a reshuffle), which must reject it;
- the mismatched (type, rule) pairings of :data:`MISMATCHED`, each also over the negatives that
  keep their type (:func:`keeps_rule`: an add_obj negative that replaces a word is a replacement);
- identical pairs: every caption against itself under every rule, which must be rejected;
- the remaining rejections by the expected rule, by reason, with examples.

Usage:

    python benchmarks/eval_validator.py [--data sugarcrepe|valse|dev] [--sugarcrepe_dir DIR] [--valse_dir DIR]
        [--examples 3]
        [--folds 2,3,4|0,1|sample|all] [--n_folds 5] [--timing] [--export_captions FILE --n_captions 40]

`--export_captions FILE` writes, instead, the first `--n_captions` distinct captions of those folds
(ordered by the sha1 of the caption; the 24 demo captions left out) to a `.txt` file, one per line:
the unseen captions of `benchmarks/bench_generation.py --captions FILE`.

The held-out figures of docs/generation.md:

    python benchmarks/eval_validator.py --sugarcrepe_dir ../shared/data/sugarcrepe-dev --folds 2,3,4
    python benchmarks/eval_validator.py --data valse --valse_dir ../shared/data/valse --folds 2,3,4
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import time
from collections import Counter, defaultdict

from degla.generation import RULES, validate_negative

EXPECTED = {"swap_att": "swap_adjectives", "swap_obj": "swap_nouns", "replace_att": "replace_adjectives",
            "replace_obj": "replace_nouns", "add_att": None, "add_obj": None, "replace_rel": None, "paraphrase": None}
VALSE_PIECES = {"actant-swap": "swap_obj", "foil-it": "replace_obj", "relations": "replace_rel",
                "action-replacement": "replace_rel"}
"""VALSE's pieces whose foil is a rewrite of one of our kinds, and the SugarCrepe type each is one of:
agent and patient swapped ("A man exercises his torso." -> "A torso exercises for a man."), a noun
replaced (FOIL-it), a preposition replaced, a verb replaced."""
EXPECTED.update({piece: EXPECTED[kind] for piece, kind in VALSE_PIECES.items()})
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUGARCREPE_SAMPLE = os.path.join(ROOT, "tests", "fixtures", "sugarcrepe-sample")
DEV_SET = os.path.join(ROOT, "degla", "generation", "data", "validator_dev.jsonl")


def fold_of(kind: str, key: str, n_folds: int = 5) -> int:
    """The fold of record ``key`` of SugarCrepe's ``<kind>.json`` (see the module docstring)."""
    return int(hashlib.sha1(f"{kind}/{key}".encode()).hexdigest(), 16) % n_folds


def _read_sugarcrepe(directory: str) -> dict[str, dict]:
    out = {}
    for name in EXPECTED:
        path = os.path.join(directory, f"{name}.json")
        if os.path.exists(path):
            with open(path) as f:
                out[name] = json.load(f)
    return out


def load_sugarcrepe(directory: str, folds: str = "all", n_folds: int = 5,
                    sample_dir: str = SUGARCREPE_SAMPLE) -> list[tuple[str, str, str]]:
    """The records of ``directory`` in ``folds``: "all", "sample" (those also in the 20-record
    sample), or comma-separated fold numbers (records of the sample excluded)."""
    sample = {(name, r["caption"], r["negative_caption"])
              for name, recs in _read_sugarcrepe(sample_dir).items() for r in recs.values()}
    wanted = None if folds in ("all", "sample") else {int(f) for f in folds.split(",")}
    records = []
    for name, recs in _read_sugarcrepe(directory).items():
        for key, r in recs.items():
            record = (name, r["caption"], r["negative_caption"])
            in_sample = record in sample
            if folds == "all" or (folds == "sample" and in_sample) or (
                    wanted is not None and not in_sample and fold_of(name, key, n_folds) in wanted):
                records.append(record)
    return records


def _norm(caption: str) -> str:
    return " ".join(caption.split()).lower()


def drop_captions_of(records: list[tuple[str, str, str]], others: list[tuple[str, str, str]]):
    """``records`` whose caption is not the caption of any of ``others`` (a caption has records in
    several files, so in several folds)."""
    seen = {_norm(c) for _, c, _ in others}
    return [r for r in records if _norm(r[1]) not in seen]


def export_captions(records: list[tuple[str, str, str]], n: int) -> list[str]:
    """The first ``n`` distinct captions of ``records`` ordered by their sha1, none of the demo's."""
    from degla.generation import DEFAULT_CAPTIONS, read_captions

    demo = {_norm(c) for c in read_captions(DEFAULT_CAPTIONS)["caption"]}
    captions = {" ".join(c.split()): None for _, c, _ in records if _norm(c) not in demo and c.strip()}
    return sorted(captions, key=lambda c: hashlib.sha1(c.encode()).hexdigest())[:n]


def load_valse(directory: str, folds: str = "all", n_folds: int = 5) -> list[tuple[str, str, str]]:
    """The records (piece, caption, foil) of VALSE's pieces in :data:`VALSE_PIECES` in ``folds``
    ("all" or comma-separated fold numbers): record ``key`` of ``<piece>.json`` is in fold
    ``fold_of(f"valse/{piece}", key)``."""
    wanted = None if folds == "all" else {int(f) for f in folds.split(",")}
    records = []
    for piece in VALSE_PIECES:
        path = os.path.join(directory, f"{piece}.json")
        if not os.path.exists(path) and os.path.exists(path + ".gz"):
            path += ".gz"  # (the test fixture's compressed copy)
        with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
            for key, r in json.load(f).items():
                if wanted is None or fold_of(f"valse/{piece}", key, n_folds) in wanted:
                    records.append((piece, r["caption"], r["foil"]))
    return records


def load_dev_set(path: str = DEV_SET) -> list[tuple[str, str, str]]:
    with open(path) as f:
        return [(r["type"], r["caption"], r["negative"]) for r in map(json.loads, filter(str.strip, f))]


MISMATCHED = {
    "additions under the replace rules": (("add_att", "add_obj"), ("replace_adjectives", "replace_nouns")),
    "replacements under the swap rules": (("replace_att", "replace_obj", "replace_rel"),
                                          ("swap_nouns", "swap_adjectives")),
    "relation replacements under the noun/adjective rules": (
        ("replace_rel",), ("swap_nouns", "swap_adjectives", "replace_adjectives", "replace_nouns")),
}
"""The mismatched (SugarCrepe type, rule) pairs that must be rejected, by group (VALSE's pieces by
:func:`sugarcrepe_type`)."""


def sugarcrepe_type(kind: str) -> str:
    """The SugarCrepe type of a record's kind: VALSE's pieces by :data:`VALSE_PIECES`."""
    return VALSE_PIECES.get(kind, kind)


def _plain_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", ""))


def _rule_words(text: str) -> list[str]:
    """Lower-case words without punctuation, "an" written "a" (the article agrees with what follows)."""
    return ["a" if w == "an" else w for w in _plain_words(text)]


def _in_order_within(short: list[str], long: list[str]) -> bool:
    it = iter(long)
    return all(word in it for word in short)


def keeps_rule(kind: str, caption: str, negative: str) -> bool:
    """Whether a negative keeps its type's rule, by a test on the words alone (no tagger, no
    validator, so no tuning can move it): a swap (swap_att, swap_obj) keeps it when its words are
    the caption's words in another order; a replacement (replace_att, replace_obj) when the two
    differ in one contiguous span of 1-3 words on each side; an addition (add_att, add_obj, which
    no rule may accept) when the negative has every word of the caption, in order, and more. Words:
    lower case, punctuation dropped, "a"/"an" one word. VALSE's pieces as their SugarCrepe type
    (:data:`VALSE_PIECES`). Other types (replace_rel, paraphrase): False."""
    kind = sugarcrepe_type(kind)
    old, new = _rule_words(caption), _rule_words(negative)
    if kind in ("swap_att", "swap_obj"):
        return old != new and Counter(old) == Counter(new)
    if kind in ("add_att", "add_obj"):
        return len(new) > len(old) and _in_order_within(old, new)
    if kind not in ("replace_att", "replace_obj"):
        return False
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    return 1 <= len(old) - start - end <= 3 and 1 <= len(new) - start - end <= 3


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
    mismatched = defaultdict(Counter)  # group -> "pairs", "rejected"
    pairings = defaultdict(lambda: defaultdict(Counter))  # group -> "<kind> under <rule>" -> the same
    keeping = defaultdict(Counter)  # type -> "n", "accepted": the negatives that keep their type's rule
    kept = [keeps_rule(kind, caption, negative) for kind, caption, negative in records]  # (not timed)
    calls, t0 = 0, time.process_time()
    for (kind, caption, negative), keeps in zip(records, kept):
        counts[kind] += 1
        keeping[kind]["n"] += keeps
        for rule in RULES:
            verdict = validate_negative(caption, negative, rule)
            calls += 1
            accepted[kind][rule] += verdict is None
            keeping[kind]["accepted"] += keeps and rule == EXPECTED[kind] and verdict is None
            if rule == EXPECTED[kind] and verdict is not None:
                reasons[verdict].append((kind, caption, negative))
            for group, (kinds, rules) in MISMATCHED.items():
                if sugarcrepe_type(kind) in kinds and rule in rules:
                    for counter in (mismatched[group], pairings[group][f"{kind} under {rule}"]):
                        counter["pairs"] += 1
                        counter["rejected"] += verdict is not None
                        counter["keeping pairs"] += keeps  # (additions that are additions: keeps_rule)
                        counter["keeping rejected"] += keeps and verdict is not None
            if EXPECTED[kind] and rule in cross_rules(kind):
                cross["pairs"] += 1
                cross["rejected"] += verdict is not None
    for caption in {c for _, c, _ in records}:
        for rule in RULES:
            identical["pairs"] += 1
            identical["rejected"] += validate_negative(caption, caption, rule) is not None
            calls += 1
    seconds = time.process_time() - t0
    for kind, expected in EXPECTED.items():
        if counts[kind]:
            recall[kind] = accepted[kind][expected] if expected else counts[kind] - max(accepted[kind].values())
    return {"counts": counts, "accepted": accepted, "recall": recall, "keeping": keeping, "reasons": reasons,
            "cross": cross, "identical": identical, "mismatched": mismatched, "pairings": pairings,
            "calls": calls, "cpu_seconds": seconds}


def format_report(result: dict, n_examples: int = 3, timing: bool = False) -> str:
    counts, accepted = result["counts"], result["accepted"]
    lines = ["| type | n | expected rule | " + " | ".join(RULES) + " | passed | of those that keep the rule |",
             "|---|---|---|" + "---|" * (len(RULES) + 2)]
    for kind, expected in EXPECTED.items():
        if not counts[kind]:
            continue
        cells = [f"**{accepted[kind][r]}**" if r == expected else str(accepted[kind][r]) for r in RULES]
        passed = result["recall"][kind]
        what = "accepted by its rule" if expected else "rejected by every rule"
        keeping = result["keeping"][kind]
        kept = (f"{keeping['accepted']}/{keeping['n']} ({keeping['accepted'] / max(keeping['n'], 1):.0%}); "
                f"{counts[kind] - keeping['n']} break it") if expected else ""
        lines.append(f"| {kind} | {counts[kind]} | {expected or 'none'} | " + " | ".join(cells)
                     + f" | {passed}/{counts[kind]} ({passed / counts[kind]:.0%}) {what} | {kept} |")
    cross, identical = result["cross"], result["identical"]
    lines.append(f"\ncross-rule pairs rejected: {cross['rejected']}/{cross['pairs']} "
                 f"({cross['rejected'] / max(cross['pairs'], 1):.1%}); identical pairs rejected: "
                 f"{identical['rejected']}/{identical['pairs']} "
                 f"({identical['rejected'] / max(identical['pairs'], 1):.1%})")
    for group, c in result["mismatched"].items():
        lines.append(f"{group} rejected: {c['rejected']}/{c['pairs']} ({c['rejected'] / max(c['pairs'], 1):.1%})")
        lines += [f"    {pairing}: {c['rejected']}/{c['pairs']} ({c['rejected'] / max(c['pairs'], 1):.1%})"
                  + (f"; of those that keep their type: {c['keeping rejected']}/{c['keeping pairs']} "
                     f"({c['keeping rejected'] / c['keeping pairs']:.1%})" if c["keeping pairs"] else "")
                  for pairing, c in result["pairings"][group].items()]
    if timing:
        lines.append(f"\nvalidations: {result['calls']} in {result['cpu_seconds']:.1f} CPU s = "
                     f"{result['calls'] / max(result['cpu_seconds'], 1e-9):.0f}/s (one process, one thread)")
    if result["reasons"]:
        lines.append("\nrejected by the expected rule:")
        for reason, examples in sorted(result["reasons"].items(), key=lambda kv: -len(kv[1])):
            lines.append(f"- {reason} ({len(examples)}):")
            lines += [f"    [{k}] {c.strip()!r} -> {n.strip()!r}" for k, c, n in examples[:n_examples]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["sugarcrepe", "valse", "dev"], default="sugarcrepe")
    parser.add_argument("--sugarcrepe_dir", default=SUGARCREPE_SAMPLE, help="folder of SugarCrepe <type>.json files")
    parser.add_argument("--valse_dir", default=None, help="folder of VALSE's <piece>.json files (--data valse)")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per rejection reason")
    parser.add_argument("--folds", default="all",
                        help='"all", "sample" (records also in the 20-record sample) or fold numbers: "0,1" (tuning), '
                             '"2,3,4" (held out)')
    parser.add_argument("--n_folds", type=int, default=5)
    parser.add_argument("--timing", action="store_true", help="print validations per CPU second")
    parser.add_argument("--unseen_captions_of", default=None,
                        help='keep only records whose caption has no record in these folds (e.g. "0,1") nor in the '
                             'sample: a caption is in several files, so its records can fall in several folds')
    parser.add_argument("--export_captions", default=None, help="write distinct captions of the folds to this .txt")
    parser.add_argument("--n_captions", type=int, default=40, help="how many captions --export_captions writes")
    args = parser.parse_args()
    if args.export_captions:
        records = load_sugarcrepe(args.sugarcrepe_dir, args.folds, args.n_folds)
        chosen = set(records)
        others = [r for r in load_sugarcrepe(args.sugarcrepe_dir, "all") if r not in chosen]
        captions = export_captions(drop_captions_of(records, others), args.n_captions)  # captions of no other fold
        with open(args.export_captions, "w", encoding="utf-8") as f:
            f.write("".join(c + "\n" for c in captions))
        print(f"wrote {len(captions)} captions to {args.export_captions}")
        return
    if args.data == "sugarcrepe":
        if not os.path.isdir(args.sugarcrepe_dir):
            raise SystemExit(f"error: --sugarcrepe_dir {args.sugarcrepe_dir!r} is not a folder")
        records = load_sugarcrepe(args.sugarcrepe_dir, args.folds, args.n_folds)
        if args.unseen_captions_of:
            seen = load_sugarcrepe(args.sugarcrepe_dir, args.unseen_captions_of, args.n_folds)
            records = drop_captions_of(records, seen + load_sugarcrepe(args.sugarcrepe_dir, "sample"))
        print(f"{len(records)} records of {args.sugarcrepe_dir!r}, folds {args.folds} of {args.n_folds}\n")
    elif args.data == "valse":
        if not args.valse_dir or not os.path.isdir(args.valse_dir):
            raise SystemExit(f"error: --data valse needs --valse_dir, a folder of VALSE's files "
                             f"(got {args.valse_dir!r})")
        records = load_valse(args.valse_dir, args.folds, args.n_folds)
        print(f"{len(records)} records of {args.valse_dir!r}, folds {args.folds} of {args.n_folds}\n")
    else:
        records = load_dev_set()
    print(format_report(evaluate(records), args.examples, args.timing))


if __name__ == "__main__":
    main()
