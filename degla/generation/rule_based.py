"""The five rules without an LLM: NegCLIP-style swaps and word-list replacements.

A baseline, the fallback for rewrites the LLM got wrong, and the fast path for tests and
synthetic captions ("a small red circle to the left of a large blue square"). Every output
passes :func:`~degla.generation.validation.validate_negative`; a caption the rule cannot be
applied to (one noun only for a noun swap, ...) gets ``None``.
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache

from .lexicon import Token, detokenize, fix_articles, lemma, load_lexicon, tag
from .rules import RULES, check_rule
from .validation import validate_negative

_IRREGULAR_PLURALS = {"man": "men", "woman": "women", "person": "people", "child": "children", "foot": "feet",
                      "tooth": "teeth", "mouse": "mice", "goose": "geese", "knife": "knives", "leaf": "leaves",
                      "sheep": "sheep", "fish": "fish", "deer": "deer", "shelf": "shelves", "wolf": "wolves"}
_MAX_CANDIDATES = 12
_BASIC_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black", "brown", "gray", "pink")


def pluralize(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    last = noun.split(" ")[-1]
    head = noun[: len(noun) - len(last)]
    if last in _IRREGULAR_PLURALS:
        return head + _IRREGULAR_PLURALS[last]
    if last.endswith(("s", "x", "ch", "sh", "z")):
        return noun + "es"
    if last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


@lru_cache(maxsize=1)
def _categories():
    lex = load_lexicon()
    noun_cat = {w: c for c, ws in lex.noun_categories.items() for w in ws}
    adj_cat = {w: c for c, ws in lex.adjective_categories.items() for w in ws}
    return lex, noun_cat, adj_cat


def _rng(seed: int, rule: str, caption: str) -> random.Random:
    return random.Random(zlib.crc32(f"{seed}|{rule}|{caption}".encode()))


def _render(words: list[str], capitalize: bool) -> str:
    text = detokenize(fix_articles(words))
    return text[:1].upper() + text[1:] if capitalize else text


def _pairs(positions: list[int], rng: random.Random, kind=None) -> list[tuple[int, int]]:
    """Shuffled pairs of positions; pairs whose ``kind`` agrees come first."""
    pairs = [(a, b) for i, a in enumerate(positions) for b in positions[i + 1:]]
    rng.shuffle(pairs)
    if kind is not None:
        pairs.sort(key=lambda p: kind(p[0]) != kind(p[1]) or kind(p[0]) is None)
    return pairs[:_MAX_CANDIDATES]


def _with_number(lemma: str, like: Token) -> str:
    word = lemma.replace("_", " ")
    return pluralize(word) if like.lower != like.lemma and like.tag == "NOUN" else word


def _noun_heads(tokens: list[Token]) -> list[int]:
    """Positions of nouns that end a noun run ("bench" in "park bench")."""
    return [i for i, t in enumerate(tokens)
            if t.tag == "NOUN" and (i + 1 == len(tokens) or tokens[i + 1].tag != "NOUN")]


def _chunks(tokens: list[Token]) -> list[tuple[int, int]]:
    """[start, end) spans of noun phrases (DET/NUM/ADJ/NOUN runs holding a noun)."""
    spans, start = [], None
    for i, t in enumerate(tokens + [Token("", "", "", "END")]):
        inside = t.tag in {"DET", "NUM", "ADJ", "NOUN"}
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            if any(tokens[k].tag == "NOUN" for k in range(start, i)):
                spans.append((start, i))
            start = None
    return spans


def _candidates(tokens: list[Token], rule: str, rng: random.Random):
    """Candidate rewrites (lists of words), most natural first."""
    words = [t.text for t in tokens]
    if words and words[0][1:] == words[0][1:].lower():
        words[0] = words[0].lower()  # "A dog ..." -> the first word may move; _render capitalises
    lex, noun_cat, adj_cat = _categories()
    if rule == "reshuffle":
        spans = _chunks(tokens)
        for a, b in _pairs(list(range(len(spans))), rng):
            (s1, e1), (s2, e2) = spans[a], spans[b]
            yield words[:s1] + words[s2:e2] + words[e1:s2] + words[s1:e1] + words[e2:]
    elif rule == "swap_nouns":
        heads = _noun_heads(tokens)
        for i, j in _pairs(heads, rng, kind=lambda k: noun_cat.get(tokens[k].lemma)):
            if tokens[i].lemma != tokens[j].lemma:
                out = list(words)
                out[i], out[j] = _with_number(tokens[j].lemma, tokens[i]), _with_number(tokens[i].lemma, tokens[j])
                yield out
    elif rule == "swap_adjectives":
        adjs = [i for i, t in enumerate(tokens) if t.tag == "ADJ"]
        phrase = {k: n for n, (s, e) in enumerate(_chunks(tokens)) for k in range(s, e)}
        for i, j in _pairs(adjs, rng, kind=lambda k: adj_cat.get(tokens[k].lower)):
            if tokens[i].lower != tokens[j].lower and phrase.get(i) != phrase.get(j):
                out = list(words)
                out[i], out[j] = words[j], words[i]
                yield out
    elif rule == "replace_adjectives":
        adjs = [i for i, t in enumerate(tokens) if t.tag == "ADJ"]
        rng.shuffle(adjs)
        for i in adjs:
            w = tokens[i].lower
            cat = adj_cat.get(w, "colour")
            same_cat = (list(_BASIC_COLOURS) if cat == "colour"
                        else [x for x in lex.adjective_categories[cat] if "_" not in x])
            options = list(lex.antonyms.get(w, ())) + rng.sample(same_cat, min(4, len(same_cat)))
            for new in options:
                if new != w:
                    yield words[:i] + [new] + words[i + 1:]
    elif rule == "replace_nouns":
        heads = _noun_heads(tokens)
        rng.shuffle(heads)
        for i in heads:
            cat = noun_cat.get(tokens[i].lemma, "object")
            cat = "object" if cat == "other" else cat
            options = [x for x in lex.noun_categories[cat]
                       if x != tokens[i].lemma and x not in lex.hypernyms and lemma(x) == x]  # singular forms only
            for new in rng.sample(options, min(4, len(options))):
                yield words[:i] + [_with_number(new, tokens[i])] + words[i + 1:]


def rewrite_rule_based(caption: str, rule: str, seed: int = 0) -> str | None:
    """One rule-based negative of ``caption`` under ``rule`` (``None`` when the rule does not
    apply). Deterministic given ``seed``."""
    check_rule(rule)
    tokens = tag(caption)
    capitalize = caption.strip()[:1].isupper()
    for words in _candidates(tokens, rule, _rng(seed, rule, caption)):
        negative = _render(words, capitalize)
        if validate_negative(caption, negative, rule) is None:
            return negative
    return None


def generate_rule_based(captions: list[str], rules: tuple[str, ...] = RULES,
                        seed: int = 0) -> dict[str, list[str | None]]:
    """Rule-based negatives for a list of captions.

    Args:
        captions: the captions.
        rules: the rules to apply (default all five, :data:`~degla.generation.rules.RULES`).
        seed: makes the choice of words reproducible.

    Returns:
        ``{rule: [negative or None for each caption]}``.
    """
    return {rule: [rewrite_rule_based(c, rule, seed) for c in captions] for rule in rules}
