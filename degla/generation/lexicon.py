"""Word lists and a part-of-speech tagger for captions.

Two sources, no model download:

- the domain lexicon (``degla/generation/lexicon/*.json``): COCO-style everyday scenes and
  "shapes world" captions, nouns and adjectives by category (the categories drive the
  rule-based replacements), verbs, function words, spatial relations, quantity nouns;
- for every word the lexicon does not know, Brill's rule-based tagger (Penn Treebank/Brown
  lexicon of ~100k words plus contextual rules, MIT licence) as bundled in ``textblob``
  (``textblob.en.parser``; installed with degla).

Where the lexicon's class and the sentence disagree, the sentence decides (:func:`tag_words`): by
the Penn Treebank's noun-phrase conventions (a word between a determiner and its head noun is a
prenominal modifier, a noun before the head noun a noun modifier) on top of Brill's tags in
context (docs/generation.md, "Part of speech in context").

Tags: ``NOUN ADJ NUM VERB ADV REL DET PREP CONJ PRON AUX POSS PUNCT`` (``POSS``: the possessive
"'s"). ``NUM`` holds numerals and quantifiers ("two", "several", "a couple of", "a herd of"),
``REL`` the nouns of spatial relations ("left" in "to the left of"). Multi-word nouns ("hot dog",
"teddy bear") and quantity phrases ("bunch of") are one token, joined by a space in the text and
by ``_`` in the lemma.
Lemmas are number-neutral, so that agreement repaired after a swap is not a change: plural
nouns and 3rd-person verbs get their base form, forms of be/have/do ``be``/``have``/``do``,
"they/them/their/these/those/another" ``it/it/its/this/that/other``, and gender-neutral:
"she" ``he``, "him/her/hers" ``his``, "herself" ``himself``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LEXICON_DIR = Path(__file__).parent / "lexicon"

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:[-][A-Za-z0-9]+)*(?:['’](?!s\b)[A-Za-z]+)?|['’]s\b|[^\sA-Za-z0-9]")
_IRREGULAR_NOUNS = {
    "men": "man", "women": "woman", "people": "person", "children": "child", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "knives": "knife", "leaves": "leaf",
    "shelves": "shelf", "wolves": "wolf", "calves": "calf", "loaves": "loaf", "halves": "half",
    "oxen": "ox", "kids": "kid", "scarves": "scarf", "wives": "wife", "lives": "life",
}
_AUX_LEMMAS = {"is": "be", "are": "be", "was": "be", "were": "be", "am": "be", "been": "be",
               "being": "be", "has": "have", "had": "have", "does": "do", "did": "do"}
_NUMBER_NEUTRAL = {"they": "it", "them": "it", "their": "its", "theirs": "its", "themselves": "itself",
                   "these": "this", "those": "that", "another": "other"}
"""Words that change with the number of what they refer to, mapped to one lemma."""
_GENDER_NEUTRAL = {"she": "he", "him": "his", "her": "his", "hers": "his", "herself": "himself"}
"""Pronouns that change with the gender of what they refer to, mapped to one lemma: agreement
repaired after a replacement ("a man ... behind him" -> "a woman ... behind her") is not a change."""
_OTHER = frozenset({"other", "another"})
_PENN_TO_TAG = {"NN": "NOUN", "JJ": "ADJ", "VB": "VERB", "RB": "ADV", "CD": "NUM", "MD": "AUX", "IN": "PREP",
                "CC": "CONJ", "DT": "DET", "PR": "PRON"}
NP_TAGS = frozenset({"DET", "NUM", "ADJ", "NOUN"})
"""Tags of the words of a noun phrase."""


def _load(name: str) -> dict:
    with open(LEXICON_DIR / name, encoding="utf-8") as f:
        return json.load(f)


@dataclass(frozen=True)
class Lexicon:
    """The word lists, grouped by category (categories drive rule-based replacements)."""

    noun_categories: dict
    adjective_categories: dict
    antonyms: dict
    synonym_groups: dict
    hypernyms: frozenset
    verbs: frozenset
    irregular_verbs: dict
    function_words: dict

    @property
    def nouns(self) -> frozenset:
        return frozenset(w for ws in self.noun_categories.values() for w in ws)

    @property
    def adjectives(self) -> frozenset:
        return frozenset(w for ws in self.adjective_categories.values() for w in ws)


@lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    nouns = _load("nouns.json")["nouns"]
    adjectives = _load("adjectives.json")
    meaning = _load("meaning.json")
    words = _load("words.json")
    antonyms: dict[str, set] = {}
    for a, b in adjectives["antonyms"]:
        antonyms.setdefault(a, set()).add(b)
        antonyms.setdefault(b, set()).add(a)
    synonym_groups = {}
    for i, group in enumerate(meaning["synonyms"]):
        for w in group:
            synonym_groups.setdefault(w, set()).add(i)
    return Lexicon(
        noun_categories={k: tuple(v) for k, v in nouns.items()},
        adjective_categories={k: tuple(v) for k, v in adjectives["adjectives"].items()},
        antonyms={k: tuple(sorted(v)) for k, v in antonyms.items()},
        synonym_groups=synonym_groups,
        hypernyms=frozenset(meaning["hypernyms"]),
        verbs=frozenset(words["verbs"]),
        irregular_verbs=dict(words["irregular_verbs"]),
        function_words={k: frozenset(v) for k, v in words["function_words"].items()},
    )


@lru_cache(maxsize=1)
def _sets():
    lex = load_lexicon()
    nouns, adjectives = lex.nouns, lex.adjectives
    compounds = {tuple(w.split("_")): w for w in nouns | adjectives if "_" in w}
    return lex, nouns, adjectives, compounds


@lru_cache(maxsize=1)
def _word_sets() -> tuple[frozenset, frozenset, frozenset]:
    """(the lexicon's nouns, adjectives and verbs; its function words of every kind; those but
    the relations), built once."""
    lex, nouns, adjectives, _ = _sets()
    closed = frozenset().union(*lex.function_words.values())
    return nouns | adjectives | lex.verbs, closed, closed - lex.function_words["relation"]


@lru_cache(maxsize=1 << 16)
def lemma(word: str) -> str:
    """Lower-cased, number-neutral base form: plural nouns and 3rd-person verbs to the
    singular/base form, forms of be/have/do to ``be``/``have``/``do``, plural pronouns and
    determiners to the singular ones. Compounds keep their ``_``."""
    w = word.lower().replace(" ", "_")
    lex, nouns, adjectives, _ = _sets()
    if w in _IRREGULAR_NOUNS:
        return _IRREGULAR_NOUNS[w]
    if w in _NUMBER_NEUTRAL:
        return _NUMBER_NEUTRAL[w]
    if w in _GENDER_NEUTRAL:
        return _GENDER_NEUTRAL[w]
    if w.endswith("_of"):  # a quantity phrase: "bunches_of" -> "bunch_of"
        return lemma(w[:-3]) + "_of"
    if w in _AUX_LEMMAS:
        return _AUX_LEMMAS[w]
    if w in lex.irregular_verbs:
        return lex.irregular_verbs[w]
    if "_" in w:
        head, _, last = w.rpartition("_")
        return f"{head}_{lemma(last)}"
    known, closed, _ = _word_sets()
    if w in known:  # the lexicon lists some plurals ("trees", "oranges"): their lemma is still the singular
        singular = (w[:-3] + "y" if w.endswith("ies") else w[:-2] if w.endswith(("oes", "shes", "ches", "sses", "xes"))
                    else w[:-1])
        return singular if w.endswith("s") and not w.endswith("ss") and singular in nouns else w
    if len(w) <= 3 or w in closed:
        return w
    if w.endswith("s"):  # a plural noun or a 3rd-person verb the lexicon does not know
        forms = _dictionary_lemmas(w) or _oov_noun_lemmas(w)  # "parasailers" -> "parasailer"
        return (forms.get("NOUN") or forms.get("VERB") or (w,))[0]
    return w


def inflect_noun(noun: str, plural: bool) -> str:
    """``noun`` (a lemma, compounds with ``_`` or a space) in the singular or the plural, spelt
    with spaces ("living_room" -> "living rooms", "person" -> "people")."""
    from lemminflect import getInflection

    words = noun.replace("_", " ").split()
    if plural:
        irregular = {v: k for k, v in _IRREGULAR_NOUNS.items()}
        words[-1] = irregular.get(words[-1]) or (getInflection(words[-1], "NNS") or (words[-1] + "s",))[0]
    return " ".join(words)


@lru_cache(maxsize=1 << 16)
def _dictionary_lemmas(word: str) -> dict:
    """{universal POS: lemmas} of ``word`` in LemmInflect's dictionary (NIH SPECIALIST lexicon)."""
    from lemminflect import getAllLemmas

    return getAllLemmas(word)  # (cached, so shared by every caller: read it, never change it)


def _oov_noun_lemmas(word: str) -> dict:
    """{"NOUN": lemmas} of a word outside LemmInflect's dictionary, by its rules for unknown words."""
    from lemminflect import getAllLemmasOOV

    return getAllLemmasOOV(word, "NOUN")


@dataclass(frozen=True)
class Token:
    text: str  # as written in the caption (compounds keep their inner space)
    lower: str  # lower-cased, compounds joined by "_"
    lemma: str
    tag: str

    @property
    def is_word(self) -> bool:
        return self.tag != "PUNCT"


def split_words(text: str) -> list[str]:
    """Words and punctuation marks of ``text``, in order."""
    return _TOKEN_RE.findall(text)


def _is_quantity(word: str) -> bool:
    return lemma(word) in load_lexicon().function_words["quantity"]


@lru_cache(maxsize=1)
def _compound_starts() -> frozenset:
    """The first words of the lexicon's multi-word nouns and adjectives."""
    return frozenset(parts[0] for parts in _sets()[3])


def _merge_compounds(words: list[str], keep_apart: frozenset = frozenset()) -> list[str]:
    """Join multi-word nouns of the lexicon ("teddy bear") and quantity phrases ("couple of");
    the compounds of ``keep_apart`` (lexicon spellings, "teddy_bear") stay separate words."""
    _, _, _, compounds = _sets()
    starts = _compound_starts()
    lowers = [w.lower() for w in words]
    out, i = [], 0
    while i < len(words):
        if i + 1 < len(words) and lowers[i + 1] == "of" and _is_quantity(lowers[i]):
            out.append(f"{words[i]} {words[i + 1]}")
            i += 2
            continue
        for n in (3, 2) if lowers[i] in starts else ():
            if i + n <= len(words):
                parts = lowers[i:i + n]
                key = tuple(parts[:-1] + [lemma(parts[-1])])
                joined = compounds.get(tuple(parts)) or compounds.get(key)
                if joined is not None and joined not in keep_apart:
                    out.append(" ".join(words[i:i + n]))
                    i += n
                    break
        else:
            out.append(words[i])
            i += 1
    return out


@lru_cache(maxsize=1 << 16)
def _lexical_classes(w: str, lem: str) -> frozenset[str]:
    lex, nouns, adjectives, _ = _sets()
    classes = set()
    if w in nouns or lem in nouns or w in _IRREGULAR_NOUNS:
        classes.add("NOUN")
    if w in adjectives:
        classes.add("ADJ")
    if lem in lex.verbs or w in lex.irregular_verbs or _verb_stem(w) in lex.verbs:
        classes.add("VERB")
    return frozenset(classes)


def _verb_stem(w: str) -> str:
    for suffix, repl in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("d", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)] + repl
            if stem in load_lexicon().verbs:
                return stem
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in load_lexicon().verbs:
                return stem[:-1]  # doubled consonant: sitting, running
    return w


@lru_cache(maxsize=1)
def _brill_parser():
    from textblob.en import parser

    return parser


def is_number(word: str) -> bool:
    """A cardinal number word ("two", "twelve"): Brill's lexicon tags it CD."""
    return _brill_parser().lexicon.get(word) == "CD"


def _after_preposition(tags: list[str], i: int) -> bool:
    """Whether the noun phrase that ends before ``i`` follows a preposition: "on a motorcycle"."""
    start = i - 1
    while start > 0 and tags[start - 1] in {"NOUN", "ADJ", "NUM", "DET"}:
        start -= 1
    return start > 0 and tags[start - 1] == "PREP"


def _can_be_singular_noun(word: str) -> bool:
    """Whether ``word`` is a base form (not "-ing", "-ed") with a noun reading in LemmInflect's dictionary."""
    return (bool(word) and lemma(word) == word and not word.endswith(("ing", "ed"))
            and "NOUN" in _dictionary_lemmas(word))


def _has_finite_verb(tags: list[str], words: list[str]) -> bool:
    """Whether a verb tagged so far is finite (not "-ing", "-ed", "-en": "two men riding on a ...")."""
    return any(t in {"VERB", "AUX"} and not w.endswith(("ing", "ed", "en")) for t, w in zip(tags, words))


@lru_cache(maxsize=1)
def _agents() -> frozenset:
    categories = load_lexicon().noun_categories
    return frozenset(categories["person"]) | frozenset(categories["animal"])


def _is_agent(word_lemma: str) -> bool:
    """Whether a noun names a person or an animal (the lexicon's categories): an "-ing" word right
    after it is what it does ("a man skiing down", "a woman shopping with"), not a compound's head
    ("a hotel building with")."""
    return word_lemma in _agents()


def _is_plural_noun(word: str, word_tag: str) -> bool:
    return word_tag == "NOUN" and lemma(word) != word


@lru_cache(maxsize=1 << 16)
def is_known_word(word: str) -> bool:
    """Whether ``word`` is an English word: in the domain lexicon, in Brill's lexicon, or in
    LemmInflect's dictionary (a decoder can spell non-words from word pieces: "axiosi")."""
    w = word.lower()
    if "_" in w or "-" in w or w.isdigit() or not w.isalpha():
        return True  # compounds, numbers, punctuation: judged elsewhere
    lex, nouns, _, _ = _sets()
    if w in _word_sets()[0] or lemma(w) in nouns or lemma(w) in lex.verbs:
        return True
    return w in _brill_parser().lexicon or bool(_dictionary_lemmas(w))


_CLASS_PENN_TAGS = {"NOUN": ("NN",), "NOUNS": ("NNS",), "ADJ": ("JJ", "CD")}


@lru_cache(maxsize=None)
def words_of_class(word_class: str, domain_only: bool = False) -> frozenset:
    """Whole English words of one class, for a decoder that must write a real word: ``"NOUN"``
    singular nouns, ``"NOUNS"`` plural nouns, ``"ADJ"`` modifiers (adjectives and number words):
    the lower-case, letters-only words of Brill's lexicon (textblob, MIT; the Penn tag each word
    has most often: NN, NNS, JJ/CD) and the domain lexicon's nouns (by number) and adjectives
    (with ``domain_only``, the domain lexicon's alone); ``"QUANTITY"`` the domain lexicon's
    quantity phrases with a countable singular noun ("group of", "pair of"; not "lots of",
    "plenty of"), which take a
    singular determiner's place as the caption's did ("a group of people" -> "a pair of people")."""
    if word_class == "QUANTITY":
        from lemminflect import getAllInflections

        brill = _brill_parser().lexicon  # a countable singular noun: NN, with a plural of its own
        return frozenset(f"{w} of" for w in load_lexicon().function_words["quantity"]
                         if brill.get(w) == "NN" and set(getAllInflections(w).get("NNS", ())) - {w})
    if word_class not in _CLASS_PENN_TAGS:
        raise ValueError(f"word_class {word_class!r}: expected one of {sorted(_CLASS_PENN_TAGS) + ['QUANTITY']}")
    penn = _CLASS_PENN_TAGS[word_class]
    words = set() if domain_only else {w for w, t in _brill_parser().lexicon.items()
                                       if t in penn and w.isalpha() and w.islower() and len(w) > 1}
    _, nouns, adjectives, _ = _sets()
    if word_class == "ADJ":
        words.update(w for w in adjectives if w.isalpha())
    else:
        words.update(w for w in nouns if w.isalpha() and (lemma(w) == w) == (word_class == "NOUN"))
    return frozenset(words)


def brill_tags(words: list[str]) -> list[str]:
    """Tags (our tag set) of Brill's tagger in context, for lower-cased ``words``; words it
    does not know get its suffix rules, and anything without a counterpart ``NOUN``."""
    tagged = _brill_parser().find_tags([w.replace("_", " ") for w in words])
    return [_PENN_TO_TAG.get(penn[:2], "NOUN") for _, penn in tagged]


def tag_words(words: list[str], keep_apart: frozenset = frozenset()) -> list[Token]:
    """Tag a list of words (from :func:`split_words`); compounds are merged first, but for those
    of ``keep_apart`` (see :func:`_merge_compounds`)."""
    lex, _, _, _ = _sets()
    fw = lex.function_words
    words = _merge_compounds(words, keep_apart)
    lowers = [w.lower().replace(" ", "_") for w in words]
    lemmas = [lemma(w) for w in lowers]
    brill = brill_tags(lowers)
    # first pass: the word's classes in the lexicon, or Brill's tag in context
    closed = _word_sets()[1]
    closed_but_relations = _word_sets()[2]
    first, known = [], []
    for w, lem, guess in zip(lowers, lemmas, brill):
        known.append(_lexical_classes(w, lem))
        if not re.match(r"[a-z0-9]", w):
            first.append({"PUNCT"})
        elif w.isdigit() or (lem.endswith("_of") and lem[:-3] in fw["quantity"]):
            first.append({"NUM"})
        elif w in closed and not known[-1] and w not in fw["quantity"]:  # ("a number 41 bus": without "of", a noun)
            first.append({"FUNC"})
        elif "-" in w and w.endswith(("ed", "ing")) and not known[-1]:
            first.append({"ADJ"})  # a compound modifier: "snow-covered", "meat-filled", "long-haired"
        else:
            first.append(known[-1] or {guess if guess in {"NOUN", "ADJ", "VERB", "ADV"} else "NOUN"})
    tags: list[str] = []
    for i, (w, lem) in enumerate(zip(lowers, lemmas)):
        prev_w = lowers[i - 1] if i else ""
        prev_tag = tags[i - 1] if i else ""
        nxt = first[i + 1] if i + 1 < len(words) else set()
        next_w = lowers[i + 1] if i + 1 < len(words) else ""
        next_nominal = bool(nxt & {"NOUN", "ADJ"})
        at_end = not next_w or nxt == {"PUNCT"}  # the end of the caption or punctuation next
        if w in {"'s", "’s"}:
            tags.append("POSS")  # the possessive marker ends a noun phrase: "a woman's head"
        elif first[i] == {"PUNCT"}:
            tags.append("PUNCT")
        elif (w in fw["num"] and not next_nominal and prev_tag == "DET" and "NOUN" in _dictionary_lemmas(w)
              and (at_end or next_w in closed)):
            tags.append("NOUN")  # a quantity word as a determiner's head: "hugs a pair", "a couple sit"
        elif (w in fw["num"] and not next_nominal and not is_number(w) and "NOUN" not in known[i]
              and (at_end or next_w in closed)):
            tags.append("PRON")  # a quantifier without its noun: "some are sitting", "they are all in a room"
        elif w.isdigit() and prev_w in {"a", "an"} and "NOUN" not in nxt:
            tags.append("NOUN")  # a number after a singular article, without a noun: what it names ("a 747 flying")
        elif first[i] == {"NUM"} or (w in fw["num"] and (next_nominal or not ("NOUN" in known[i] or w == "one"))):
            tags.append("NUM")  # (a quantifier that is a noun, without its noun, is one: "a couple sit")
        elif w in fw["relation"] and (not known[i] - {"NOUN"} or next_w == "of"):
            # "to the left of" -> REL; "his left hand", "the front door" -> ADJ
            tags.append("ADJ" if next_nominal and next_w != "of" else "REL")
        elif w in _OTHER:
            tags.append("ADJ" if next_nominal else "PRON")  # "two other cows", "another cow"; "each other"
        elif w in fw["det"] and (w != "her" or next_nominal or "NUM" in nxt
                                 or prev_tag in {"", "PREP"} and _can_be_singular_noun(next_w)):
            # "her" is a possessive before a nominal or a number, and before a word that can be a noun after a
            # preposition (whose object takes no bare verb) or at the start: "her two lambs", "with her display
            # in a hand"; otherwise an object: "looks at her", "watches her play tennis"
            tags.append("DET")
        elif w in fw["aux"] and not ("NOUN" in known[i] and prev_tag == "NOUN"
                                     and next_w not in fw["adv"] | {"not", "n't"}
                                     and not ("VERB" in nxt and lemmas[i + 1] == next_w
                                              and not next_w.endswith(("ing", "ed")))
                                     and next_w not in {"be", "have"}):
            # (not a modal without a verb's base form after it, the head of a compound: "a trash can in the
            # corner", "a soda can stands"; "a car can be seen" is the modal)
            tags.append("AUX")
        elif (w in fw["prep"] | fw["adv"] and w != "of" and not known[i] and prev_tag in {"DET", "NUM", "ADJ"}
              and nxt == {"NOUN"}):
            tags.append("ADJ")  # between a determiner and its head noun, a modifier: "an outside market"
        elif w in fw["prep"] and not known[i] & {"NOUN", "ADJ"}:
            tags.append("PREP")
        elif w in fw["conj"]:
            tags.append("CONJ")
        elif w in fw["pron"] and not known[i] & {"NOUN", "ADJ"}:
            tags.append("PRON")
        elif w in fw["adv"] and (not known[i] or brill[i] == "ADV" and prev_tag == "NOUN"
                                 and (at_end or next_w in fw["prep"])):
            tags.append("ADV")  # (a noun too, read as Brill reads it after a noun: "hit a ball back to")
        else:
            classes = first[i]
            after_det = prev_tag in {"DET", "NUM", "ADJ"}
            participle = w.endswith(("ing", "ed", "en"))
            # the base form right after a singular noun cannot be its verb ("a girl hold"): a word that can be
            # a noun there, with Brill's noun tag in context or an auxiliary after it, is part of a compound
            # ("a baseball bat on", "a sushi roll sitting", "a television set is", "a fruit stand sits"; but
            # "watching a man play tennis")
            compound_head = (prev_tag == "NOUN" and lemmas[i - 1] == lowers[i - 1] and w == lem and not participle
                             # after a preposition's object, the base form may be the verb of an earlier subject
                             # ("two men on a motorcycle wave at"), unless a verb or a noun follows it or
                             # the clause has its verb ("a man calls for a land line")
                             and (nxt & {"NOUN", "VERB"} or next_w in fw["aux"] or not _after_preposition(tags, i)
                                  or _has_finite_verb(tags, lowers))
                             and ("NOUN" in classes or "NOUN" in _dictionary_lemmas(w))
                             and (brill[i] == "NOUN" and next_w not in fw["det"] | fw["num"] | fw["pron"]
                                  or next_w in fw["aux"]
                                  # or the subject's verb follows: "a fruit stand sits", "a table set lies"
                                  or next_w.endswith("s") and lemmas[i + 1] != next_w and "VERB" in nxt
                                  and not _has_finite_verb(tags, lowers)))
            if compound_head:
                tag = "NOUN"
            elif (w.endswith("s") and lem != w and "VERB" in classes | {brill[i]} and next_w in fw["det"] | fw["num"]
                  and prev_tag == "ADJ" and (tags[i - 2] if i > 1 else "") in {"", "PREP", "CONJ", "PUNCT"}):
                tag = "VERB"  # after an adjective used as a noun, with an object: "the referee in green grabs the ball"
            elif len(classes) == 1:
                tag = next(iter(classes))
                past_participle = w.endswith(("ed", "en")) or w in lex.irregular_verbs
                if tag == "VERB" and brill[i] == "NOUN" and (
                        nxt == {"NOUN"} and prev_tag in {"", "DET", "NUM", "ADJ", "PREP", "CONJ", "PUNCT"}
                        or prev_tag == "NOUN" and w.endswith("ing") and not next_nominal
                        and next_w not in fw["det"] | fw["num"] and "NOUN" in _dictionary_lemmas(w)
                        and not _is_agent(lemmas[i - 1])
                        or prev_tag == "PREP" and prev_w != "to" and not participle):
                    tag = "NOUN"  # Brill's tag in context: "in dress shirts", "a large cruise building sits"
                elif tag == "VERB" and participle and nxt == {"NOUN"} and prev_tag in {"", "PREP", "CONJ", "PUNCT"}:
                    tag = "ADJ"  # a participle before its noun: "blossoming trees", "of differing quality"
                elif (tag == "VERB" and past_participle and nxt == {"NOUN"} and prev_tag == "NOUN"
                      and (tags[i - 2] if i > 1 else "") in {"", "DET", "NUM", "ADJ", "CONJ", "PREP", "PUNCT"}):
                    tag = "ADJ"  # a hyphenless compound modifier: "a tree filled forest", "a horse drawn cart"
                elif tag == "ADJ" and not next_nominal and (
                        brill[i] == "NOUN" and prev_tag in {"DET", "PREP"}
                        or prev_tag == "DET" and "NOUN" in _dictionary_lemmas(w)
                        and (at_end or next_w in closed_but_relations)
                        and next_w not in {"and", "or", ",", "-", "one", "ones"}):
                    # an adjective's spelling used as a head noun: "a man in uniform", "kicks a male"
                    tag = "NOUN"
                elif tag == "VERB" and after_det:
                    # "a sleeping cat", "a parked car"; "a building", "a slice"
                    tag = "ADJ" if next_nominal and w.endswith(("ing", "ed", "en")) else "NOUN"
                elif tag == "VERB" and w.endswith("ed") and next_nominal and prev_tag not in {"NOUN", "PRON"}:
                    tag = "ADJ"  # "parked cars"
                elif (tag == "NOUN" and prev_tag == "NOUN" and w.endswith("ing")
                      and _is_agent(lemmas[i - 1]) and "VERB" in _dictionary_lemmas(w)):
                    # what a person or an animal does, a word the lexicon does not list, with or without an
                    # object: "a man jogging", "an elephant spraying water"
                    tag = "VERB"
                elif tag == "NOUN" and prev_tag in {"NOUN", "PRON", "CONJ"} and w.endswith("s") and lem != w and (
                        next_w in fw["det"] | fw["num"] or nxt == {"ADJ"}
                        or not known[i] and (next_nominal or next_w in fw["prep"])
                        and not _has_finite_verb(tags, lowers)):
                    # an "-s" word between two noun phrases: "a man flies a kite", "shorts bends over"; a word
                    # the lexicon does not know, only if the clause has no verb yet ("are eating bread crumbs on")
                    tag = "VERB"
                elif (tag == "NOUN" and not w.endswith("s") and _is_plural_noun(lowers[i - 1] if i else "", prev_tag)
                      and (next_w in fw["det"] | fw["num"] | fw["prep"] or not next_w)
                      and "VERB" in _dictionary_lemmas(w)):
                    tag = "VERB"  # a plain verb after a plural subject: "three dogs bark at a cat"
            elif next_w in {"and", "or"} and brill[i] in classes:
                tag = brill[i]  # coordination: "an orange and white cat"
            elif next_nominal and "ADJ" in classes:
                tag = "ADJ"
            elif (prev_tag == "NOUN" and brill[i] == "NOUN" and "NOUN" in classes and w.endswith("ing")
                  and not next_nominal and next_w not in fw["det"] | fw["num"] and not _is_agent(lemmas[i - 1])):
                tag = "NOUN"  # Brill's tag in context, a noun-noun compound: "a high rise building in"
            elif after_det and "NOUN" in classes:
                tag = "NOUN"
            elif prev_tag in {"NOUN", "PRON", "AUX"} or prev_w == "to":
                tag = "VERB" if "VERB" in classes else ("ADJ" if "ADJ" in classes else "NOUN")
            elif "NOUN" in classes:
                tag = "NOUN"
            elif "ADJ" in classes:
                tag = "ADJ"
            elif "VERB" in classes:
                tag = "VERB"
            else:
                tag = "ADV"  # a function word in an unexpected place ("out", "up")
            if tag == "ADV" and prev_tag == "DET" and nxt == {"NOUN"}:
                tag = "ADJ"  # between a determiner and its head noun, a modifier: "an upright umbrella"
            tags.append(tag)
    # between a determiner and its head noun, adverbs and particles are a modifier: "an upside down umbrella"
    for i, t in enumerate(tags):
        if t == "DET":
            end = i + 1
            while end < len(tags) and tags[end] in {"ADV", "PREP"}:
                end += 1
            if end > i + 2 and end < len(tags) and tags[end] == "NOUN":
                tags[i + 1:end] = ["ADJ"] * (end - i - 1)
    _find_finite_verbs(tags, lowers, lemmas, known)
    return [Token(t, w, lem, tag) for t, w, lem, tag in zip(words, lowers, lemmas, tags)]


_SINGULAR_DETS = frozenset({"a", "an", "every"})
SINGULAR_DETERMINERS = _SINGULAR_DETS | {"one", "each", "another"}
"""Determiners of a singular noun: with a plural head noun and no quantity or number between,
a phrase disagrees ("a baby elephants")."""
_NOT_AN_OBJECT = frozenset({"each", "every", "no", "that", "this"})
"""Determiners that can follow a noun phrase without starting an object of its verb: "the dogs
each", "a bed that has" (a relative pronoun)."""


def _can_be_finite_verb(word: str, word_lemma: str) -> bool:
    """A present-tense form (base or "-s") that LemmInflect's dictionary lists as a verb."""
    return (word == word_lemma or word.endswith("s")) and "VERB" in _dictionary_lemmas(word)


def _find_finite_verbs(tags: list[str], lowers: list[str], lemmas: list[str], known: list[set]) -> None:
    """A clause's verb read as part of its subject, found by agreement and by the phrase after it
    (in place). A noun phrase is read left to right, so a present-tense verb that is also a noun
    ("lights", "pilots", "train") was taken as its head or a modifier. Two contradictions show it:

    - a singular determiner ("a", "an", "every"; no quantity word after it) whose
      phrase ends in a plural: its "-s" word with a verb reading is the verb ("a man lights up a
      cigarette", "a ship boards people"; not "a sports car", "a bus");
    - a noun phrase followed at once by a determiner or a number, not after a verb (a verb's two
      objects: "gives a dog a bone"): its last word, a present-tense verb form, is the verb ("a
      couple pilots a jet", "the fish spear a man").

    The word before the verb becomes its subject's head noun if it can be a noun ("a baby nuzzles
    its mother": "baby" was a modifier; "a couple pilots a jet": "couple" was a quantity)."""
    n = len(tags)
    for i in range(n):
        if tags[i] not in {"DET", "NUM"} or (i and tags[i - 1] in {"DET", "NUM", "ADJ", "NOUN"}):
            continue
        end = i + 1
        while end < n and tags[end] in {"NUM", "ADJ", "NOUN"}:
            end += 1
        body = range(i + 1, end)
        if len(body) < 2:
            continue
        verb = None
        last = end - 1
        if (lowers[i] in _SINGULAR_DETS and all(tags[k] != "NUM" for k in body)
                and lemmas[last] != lowers[last] and not lowers[last].endswith("_of")):
            verb = next((k for k in body[1:] if lowers[k].endswith("s") and lemmas[k] != lowers[k]
                         and _can_be_finite_verb(lowers[k], lemmas[k])), None)
        if (verb is None and end < n and (i == 0 or tags[i - 1] not in {"VERB", "AUX"})
                and (tags[end] == "DET" and lowers[end] not in _NOT_AN_OBJECT or tags[end] == "NUM"
                     and is_number(lowers[end])) and _can_be_finite_verb(lowers[last], lemmas[last])):
            verb = last
        if verb is None:
            continue
        tags[verb] = "VERB"
        before = verb - 1
        if tags[before] in {"ADJ", "NUM"} and ("NOUN" in known[before] or "NOUN" in _dictionary_lemmas(lowers[before])):
            tags[before] = "NOUN"


def tag(text: str) -> list[Token]:
    """Tokenize and tag a caption."""
    return tag_words(split_words(text))


def _coordinates_modifiers(tokens: list[Token], i: int) -> bool:
    """Whether the "and"/"or" at ``i`` joins modifiers of one noun: "a red and white bus",
    "two or three dogs", "ham and cheese sandwiches" (not "a cat and a dog", "cars and buses")."""
    if tokens[i].lower not in {"and", "or"} or i == 0 or i + 1 >= len(tokens):
        return False
    left, right = tokens[i - 1].tag, tokens[i + 1].tag
    if left in {"ADJ", "NUM"}:
        return right in {"ADJ", "NUM", "NOUN"}
    if not (left == "NOUN" and right == "NOUN" and i + 2 < len(tokens) and tokens[i + 2].tag == "NOUN"):
        return False
    # "ham and cheese sandwiches", not "a stove and trash bags" (the article is the left noun's)
    head = tokens[i + 2]
    start = i - 1
    while start > 0 and tokens[start - 1].tag in NP_TAGS:
        start -= 1
    return not (tokens[start].lower in {"a", "an"} and head.lemma != head.lower)


def modifies_adjective(tokens: list[Token], i: int) -> bool:
    """Whether ``tokens[i]`` is an adverb of degree before an adjective: "an extremely small car",
    "a nearly empty bowl" (the adverb is part of the adjective phrase, so of the noun phrase)."""
    return tokens[i].tag == "ADV" and i + 1 < len(tokens) and tokens[i + 1].tag == "ADJ"


def noun_phrases(tokens: list[Token]) -> list[tuple[int, int]]:
    """[start, end) spans of the noun phrases of ``tokens``: runs of determiners, quantifiers,
    adjectives (with their adverbs of degree) and nouns (with coordinated modifiers) that hold a
    noun. The last noun of a span is its head; nouns before it are modifiers ("park" in "park bench")."""
    spans, start = [], None
    for i in range(len(tokens) + 1):
        inside = i < len(tokens) and (tokens[i].tag in NP_TAGS
                                      or (start is not None and _coordinates_modifiers(tokens, i))
                                      or modifies_adjective(tokens, i))
        if inside and start is not None and tokens[i].tag == "DET" and any(t.tag == "NOUN" for t in tokens[start:i]):
            spans.append((start, i))  # a determiner starts the next phrase: "feeds a horse an apple"
            start = None
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            end = i
            while end > start and tokens[end - 1].tag in {"CONJ", "DET"}:
                end -= 1
            if any(tokens[k].tag == "NOUN" for k in range(start, end)):
                spans.append((start, end))
            start = None
    return spans


def mark_modifiers(tokens: list[Token]) -> list[Token]:
    """``tokens`` with the nouns used as modifiers ("chocolate" in "chocolate doughnut", "peanut
    butter" in "peanut butter and jelly sandwiches") tagged ``ADJ``: only the head of a noun
    phrase is a noun for the rules."""
    out = list(tokens)
    for start, end in noun_phrases(tokens):
        head = max(k for k in range(start, end) if tokens[k].tag == "NOUN")
        for k in range(start, head):
            if tokens[k].tag == "NOUN":
                out[k] = Token(tokens[k].text, tokens[k].lower, tokens[k].lemma, "ADJ")
    return out


def detokenize(words: list[str]) -> str:
    """Join words back into text (no space before punctuation, "a"/"an" fixed)."""
    out = ""
    for i, w in enumerate(words):
        if i and not re.match(r"[.,!?;:)'’]", w) and not out.endswith(("(", "-")):
            out += " "
        out += w
    return out


def fix_articles(words: list[str]) -> list[str]:
    """Make "a"/"an" agree with the word that follows (keeps capitalisation)."""
    out = list(words)
    for i in range(len(out) - 1):
        if out[i].lower() in {"a", "an"}:
            an = out[i + 1][:1].lower() in "aeiou" and not out[i + 1].lower().startswith(("uni", "use", "one", "eu"))
            new = "an" if an else "a"
            out[i] = new.capitalize() if out[i][0].isupper() else new
    return out
