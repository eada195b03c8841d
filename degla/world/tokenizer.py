"""A small CLIP BPE tokenizer for the shapes world.

Same format and code path as OpenAI's CLIP tokenizer (byte-level alphabet, `</w>` end-of-word suffix,
`<|startoftext|>` / `<|endoftext|>`), but its merges are learnt with byte-pair encoding on the world's own
vocabulary: every world word becomes one token, and any other text falls back to smaller pieces or single
bytes (never to an unknown token). About 600 tokens instead of 49,408, so the world's CLIP stays small.
"""

from __future__ import annotations

import collections

from transformers import CLIPTokenizer

from degla.testing_utils import _bytes_to_unicode
from degla.world.shapes import CAPTION_PREFIXES, COLOURS, RELATIONS, SHAPES, SIZES, SYMMETRIC_JOINERS, TEXTURES

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
# Template words of the world's zero-shot prompts ("a photo of a {}.") are part of the vocabulary.
EXTRA_WORDS = ("a", "an", "of", "the", "this", "is", "there", "photo", "picture", "image", "shape", "shapes")


def world_words() -> list[str]:
    """Every word the world's captions and prompts use, sorted."""
    phrases = [*SHAPES, *COLOURS, *SIZES, *TEXTURES, *RELATIONS, *SYMMETRIC_JOINERS, *CAPTION_PREFIXES, *EXTRA_WORDS]
    return sorted({w for p in phrases for w in p.split()})


def learn_bpe_merges(words: list[str]) -> list[tuple[str, str]]:
    """Byte-pair encoding on a word list (Sennrich et al.): merge the most frequent adjacent pair until every
    word is a single symbol. Ties break on the lexicographically smallest pair, so the result is deterministic."""
    seqs = [list(w[:-1]) + [w[-1] + "</w>"] for w in words]
    merges: list[tuple[str, str]] = []
    while True:
        counts = collections.Counter(p for s in seqs for p in zip(s, s[1:]))
        if not counts:
            return merges
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for i, s in enumerate(seqs):
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and (s[j], s[j + 1]) == best:
                    out.append(s[j] + s[j + 1])
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            seqs[i] = out


def world_tokenizer(model_max_length: int = 32) -> CLIPTokenizer:
    """The world's `CLIPTokenizer`: byte-level base symbols (as CLIP), merges learnt on `world_words()`.

    Ids: 256 bytes, 256 bytes + `</w>`, one id per merge, then `<|startoftext|>` and `<|endoftext|>`
    (also the padding token, as in OpenAI CLIP). Save it with `save_pretrained` like any tokenizer.
    """
    merges = learn_bpe_merges(world_words())
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    # transformers 5: `vocab=`/`merges=` are honoured, `vocab_file=` is silently ignored.
    return CLIPTokenizer(vocab={v: i for i, v in enumerate(vocab)}, merges=merges, model_max_length=model_max_length)
