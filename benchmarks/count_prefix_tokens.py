"""Prompt tokens prefilled per prompt with exemplar groups and the shared prefix, counted (no model run):
the prompts of every rule for the captions, grouped as `LLMRewriter(shared_prefix=True)` groups one call's
prompts, for several exemplar group sizes. Usage:

    python benchmarks/count_prefix_tokens.py --captions heldout40.txt [--exemplars 3,5] [--group_sizes 1,8,16,32,64]
"""

import argparse
import os
from types import SimpleNamespace

from transformers import AutoTokenizer

from degla.generation import RULES, ExemplarSampler, build_messages, read_captions
from degla.generation.backend import LLMRewriter, smollm2_gguf_path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", required=True)
    parser.add_argument("--n_captions", type=int, default=40)
    parser.add_argument("--exemplars", default="3,5")
    parser.add_argument("--group_sizes", default="1,8,16,32,64")
    args = parser.parse_args()
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    rewriter = LLMRewriter(SimpleNamespace(tokenizer=tokenizer, model=None))  # only its tokenizing and grouping
    captions = read_captions(args.captions)["caption"][: args.n_captions]
    for k in map(int, args.exemplars.split(",")):
        for group_size in map(int, args.group_sizes.split(",")):
            sampler = ExemplarSampler(k=k, group_size=group_size)
            ids = [rewriter._prompt_ids(build_messages(c, rule, sampler.sample(rule, i, caption=c)))
                   for rule in RULES for i, c in enumerate(captions)]
            whole = sum(map(len, ids))
            prefilled = sum(shared + sum(len(ids[i]) - shared for i in members)
                            for shared, members in rewriter._prefix_groups(ids))
            print(f"{k} exemplars, group size {group_size}: {whole / len(ids):.1f} prompt tokens, "
                  f"{prefilled / len(ids):.1f} prefilled per prompt ({prefilled / whole:.3f} of the whole prompts)")


if __name__ == "__main__":
    main()
