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
- ``ungrammatical``: a noun phrase English does not allow that the caption did not have
  (:func:`malformed_phrases`): "a group of adult elephants" -> "a baby elephants" (the quantity
  moved, the article stayed), "a large two sky", "an and white dog", "a nearly bowl".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import chain, combinations

from .lexicon import (SINGULAR_DETERMINERS, Token, is_known_word, is_number, lemma, load_lexicon, mark_modifiers,
                      modifies_adjective, noun_phrases, split_words, tag_words)
from .rules import check_rule

REASONS = (
    "empty", "identical", "too_long", "addition", "deletion", "words_changed", "no_swap",
    "wrong_word_class", "meaning_preserved", "reordered", "too_many_changes", "ungrammatical",
)
ARTICLES = frozenset({"a", "an", "the"})
SYMMETRIC = frozenset({("and",), ("or",), ("next", "to"), ("beside",), ("near",), ("by",), ("alongside",),
                       ("close", "to"), ("and", "a"), ("opposite",), ("across", "from")})
"""Words between two exchanged units that make the exchange meaning-preserving."""
_ADJ_CLASS = frozenset({"ADJ", "NUM"})


def _words(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.is_word and t.lower not in ARTICLES]


def _is_subsequence(short: list, long: list) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _slots(tokens: list[Token], unit_tags: frozenset, drop_tags: frozenset, group_runs: bool = False):
    """Split ``tokens`` into a skeleton (lemmas of the other words) and the units of
    ``unit_tags`` attached to skeleton positions: {slot: sorted units}. A unit is one word, or
    with ``group_runs`` a run of adjacent words ("snow board")."""
    skeleton, units, run = [], {}, []

    def close():
        if run:
            units.setdefault(len(skeleton), []).append(" ".join(run))
            run.clear()

    for t in tokens:
        if t.tag == "PUNCT":
            continue
        if t.tag in unit_tags:
            run.append(t.lemma)
            if not group_runs:
                close()
        else:
            close()
            if t.tag not in drop_tags:
                skeleton.append(t.lemma)
    close()
    return skeleton, {k: sorted(v) for k, v in units.items()}


def _noun_slots(tokens: list[Token], unit_tags: frozenset, drop_tags: frozenset) -> set[int]:
    """The skeleton positions (as in :func:`_slots`) that hold a noun."""
    skeleton_tags = [t.tag for t in tokens if t.tag != "PUNCT" and t.tag not in unit_tags and t.tag not in drop_tags]
    return {k for k, t in enumerate(skeleton_tags) if t == "NOUN"}


def _of_joints(tokens: list[Token], spans: list[tuple[int, int]]) -> list[int]:
    """Positions of the "of" words that join two of ``spans``: "a plate of food"."""
    return [start - 1 for (_, end), (start, _) in zip(spans, spans[1:]) if end + 1 == start
            and tokens[start - 1].lower == "of"]


def _merge_of(tokens: list[Token], spans: list[tuple[int, int]],
              joints: frozenset | None = None) -> list[tuple[int, int]]:
    """``spans`` with "NP of NP" joined into one span ("a plate of food", "a type of meat"): at
    every "of", or at the positions ``joints`` only."""
    joinable = set(_of_joints(tokens, spans))
    if joints is not None:
        joinable &= joints
    merged = []
    for start, end in spans:
        if merged and start - 1 in joinable:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _chunks(tokens: list[Token], join_of: bool | frozenset = False):
    """Skeleton with noun phrases as units: the unit of a phrase is its words other than
    determiners (quantifiers, modifiers and head); with ``join_of``, "NP of NP" is one unit (at
    every "of", or at the positions of the set ``join_of``)."""
    skeleton, units, spans = [], {}, noun_phrases(tokens)
    if join_of:
        spans = _merge_of(tokens, spans, None if join_of is True else join_of)
    starts = {start: end for start, end in spans}
    i = 0
    while i < len(tokens):
        if i in starts:
            phrase = [t.lemma for t in tokens[i:starts[i]] if t.tag not in {"DET", "CONJ", "PUNCT"} and t.lower != "of"]
            units.setdefault(len(skeleton), []).append(" ".join(phrase))
            i = starts[i]
            continue
        if tokens[i].tag != "PUNCT":
            skeleton.append(tokens[i].lemma)
        i += 1
    return skeleton, {k: sorted(v) for k, v in units.items()}


def _changed_slots(orig, neg):
    """Slots whose units differ, or None when the skeletons or the multisets of units differ."""
    (skel_o, units_o), (skel_n, units_n) = orig, neg
    flat = lambda units: Counter(u for us in units.values() for u in us)  # noqa: E731
    if skel_o != skel_n or flat(units_o) != flat(units_n):
        return None
    return sorted(k for k in set(units_o) | set(units_n) if units_o.get(k) != units_n.get(k)), skel_o


def _in_order(slots) -> list[str]:
    """The units of a ``_slots``/``_chunks`` analysis in caption order."""
    return [u for k in sorted(slots[1]) for u in slots[1][k]]


def _symmetric_exchange(changed: list[int], skeleton: list[str], units_o: dict, units_n: dict) -> bool:
    """Two units exchanged across only "and"/"or"/"next to"/... ("a cat and a dog"), or two
    modifiers of the same noun exchanged across such words ("a red car next to a blue car"):
    the meaning is kept. Both slots must trade all they hold: "an adult giraffe and two baby
    giraffes" -> "two adult giraffes and a baby giraffe" moves only the number."""
    if len(changed) != 2:
        return False
    s1, s2 = changed
    if units_o.get(s1) != units_n.get(s2) or units_o.get(s2) != units_n.get(s1):
        return False
    if tuple(skeleton[s1:s2]) in SYMMETRIC:
        return True
    return s2 < len(skeleton) and skeleton[s1] == skeleton[s2] and tuple(skeleton[s1 + 1:s2]) in SYMMETRIC


_JOINT = "JOINT"
"""The tag, for the swap rules only, of an "and"/"or" between two modifiers of one noun."""


def _mark_joints(tokens: list[Token]) -> list[Token]:
    """``tokens`` with the "and"/"or" between two modifiers of one noun tagged :data:`_JOINT`, so
    that the swap analysis can leave it out: "black and white" may move with its noun's other
    modifiers ("the black and white photo ... a large crate" -> "the large photo ... a black and
    white crate")."""
    out = []
    for i, t in enumerate(tokens):
        if t.tag == "CONJ" and 0 < i < len(tokens) - 1 and {tokens[i - 1].tag, tokens[i + 1].tag} <= _ADJ_CLASS:
            t = Token(t.text, t.lower, t.lemma, _JOINT)
        elif modifies_adjective(tokens, i):
            t = Token(t.text, t.lower, t.lemma, "ADJ")  # an adverb of degree moves with its adjective: "well decorated"
        out.append(t)
    return out


_MAX_OF_JOINTS = 3


def _partly_joined(ct: list[Token], nt: list[Token]):
    """Noun-phrase analyses of both sides where some "NP of NP" are one unit and others two, each
    side chosen apart: "a bag of groceries on the seat of a car" -> "a car on the seat of a bag of
    groceries" moves the whole first phrase into the second's complement. Captions with more than
    :data:`_MAX_OF_JOINTS` joints are left to the other analyses."""
    joints_c, joints_n = _of_joints(ct, noun_phrases(ct)), _of_joints(nt, noun_phrases(nt))
    if not (joints_c and joints_n) or max(len(joints_c), len(joints_n)) > _MAX_OF_JOINTS:
        return
    subsets = lambda joints: [frozenset(c) for k in range(1, len(joints)) for c in combinations(joints, k)]  # noqa: E731
    subsets_c, subsets_n = subsets(joints_c), subsets(joints_n)
    if not (subsets_c or subsets_n):
        return  # one joint on each side: joined, or not, everywhere (the other analyses)
    for sub_c in subsets_c or [frozenset(joints_c)]:
        for sub_n in subsets_n or [frozenset(joints_n)]:
            if len(sub_c) == len(sub_n):
                yield _chunks(ct, join_of=sub_c), _chunks(nt, join_of=sub_n)


def _check_swap(ct: list[Token], nt: list[Token], rule: str) -> str | None:
    """``swap_nouns``: head nouns, compound nouns ("snow boards") or whole noun phrases exchanged
    places; ``swap_adjectives``: modifiers (adjectives, participles, quantifiers, modifier nouns)
    moved between nouns. The rest of the caption is unchanged up to agreement."""
    marked_c, marked_n = mark_modifiers(ct), mark_modifiers(nt)
    if rule == "swap_nouns":
        nouns, no_numbers = frozenset({"NOUN"}), frozenset({"DET", "NUM"})
        phrases_c, phrases_n = _chunks(marked_c), _chunks(marked_n)
        if _in_order(phrases_c) == _in_order(phrases_n):
            return "no_swap"  # every noun phrase kept its place: something else moved
        analyses = [(_slots(marked_c, nouns, no_numbers), _slots(marked_n, nouns, no_numbers)),  # head nouns
                    (_slots(ct, nouns, no_numbers, group_runs=True), _slots(nt, nouns, no_numbers, group_runs=True)),
                    (phrases_c, phrases_n),  # compound nouns ("snow boards"), noun phrases
                    (_chunks(marked_c, join_of=True), _chunks(marked_n, join_of=True))]  # "a plate of food"
        analyses = chain(analyses, _partly_joined(marked_c, marked_n))  # (built only when the others fail)
    else:
        no_articles = frozenset({"DET"})
        no_joints = frozenset({"DET", _JOINT})
        analyses = [(_slots(marked_c, _ADJ_CLASS, no_articles), _slots(marked_n, _ADJ_CLASS, no_articles)),
                    (_slots(_mark_joints(marked_c), _ADJ_CLASS, no_joints),  # "a black and white photo"
                     _slots(_mark_joints(marked_n), _ADJ_CLASS, no_joints))]
    reason = "wrong_word_class"
    for orig, neg in analyses:
        result = _changed_slots(orig, neg)
        if result is None:
            continue
        changed, skeleton = result
        if rule == "swap_nouns" and {k: len(v) for k, v in orig[1].items()} != {k: len(v) for k, v in neg[1].items()}:
            continue  # a noun left its place for one that held none: the sentence was rebuilt, not swapped
        if (rule == "swap_adjectives"
                and not set(neg[1]) <= set(orig[1]) | _noun_slots(marked_n, _ADJ_CLASS, no_articles)):
            continue  # a modifier moved to where no modifier was and no noun follows
        if not changed:
            reason = "no_swap"
            continue
        if _symmetric_exchange(changed, skeleton, orig[1], neg[1]):
            return "meaning_preserved"
        return None
    return reason


_MIN_SHARED = 2
"""The shortest run of words (:func:`_read_alike`) whose reading a swap carries to the other side."""


def _shared_runs(a: list[Token], b: list[Token]):
    """Maximal runs of at least :data:`_MIN_SHARED` words written alike in ``a`` and ``b``, as
    ``(start in a, start in b, length)``, punctuation excluded."""
    for j in range(len(b)):
        for i in range(len(a)):
            if i and j and a[i - 1].lower == b[j - 1].lower and a[i - 1].is_word:
                continue  # not maximal: the run starts earlier
            n = 0
            while i + n < len(a) and j + n < len(b) and a[i + n].is_word and a[i + n].lower == b[j + n].lower:
                n += 1
            if n >= _MIN_SHARED:
                yield i, j, n


def _read_alike(source: list[Token], target: list[Token]) -> list[Token] | None:
    """``target`` with every run of words it shares with ``source`` (:func:`_shared_runs`) that
    holds a noun on one side tagged as ``source`` tags it, or None when nothing changes: a swap
    moves a phrase, and a phrase moved is the same phrase ("a television set is ..." -> "... in
    front of a television set.", where the tagger alone reads the last "set" as a verb)."""
    tags = [t.tag for t in target]
    for i, j, n in _shared_runs(source, target):
        run_s, run_t = source[i:i + n], target[j:j + n]
        if any(t.tag == "NOUN" for t in run_s + run_t):
            tags[j:j + n] = [t.tag for t in run_s]
    if tags == [t.tag for t in target]:
        return None
    return [Token(t.text, t.lower, t.lemma, tag) for t, tag in zip(target, tags)]


def _check_swap_read_alike(ct: list[Token], nt: list[Token], rule: str) -> str | None:
    """:func:`_check_swap`, and when it finds other words than the rule's moved, again with the
    words the two sides share read alike (:func:`_read_alike`), each side's reading in turn."""
    reason = _check_swap(ct, nt, rule)
    if reason != "wrong_word_class":
        return reason
    for alike in ((ct, _read_alike(ct, nt)), (_read_alike(nt, ct), nt)):
        if None not in alike:
            again = _check_swap(*alike, rule)
            if again != "wrong_word_class":
                return again
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
    chunks_o, chunks_n = _chunks(ct), _chunks(nt)
    result = _changed_slots(chunks_o, chunks_n)
    if result is not None and _symmetric_exchange(*result, chunks_o[1], chunks_n[1]):
        return "meaning_preserved"
    return None


def _same_meaning(old: list[str], new: list[str]) -> bool:
    """A hypernym ("dog" -> "animal") or a synonym ("couch" -> "sofa") as the only change."""
    lex = load_lexicon()
    if len(new) == 1 and new[0] in lex.hypernyms:
        # a category's own name is a hypernym only of its members: "dog" -> "animal", not "person" -> "animal"
        named = lex.noun_categories.get(new[0], ())
        return not (named and len(old) == 1 and old[0] not in named and lemma(old[0]) not in named
                    and any(old[0] in ws for ws in lex.noun_categories.values()))

    if len(old) == 1 and len(new) == 1:
        return bool(lex.synonym_groups.get(old[0], set()) & lex.synonym_groups.get(new[0], set()))
    return False


@dataclass(frozen=True)
class _Unit:
    """A word, or a whole noun phrase, of a caption seen by the replacement rules."""

    key: tuple  # lemmas (no determiners): what the alignment compares
    heads: tuple = ()  # the head noun of a noun phrase
    modifiers: tuple = ()  # its quantifiers, adjectives, participles and modifier nouns
    predicative: bool = False  # an adjective outside a noun phrase: "the kitchen is clean"

    @property
    def is_phrase(self) -> bool:
        return bool(self.heads)


def _units(tokens: list[Token]) -> list[_Unit]:
    """Noun phrases as single units ("a slice of pizza", with an "of" complement, is one), every
    other word a unit of its own; articles and punctuation dropped."""
    units, ends = [], dict(_merge_of(tokens, noun_phrases(tokens)))
    i = 0
    while i < len(tokens):
        if i in ends:
            words = [t for t in tokens[i:ends[i]] if t.tag not in {"DET", "CONJ", "PUNCT"} and t.lower != "of"]
            heads = tuple(t.lemma for t in words if t.tag == "NOUN")
            modifiers = tuple(t.lemma for t in words if t.tag != "NOUN")
            units.append(_Unit(tuple(t.lemma for t in words), heads, modifiers))
            i = ends[i]
            continue
        if tokens[i].tag == "ADJ":
            units.append(_Unit((tokens[i].lemma,), modifiers=(tokens[i].lemma,), predicative=True))
        elif tokens[i].is_word and tokens[i].lower not in ARTICLES:
            units.append(_Unit((tokens[i].lemma,)))
        i += 1
    return units


COORDINATORS = frozenset({("and",), ("or",)})


def _check_replace(ct: list[Token], nt: list[Token], rule: str) -> str | None:
    """Noun phrases compared as units: ``replace_nouns`` changes the head noun of one or a few
    phrases (their modifiers may change with it: "a black and white cat" -> "a brown dog");
    ``replace_adjectives`` changes modifiers of phrases whose heads stay."""
    a, b = _units(ct), _units(nt)
    ops = [op for op in SequenceMatcher(None, [u.key for u in a], [u.key for u in b], autojunk=False).get_opcodes()
           if op[0] != "equal"]
    removed = added = 0
    real_change = False
    adjectives = load_lexicon().adjectives
    for _, i1, i2, j1, j2 in ops:
        old, new = a[i1:i2], b[j1:j2]
        if not all(u.is_phrase or u.predicative or u.key in COORDINATORS for u in old + new):
            return "wrong_word_class"  # a verb, a preposition, ... changed (an "and" may come or go with a phrase)
        written = Counter(w for u in new for w in u.key) - Counter(w for u in old for w in u.key)
        if not all(is_known_word(w) for w in written):
            return "wrong_word_class"  # not a word at all ("axiosi")
        heads_o, heads_n = Counter(h for u in old for h in u.heads), Counter(h for u in new for h in u.heads)
        mods_o, mods_n = Counter(m for u in old for m in u.modifiers), Counter(m for u in new for m in u.modifiers)
        changed_heads = (heads_o - heads_n) + (heads_n - heads_o)
        # an attribute named without its noun: "the goalkeeper in orange" -> "in green"
        named_attribute = bool(changed_heads) and all(h in adjectives for h in changed_heads)
        if rule == "replace_nouns":
            if heads_o == heads_n or named_attribute:
                return "wrong_word_class"  # only modifiers or numbers changed: an attribute replacement
            gone, came = heads_o - heads_n, heads_n - heads_o
        else:
            if heads_o != heads_n and not named_attribute:
                return "wrong_word_class"
            words_o, words_n = mods_o + heads_o, mods_n + heads_n
            gone, came = words_o - words_n, words_n - words_o
        removed += sum(gone.values())
        added += sum(came.values())
        if gone and came and not _same_meaning(sorted(gone), sorted(came)):
            real_change = True
    content = sum(t.tag in {"NOUN", "ADJ", "VERB", "NUM"} for t in ct)
    if removed > max(3, content // 2) or added > removed + 2:
        return "too_many_changes"
    if not real_change:
        if removed and added:
            return "meaning_preserved"
        return "addition" if added else ("deletion" if removed else "meaning_preserved")
    return None


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _is_misspelling(wrong: str, word: str) -> bool:
    """Whether ``wrong``, which is not an English word, is ``word`` (or its lemma) misspelt: within
    1 edit (2 for words of 6 letters or more): "whit" -> "white", "bluebery" -> "blueberries"."""
    limit = 1 if len(wrong) < 6 else 2
    return (wrong.isalpha() and word.isalpha() and not is_known_word(wrong) and is_known_word(word)
            and min(_edit_distance(wrong, word), _edit_distance(wrong, lemma(word))) <= limit)


@lru_cache(maxsize=1)
def _closed_words() -> frozenset:
    """Articles and the lexicon's function words."""
    return ARTICLES.union(*load_lexicon().function_words.values())


def fix_spelling(caption_words: list[str], negative_words: list[str]) -> list[str]:
    """``caption_words`` with the misspellings that the rewrite corrects replaced by the rewrite's
    spelling, so that a corrected typo is not a change (a human or an LLM rewriting a caption
    fixes its typos along the way): words that differ only by apostrophes ("it's" -> "its",
    "theres" -> "there's") or by a space between content words ("bath room" -> "bathroom") or
    inside a word that is no English word ("eachother" -> "each other"), and a
    word that is not an English word written as a known word the caption does not have
    ("parcially" -> "partially"; see :func:`_is_misspelling`)."""
    letters = lambda ws: "".join(ws).lower().replace("'", "").replace("’", "")  # noqa: E731
    spellings = {}  # letters -> the rewrite's words (one or two) that spell them
    for n in (1, 2):
        for j in range(len(negative_words) - n + 1):
            spellings.setdefault(letters(negative_words[j:j + n]), negative_words[j:j + n])
    closed = _closed_words()  # "a long" is not "along"
    out, i = [], 0
    while i < len(caption_words):
        for n in (2, 1):
            run = caption_words[i:i + n]
            fixed = spellings.get(letters(run)) if len(run) == n else None
            if (fixed is not None and [w.lower() for w in fixed] != [w.lower() for w in run]
                    and (any(re.search(r"['’]", w) for w in run + fixed)
                         or len(fixed) != len(run) and not any(w.lower() in closed for w in run + fixed)
                         or len(run) == 1 and not is_known_word(run[0]))):
                # "it's" -> "its", "theres" -> "there's", "bath room" -> "bathroom"; a word that is no English
                # word split in two, function words too: "eachother" -> "each other" (but "along" is a word)
                out += fixed
                i += n
                break
        else:
            out.append(caption_words[i])
            i += 1
    present = {w.lower() for w in out}
    written = {w.lower() for w in negative_words}
    new_words = [w for w in negative_words if w.lower() not in present]
    for k, w in enumerate(out):
        if w.lower() not in written:
            fixes = {n for n in new_words if _is_misspelling(w.lower(), n.lower())}
            if len(fixes) == 1:
                out[k] = fixes.pop()
    return out


def _broken_compounds(ct: list[Token], nt: list[Token]) -> frozenset:
    """The lexicon compounds of ``ct`` ("teddy bear") that ``nt`` has fewer of while it has one of
    their words on its own ("a teddy bear" -> "an ornate bear", "a polar bear ... a small pond" ->
    "a small bear ... a polar pond"): the rewrite read them as a modifier and a noun, so both
    sides are read so."""
    compounds = Counter(t.lemma for t in ct if "_" in t.lemma and not t.lemma.endswith("_of"))
    compounds -= Counter(t.lemma for t in nt)
    words = {t.lemma for t in nt}
    return frozenset(c for c in compounds if any(lemma(part) in words for part in c.split("_")))


POSSESSIVES = frozenset({"his", "her", "its", "their", "my", "our", "your"})


def _agreement_neutral(bag: Counter, tokens: list[Token]) -> Counter:
    """``bag`` with the possessive determiners counted as one word: when two noun phrases swap,
    a possessive agrees with its new antecedent ("a couple of guys are sitting with their bag as a
    lady walks on" -> "a lady is sitting with her bag as a couple of guys walk on")."""
    possessives = Counter(t.lemma for t in tokens if t.tag == "DET" and t.lower in POSSESSIVES)
    return bag - possessives + Counter({"<possessive>": sum(possessives.values())})


ORDINALS = frozenset({"first", "second", "third", "fourth", "fifth", "next", "last", "other", "another", "only",
                      "same", "few", "additional", "further"})
"""Postdeterminers (ordinals and general ordinals): the modifiers that may stand before a number ("the first two")."""


def malformed_phrases(tokens: list[Token], degree_adverbs: frozenset[str] = frozenset()) -> Counter:
    """The noun phrases of ``tokens`` that English does not allow, by kind (the determiner, number,
    adjective order of the Penn Treebank noun phrase):

    - ``number``: a singular determiner, with no quantity or number after it, before a plural head
      ("a baby elephants", "one dogs"; not "a few dogs", "a couple of dogs", "a hundred people");
    - ``number_after_modifier``: a cardinal number word after an adjective or noun modifier of its
      phrase that is not the phrase's first word ("a large two sky", "a wii remote two people"; not
      after the postdeterminers of :data:`ORDINALS`, "the first two", nor a quantity noun, "a large
      group of", nor a label, "the old 41 bus"; a first word may be a verb the tagger read as a
      noun, "tries to guide three horses");
    - ``lone_coordinator``: a determiner directly before "and" / "or" ("an and white dog");
    - ``lone_degree_adverb``: one of ``degree_adverbs`` (the caption's adverbs of degree) without an
      adjective after it ("a nearly empty bowl" -> "a nearly bowl")."""
    marked, found = mark_modifiers(tokens), Counter()
    for start, end in noun_phrases(marked):
        head = max(k for k in range(start, end) if marked[k].tag == "NOUN")
        body = marked[start + 1:head]
        if (marked[start].lower in SINGULAR_DETERMINERS and marked[head].lemma != marked[head].lower
                and not any(t.tag == "NUM" or is_number(t.lower) for t in body)):
            found["number"] += 1
        for k in range(start + 1, head):  # a modifier opening its phrase may be a verb read as a noun: "to guide three"
            if is_number(marked[k].lower) and any(t.tag == "ADJ" and t.lower not in ORDINALS
                                                  for t in marked[start + 1:k]):
                found["number_after_modifier"] += 1
                break
    for k, token in enumerate(tokens):
        if token.tag == "DET" and k + 1 < len(tokens) and tokens[k + 1].lower in {"and", "or"}:
            found["lone_coordinator"] += 1
        if token.lower in degree_adverbs and not (k + 1 < len(tokens) and tokens[k + 1].lower in degree_adverbs) \
                and not modifies_adjective(tokens, k):
            found["lone_degree_adverb"] += 1
    return found


def _ungrammatical(caption: list[Token], negative: list[Token]) -> bool:
    """Whether ``negative`` has a kind of :func:`malformed_phrases` more often than ``caption`` (a slip
    the caption had already is not the rewrite's)."""
    degree = frozenset(t.lower for k, t in enumerate(caption) if modifies_adjective(caption, k))
    return bool(malformed_phrases(negative, degree) - malformed_phrases(caption, degree))


def tag_pair(caption: str, negative: str) -> tuple[list[Token], list[Token]]:
    """The caption and its rewrite tagged for comparison: the caption's typos that the rewrite
    corrects fixed (:func:`fix_spelling`), and a lexicon compound that one side breaks up read
    as separate words on both (:func:`_broken_compounds`)."""
    caption_words, negative_words = split_words(caption), split_words(negative)
    caption_words = fix_spelling(caption_words, negative_words)
    ct, nt = tag_words(caption_words), tag_words(negative_words)
    apart = _broken_compounds(ct, nt) | _broken_compounds(nt, ct)
    if any(t.lemma in apart for t in ct):
        ct = tag_words(caption_words, apart)
    if any(t.lemma in apart for t in nt):
        nt = tag_words(negative_words, apart)
    return ct, nt


def validate_negative(caption: str, negative: str | None, rule: str) -> str | None:
    """Check that ``negative`` is a valid rewrite of ``caption`` under ``rule``.

    Returns:
        ``None`` when accepted, otherwise the reason of the rejection (one of :data:`REASONS`).
    """
    check_rule(rule)
    if negative is None or not re.search(r"[A-Za-z0-9]", negative):
        return "empty"
    ct, nt = tag_pair(caption, negative)
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
    if _ungrammatical(ct, nt):
        return "ungrammatical"  # "a group of adult elephants" -> "a baby elephants": the article stayed
    if rule in ("reshuffle", "swap_nouns", "swap_adjectives"):
        if _agreement_neutral(bag_c, ct) != _agreement_neutral(bag_n, nt):
            return "words_changed"
        if rule == "reshuffle":
            return _check_reshuffle(mark_modifiers(ct), mark_modifiers(nt))
        return _check_swap_read_alike(ct, nt, rule)
    return _check_replace(mark_modifiers(ct), mark_modifiers(nt), rule)


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
