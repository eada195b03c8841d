"""Word lists and a small heuristic part-of-speech tagger for captions.

No tagger model is downloaded: the lexicon (``degla/generation/lexicon/*.json``) covers
COCO-style everyday scenes and "shapes world" captions (colours, sizes, textures, shapes,
spatial relations); unknown words are tagged from suffixes and their neighbours, and default
to nouns (the open class of captions). Tags:

``NOUN ADJ NUM VERB ADV REL DET PREP CONJ PRON AUX PUNCT``

``NUM`` holds numerals and quantifiers ("two", "several"), ``REL`` the nouns of spatial
relations ("left" in "to the left of"). Multi-word nouns ("hot dog", "teddy bear") are one
token, joined by a space in the text and by ``_`` in the lexicon.
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
_ADJ_SUFFIXES = ("ous", "ful", "ive", "able", "ible", "ic", "less", "ish", "ese", "ern")


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


def lemma(word: str) -> str:
    """Lower-cased base form: plural nouns and 3rd-person verbs to the singular/base form,
    forms of be/have/do to ``be``/``have``/``do``. Compounds keep their ``_``."""
    w = word.lower().replace(" ", "_")
    lex, nouns, adjectives, _ = _sets()
    if w in _IRREGULAR_NOUNS:
        return _IRREGULAR_NOUNS[w]
    if w in _AUX_LEMMAS:
        return _AUX_LEMMAS[w]
    if w in lex.irregular_verbs:
        return lex.irregular_verbs[w]
    if "_" in w:
        head, _, last = w.rpartition("_")
        return f"{head}_{lemma(last)}"
    known = nouns | adjectives | lex.verbs
    if w in known or len(w) <= 3 or any(w in s for s in lex.function_words.values()):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    for suffix in ("sses", "shes", "ches", "xes", "zes", "oes"):
        if w.endswith(suffix) and w[:-2] in known | {w[:-2]} and not w[:-1] in known:
            return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
        return w[:-1]
    return w


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


def _merge_compounds(words: list[str]) -> list[str]:
    _, _, _, compounds = _sets()
    out, i = [], 0
    while i < len(words):
        for n in (3, 2):
            if i + n <= len(words):
                parts = [w.lower() for w in words[i:i + n]]
                key = tuple(parts[:-1] + [lemma(parts[-1])])
                if tuple(parts) in compounds or key in compounds:
                    out.append(" ".join(words[i:i + n]))
                    i += n
                    break
        else:
            out.append(words[i])
            i += 1
    return out


def _lexical_classes(w: str, lem: str) -> set[str]:
    lex, nouns, adjectives, _ = _sets()
    classes = set()
    if w in nouns or lem in nouns or w in _IRREGULAR_NOUNS:
        classes.add("NOUN")
    if w in adjectives:
        classes.add("ADJ")
    if lem in lex.verbs or w in lex.irregular_verbs or _verb_stem(w) in lex.verbs:
        classes.add("VERB")
    return classes


def _verb_stem(w: str) -> str:
    for suffix, repl in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("d", "")):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)] + repl
            if stem in load_lexicon().verbs:
                return stem
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[:-1] in load_lexicon().verbs:
                return stem[:-1]  # doubled consonant: sitting, running
    return w


def _guess_unknown(w: str) -> str:
    if w.endswith("ly") and len(w) > 4:
        return "ADV"
    if w.endswith("ing") and len(w) > 4:
        return "VERB"
    if w.endswith("ed") and len(w) > 4:
        return "VERB"
    if w.endswith(_ADJ_SUFFIXES) and len(w) > 5:
        return "ADJ"
    return "NOUN"


def tag_words(words: list[str]) -> list[Token]:
    """Tag a list of words (from :func:`split_words`); compounds are merged first."""
    lex, _, _, _ = _sets()
    fw = lex.function_words
    words = _merge_compounds(words)
    lowers = [w.lower().replace(" ", "_") for w in words]
    lemmas = [lemma(w) for w in lowers]
    # first pass: context-free guesses
    closed = set().union(*fw.values())
    first, known = [], []
    for w, lem in zip(lowers, lemmas):
        known.append(_lexical_classes(w, lem))
        if not re.match(r"[a-z0-9]", w):
            first.append({"PUNCT"})
        elif w.isdigit():
            first.append({"NUM"})
        elif w in closed and not known[-1]:
            first.append({"FUNC"})
        else:
            first.append(known[-1] or {_guess_unknown(w)})
    tags: list[str] = []
    for i, (w, lem) in enumerate(zip(lowers, lemmas)):
        prev_w = lowers[i - 1] if i else ""
        prev_tag = tags[i - 1] if i else ""
        nxt = first[i + 1] if i + 1 < len(words) else set()
        next_w = lowers[i + 1] if i + 1 < len(words) else ""
        next_nominal = bool(nxt & {"NOUN", "ADJ"})
        if first[i] == {"PUNCT"}:
            tags.append("PUNCT")
        elif first[i] == {"NUM"} or (w in fw["num"] and not (w == "one" and not next_nominal)):
            tags.append("NUM")
        elif w in fw["relation"] and not known[i] - {"NOUN"}:
            # "to the left of" -> REL; "his left hand", "the front door" -> ADJ
            tags.append("ADJ" if next_nominal and next_w != "of" else "REL")
        elif w in fw["det"] and not (w == "her" and not next_nominal):
            tags.append("DET")
        elif w in fw["aux"]:
            tags.append("AUX")
        elif w in fw["prep"] and not known[i] & {"NOUN", "ADJ"}:
            tags.append("PREP")
        elif w in fw["conj"]:
            tags.append("CONJ")
        elif w in fw["pron"] and not known[i] & {"NOUN", "ADJ"}:
            tags.append("PRON")
        elif w in fw["adv"] and not known[i]:
            tags.append("ADV")
        else:
            classes = first[i]
            after_det = prev_tag in {"DET", "NUM", "ADJ"}
            if len(classes) == 1:
                tag = next(iter(classes))
                if tag == "VERB" and after_det:
                    # "a sleeping cat", "a parked car"; "a building", "a slice"
                    tag = "ADJ" if next_nominal and w.endswith(("ing", "ed", "en")) else "NOUN"
                elif tag == "VERB" and w.endswith("ed") and next_nominal and prev_tag not in {"NOUN", "PRON"}:
                    tag = "ADJ"  # "parked cars"
                elif tag == "NOUN" and not known[i] and prev_tag in {"NOUN", "PRON", "CONJ"} and w.endswith("s") and (
                        next_nominal or next_w in fw["det"] | fw["prep"]):
                    tag = "VERB"  # unknown "-s" word between two noun phrases: "a man flies a kite"
            elif next_nominal and "ADJ" in classes:
                tag = "ADJ"
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
            tags.append(tag)
    return [Token(t, w, lem, tag) for t, w, lem, tag in zip(words, lowers, lemmas, tags)]


def tag(text: str) -> list[Token]:
    """Tokenize and tag a caption."""
    return tag_words(split_words(text))


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
