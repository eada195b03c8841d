"""The four caption perturbations of ARO's COCO-Order / Flickr30k-Order (Yuksekgonul et al., 2023).

Mirrors `dataset_zoo/perturbations.py::TextShuffler` of the ARO code: (1) shuffle nouns among nouns and
adjectives among adjectives, (2) shuffle every word that is neither a noun nor an adjective, (3) shuffle words
within each trigram, (4) shuffle the order of the trigrams. Then BLIP's `pre_caption` (lower-case, strip
punctuation, at most 30 words) is applied to the true caption and to each perturbation.

Deviations, all documented in docs/evaluation.md:
- randomness comes from one `numpy.random.Generator` seeded by `seed` (ARO seeds the global RNGs);
- nouns/adjectives come from spaCy's `en_core_web_sm` Penn tags (NN*, JJ*) as in ARO when it is installed,
  or from a user lexicon (`{"nouns": [...], "adjectives": [...]}`) otherwise;
- trigram perturbations tokenise with a regular expression close to `nltk.word_tokenize` (NLTK's punkt data
  cannot be fetched offline).
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
from tqdm.auto import tqdm

from .common import EvalDataError, check_path, read_json

NOUN_TAGS = {"NN", "NNS", "NNP", "NNPS"}
NO_TAGGER = ("ARO COCO/Flickr30k-Order needs a part-of-speech tagger: `pip install spacy && python -m spacy "
             "download en_core_web_sm` (the ARO reference), or pass --order_pos_lexicon FILE.json with "
             '{"nouns": [...], "adjectives": [...]}')
ADJ_TAGS = {"JJ", "JJR", "JJS"}
_WORD_RE = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")


def pre_caption(caption: str, max_words: int = 30) -> str:
    """BLIP's / ARO's caption normalisation."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


def word_tokenize(text: str) -> list[str]:
    return _WORD_RE.findall(text)


class SpacyTagger:
    """Penn Treebank tags from spaCy's `en_core_web_sm` (the ARO reference)."""

    name = "spacy:en_core_web_sm"

    def __init__(self):
        try:
            import spacy

            self.nlp = spacy.load("en_core_web_sm", disable=["parser", "ner", "lemmatizer"])
        except (ImportError, OSError) as err:
            raise EvalDataError(NO_TAGGER) from err

    def tag(self, texts: list[str]) -> list[list[tuple[str, str]]]:
        docs = tqdm(self.nlp.pipe(texts, batch_size=256), total=len(texts), desc="ARO order: POS tagging",
                    unit="caption")
        return [[(t.text, t.tag_) for t in doc] for doc in docs]


class LexiconTagger:
    """Tags words found in a noun/adjective lexicon `NN`/`JJ` (case-insensitive); every other token `X`."""

    def __init__(self, path: str):
        lex = read_json(path, "order POS lexicon")
        if not isinstance(lex, dict) or not {"nouns", "adjectives"} <= set(lex):
            raise ValueError(f"{path}: expected {{\"nouns\": [...], \"adjectives\": [...]}}")
        self.name = f"lexicon:{path}"
        self.nouns = {w.lower() for w in lex["nouns"]}
        self.adjectives = {w.lower() for w in lex["adjectives"]}

    def tag(self, texts: list[str]) -> list[list[tuple[str, str]]]:
        def tag_of(tok):
            low = tok.lower()
            return "NN" if low in self.nouns else "JJ" if low in self.adjectives else "X"

        return [[(tok, tag_of(tok)) for tok in word_tokenize(t)] for t in texts]


def _shuffle_where(tokens: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    idx = np.flatnonzero(mask)
    tokens[idx] = tokens[rng.permutation(idx)]


def _trigrams(tokens: list[str]) -> list[list[str]]:
    return [tokens[i : i + 3] for i in range(0, len(tokens), 3)]


def perturb(tagged: list[tuple[str, str]], caption: str, rng: np.random.Generator) -> list[str]:
    """The four perturbations of one caption (its tagged tokens and its raw text)."""
    tokens = np.array([t for t, _ in tagged], dtype=object)
    tags = [g for _, g in tagged]
    is_noun = np.array([g in NOUN_TAGS for g in tags], dtype=bool)
    is_adj = np.array([g in ADJ_TAGS for g in tags], dtype=bool)
    nouns_adj = tokens.copy()
    _shuffle_where(nouns_adj, is_noun, rng)
    _shuffle_where(nouns_adj, is_adj, rng)
    others = tokens.copy()
    _shuffle_where(others, ~(is_noun | is_adj), rng)
    words = word_tokenize(caption)
    within = [" ".join(rng.permutation(np.array(tri, dtype=object))) for tri in _trigrams(words)]
    trigrams = _trigrams(words)
    across = [" ".join(trigrams[i]) for i in rng.permutation(len(trigrams))]
    return [" ".join(nouns_adj), " ".join(others), " ".join(within), " ".join(across)]


def order_candidates(captions: list[str], tagger, seed: int = 0, max_words: int = 30) -> list[list[str]]:
    """For every caption: [true caption, 4 perturbations], all through `pre_caption` (index 0 is correct)."""
    rng = np.random.default_rng(seed)
    tagged = tagger.tag(captions)
    return [[pre_caption(c, max_words)] + [pre_caption(p, max_words) for p in perturb(tg, c, rng)]
            for c, tg in zip(captions, tagged)]


def make_tagger(lexicon_path: str | None):
    return LexiconTagger(lexicon_path) if lexicon_path else SpacyTagger()


def check_tagger(lexicon_path: str | None) -> None:
    """Raise `EvalDataError` (before any encoding) when neither the lexicon nor spaCy's model is available."""
    if lexicon_path:
        check_path(lexicon_path, "order_pos_lexicon", kind="file")
    elif importlib.util.find_spec("spacy") is None or importlib.util.find_spec("en_core_web_sm") is None:
        raise EvalDataError(NO_TAGGER)
