"""Checks that a rewrite obeys its rule and is a real negative, and parsing of LLM replies.

:func:`validate_negative` returns ``None`` for an accepted negative, otherwise one of
:data:`REASONS`:

- ``empty``: nothing left after parsing.
- ``identical``: same words as the caption up to case, punctuation, articles and inflection.
- ``too_long``: more than twice the caption's length (a reply that rambles on).
- ``addition`` / ``deletion``: the caption's words all kept (in any order), some added (the
  paper's hard positive "the cat is eating the hot food") / some removed (a less specific,
  still true caption).
- ``words_changed``: a reshuffle or swap that did not keep the bag of words.
- ``no_swap``: the words of the rule's class kept their places (something else moved).
- ``wrong_word_class``: words other than the rule's class were moved or replaced.
- ``meaning_preserved``: an exchange across "and"/"next to" (symmetric), a clause moved
  around a comma, a synonym or a hypernym ("dog" -> "animal") as the only replacement.
- ``reordered``: a "replacement" that only moved the caption's own words (a swap).
- ``too_many_changes``: a replacement that rewrote more than a few words.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher

from .lexicon import Token, load_lexicon, tag
from .rules import check_rule

REASONS = (
    "empty", "identical", "too_long", "addition", "deletion", "words_changed", "no_swap",
    "wrong_word_class", "meaning_preserved", "reordered", "too_many_changes",
)
ARTICLES = frozenset({"a", "an", "the"})
SYMMETRIC = frozenset({("and",), ("or",), ("next", "to"), ("beside",), ("near",), ("by",), ("alongside",), ("close", "to"),
                       ("and", "a"), ("opposite",), ("across", "from")})
"""Words between two exchanged units that make the exchange meaning-preserving."""
_ADJ_CLASS = frozenset({"ADJ", "NUM"})
_NOUN_CLASS = frozenset({"NOUN"})
_NP_TAGS = frozenset({"DET", "NUM", "ADJ", "NOUN"})


def _words(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.is_word and t.lower not in ARTICLES]


def _is_subsequence(short: list, long: list) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _slots(tokens: list[Token], unit_tags: frozenset, drop_tags: frozenset):
    """Split ``tokens`` into a skeleton (lemmas of the other words) and the units of
    ``unit_tags`` attached to skeleton positions: {slot: sorted unit words}."""
    skeleton, units = [], {}
    for t in tokens:
        if t.tag == "PUNCT":
            continue
        if t.tag in unit_tags:
            units.setdefault(len(skeleton), []).append(t.lemma)
        elif t.tag not in drop_tags:
            skeleton.append(t.lemma)
    return skeleton, {k: sorted(v) for k, v in units.items()}


def _chunks(tokens: list[Token]):
    """Skeleton with noun phrases (runs of DET/NUM/ADJ/NOUN holding a noun) as units: the
    unit of each phrase is its nouns."""
    skeleton, units, run = [], {}, []

    def close():
        if any(t.tag == "NOUN" for t in run):
            units.setdefault(len(skeleton), []).append(" ".join(t.lemma for t in run if t.tag != "DET"))
        else:
            skeleton.extend(t.lemma for t in run if t.tag != "DET")
        run.clear()

    for t in tokens:
        if t.tag in _NP_TAGS:
            run.append(t)
        else:
            close()
            if t.tag != "PUNCT":
                skeleton.append(t.lemma)
    close()
    return skeleton, {k: sorted(v) for k, v in units.items()}


def _changed_slots(orig, neg):
    """Slots whose units differ, or None when the skeletons or the multisets of units differ."""
    (skel_o, units_o), (skel_n, units_n) = orig, neg
    flat = lambda units: Counter(u for us in units.values() for u in us)  # noqa: E731
    if skel_o != skel_n or flat(units_o) != flat(units_n):
        return None
    return sorted(k for k in set(units_o) | set(units_n) if units_o.get(k) != units_n.get(k)), skel_o


def _symmetric_exchange(changed: list[int], skeleton: list[str]) -> bool:
    """Two units exchanged across only "and"/"or"/"next to"/... ("a cat and a dog"), or two
    modifiers of the same noun exchanged across such words ("a red car next to a blue car"):
    the meaning is kept."""
    if len(changed) != 2:
        return False
    s1, s2 = changed
    if tuple(skeleton[s1:s2]) in SYMMETRIC:
        return True
    return s2 < len(skeleton) and skeleton[s1] == skeleton[s2] and tuple(skeleton[s1 + 1:s2]) in SYMMETRIC


def _check_swap(ct: list[Token], nt: list[Token], unit_tags: frozenset) -> str | None:
    if unit_tags == _NOUN_CLASS:
        nouns_o = [t.lemma for t in ct if t.tag == "NOUN"]
        if nouns_o == [t.lemma for t in nt if t.tag == "NOUN"]:
            return "no_swap"  # the nouns kept their order (at most their number changed)
    analyses = []
    if unit_tags == _NOUN_CLASS:
        analyses.append((_slots(ct, unit_tags, frozenset({"DET", "NUM"})), _slots(nt, unit_tags, frozenset({"DET", "NUM"}))))
        analyses.append((_chunks(ct), _chunks(nt)))
    else:
        analyses.append((_slots(ct, unit_tags, frozenset({"DET"})), _slots(nt, unit_tags, frozenset({"DET"}))))
    reason = "wrong_word_class"
    for orig, neg in analyses:
        result = _changed_slots(orig, neg)
        if result is None:
            continue
        changed, skeleton = result
        if not changed:
            reason = "no_swap"
            continue
        if _symmetric_exchange(changed, skeleton):
            return "meaning_preserved"
        return None
    return reason


def _clauses(tokens: list[Token]) -> list[tuple]:
    out, cur = [], []
    for t in tokens:
        if t.lower in {",", ";"}:
            out.append(tuple(cur))
            cur = []
        elif t.is_word and t.lower not in ARTICLES:
            cur.append(t.lemma)
    out.append(tuple(cur))
    return [c for c in out if c]


def _check_reshuffle(ct: list[Token], nt: list[Token]) -> str | None:
    clauses_o, clauses_n = _clauses(ct), _clauses(nt)
    if len(clauses_o) > 1 and sorted(clauses_o) == sorted(clauses_n):
        return "meaning_preserved"  # clauses moved around a comma
    result = _changed_slots(_chunks(ct), _chunks(nt))
    if result is not None and _symmetric_exchange(*result):
        return "meaning_preserved"
    return None


def _same_meaning(old: list[Token], new: list[Token]) -> bool:
    lex = load_lexicon()
    if len(new) == 1 and new[0].lemma in lex.hypernyms:
        return True
    if len(old) == 1 and len(new) == 1:
        a, b = old[0].lemma, new[0].lemma
        return bool(lex.synonym_groups.get(a, set()) & lex.synonym_groups.get(b, set()))
    return False


def _check_replace(ct: list[Token], nt: list[Token], word_class: frozenset) -> str | None:
    a, b = _words(ct), _words(nt)
    ops = [op for op in SequenceMatcher(None, [t.lemma for t in a], [t.lemma for t in b], autojunk=False).get_opcodes()
           if op[0] != "equal"]
    free = frozenset({"DET", "NUM"}) - word_class  # number words may change along with a replaced noun
    n_old = n_new = 0
    real_change = False
    for _, i1, i2, j1, j2 in ops:
        old, new = a[i1:i2], b[j1:j2]
        if any(t.tag not in word_class | free for t in old + new):
            return "wrong_word_class"
        old_c = [t for t in old if t.tag in word_class]
        new_c = [t for t in new if t.tag in word_class]
        n_old += len(old_c)
        n_new += len(new_c)
        if old_c and new_c and not _same_meaning(old_c, new_c):
            real_change = True
    content = sum(t.tag in {"NOUN", "ADJ", "VERB", "NUM"} for t in a)
    if n_old > max(3, content // 2) or n_new > n_old + 2:
        return "too_many_changes"
    if not real_change:
        if n_old and n_new:
            return "meaning_preserved"
        return "addition" if n_new else ("deletion" if n_old else "wrong_word_class")
    return None


def _modifiers_as_adjectives(tokens: list[Token]) -> list[Token]:
    """Nouns used as modifiers ("chocolate" in "chocolate doughnut", "park" in "park bench") are
    attributes: retag them ADJ for the adjective rules."""
    out = list(tokens)
    for i, t in enumerate(tokens[:-1]):
        if t.tag == "NOUN" and tokens[i + 1].tag == "NOUN":
            out[i] = Token(t.text, t.lower, t.lemma, "ADJ")
    return out


def validate_negative(caption: str, negative: str | None, rule: str) -> str | None:
    """Check that ``negative`` is a valid rewrite of ``caption`` under ``rule``.

    Returns:
        ``None`` when accepted, otherwise the reason of the rejection (one of :data:`REASONS`).
    """
    check_rule(rule)
    if negative is None or not re.search(r"[A-Za-z0-9]", negative):
        return "empty"
    ct, nt = tag(caption), tag(negative)
    cw, nw = [t.lower for t in ct if t.is_word], [t.lower for t in nt if t.is_word]
    cl, nl = [t.lemma for t in _words(ct)], [t.lemma for t in _words(nt)]
    if cw == nw or cl == nl:
        return "identical"
    if len(nw) > 2 * len(cw) + 4:
        return "too_long"
    bag_c, bag_n = Counter(cl), Counter(nl)
    if bag_c == bag_n:
        if rule in ("replace_adjectives", "replace_nouns"):
            return "reordered"  # same words in another order: a reshuffle or swap, not a replacement
    elif _is_subsequence(cl, nl) or not bag_c - bag_n:
        return "addition"
    elif _is_subsequence(nl, cl) or not bag_n - bag_c:
        return "deletion"
    if rule in ("swap_adjectives", "replace_adjectives"):
        ct, nt = _modifiers_as_adjectives(ct), _modifiers_as_adjectives(nt)
    if rule in ("reshuffle", "swap_nouns", "swap_adjectives"):
        if bag_c != bag_n:
            return "words_changed"
        if rule == "reshuffle":
            return _check_reshuffle(ct, nt)
        return _check_swap(ct, nt, _NOUN_CLASS if rule == "swap_nouns" else _ADJ_CLASS)
    return _check_replace(ct, nt, _NOUN_CLASS if rule == "replace_nouns" else _ADJ_CLASS)


_PREFIX_RE = re.compile(
    r"^\s*(?:(?:here(?:'s| is)|sure[,!.]?|okay[,!.]?|ok[,!.]?)[^:\n]*:\s*|"
    r"(?:the\s+)?(?:rewritten|new|negative|modified|output|answer|result|rewrite|caption|sentence)"
    r"(?:\s+(?:caption|sentence|text))?\s*(?:\d+\s*)?:\s*)",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’`«»<>*"


def parse_reply(reply: str | None) -> str | None:
    """Extract the rewritten caption from an LLM reply.

    Strips "Rewritten caption:"-style prefixes, chatty preambles ("Sure! Here is ...:"),
    list markers, quotes, angle brackets and markdown, keeps the first caption line, and
    drops an echoed ``original -> rewrite`` left side or a trailing "(explanation)".
    Returns None when nothing is left.
    """
    if not reply:
        return None
    for line in reply.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith(":") and not _PREFIX_RE.sub("", line).strip(" :"):
            continue  # "Rewritten caption:" alone on its line
        if re.match(r"^(?:sure|okay|ok|here|certainly)\b", line, re.IGNORECASE) and line.endswith(":"):
            continue
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line)
        for _ in range(2):
            line = _PREFIX_RE.sub("", line).strip()
        for arrow in ("->", "→", "=>"):
            if arrow in line:
                line = line.split(arrow)[-1]
        line = re.sub(r"\s*\((?:[^()]*)\)\s*$", "", line.strip())
        line = line.strip().strip(_QUOTES).strip()
        line = re.sub(r"\s+", " ", line)
        if re.search(r"[A-Za-z]", line):
            return line
    return None
