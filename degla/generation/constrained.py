"""Decoding constrained by the rewrite rule: the LLM writes the negative, but only in the shape the
rule allows, so that a small model's reply is a rewrite of the caption and not an echo, a copy of
an exemplar or a ramble.

- ``reshuffle`` (:class:`PermutationPlan`): the reply is a permutation of the caption's noun
  phrases and other words ("a flowered umbrella" moves as one). At the first noun phrase's
  place the model must put another one; after that it orders what is left as it likes.
- ``swap_nouns`` (:class:`NounSwapPlan`): the words other than the head nouns stay in order;
  at each head noun's place the model puts one of the caption's head nouns (another one at
  the first), in the number the place shows ("two airplanes ... a sky" -> "two skies ... an
  airplane"). Which noun goes where is the model's choice.
- ``swap_adjectives`` (:class:`ModifierSwapPlan`): the words other than the modifiers stay in
  order; before each head noun the model places modifiers taken from the caption's (a quantity
  phrase, "a group of", stays with its determiner), starting
  differently from the caption at the first noun that had some ("a red car by a white house"
  -> "a white car by a red house", or "a car by a red white house"... which the validator
  then judges); when only the last noun had some, one moves to an earlier noun ("a car by a
  red house" -> "a red car by a house").
- Replace rules (:class:`ReplacementPlan`): the reply is the caption with one word of the
  rule's class (a head noun / a modifier) replaced by one new word that the model writes: a
  whole English word of that class (:func:`~degla.generation.lexicon.words_of_class`: a
  singular or plural noun as the caption's was, an adjective / number word, or a quantity
  phrase for a quantity phrase, "a group of" -> "a pair of"; of the domain
  lexicon, or a common word: one the tokenizer spells as one token), spelt token by
  token along a trie of the words' tokenizations (:class:`WordTrie`), so that the model can
  end the word only where a real word ends (not "smallblue", "manne"); never the caption's
  word, its other forms or its synonyms. The model copies the caption and may leave it at any
  word of the class (it must at the last one); after the new word the rest of the caption
  follows. Which word it writes, and where, is the model's choice (its logits, masked).

Every reply is still checked by :func:`~degla.generation.validation.validate_negative`
(agreement, synonyms, wrong word classes, symmetric exchanges are its business). The plans
work on words; :class:`RuleConstraintLogitsProcessor` turns them into allowed tokens for
``model.generate`` (batched, any number of samples per prompt).
"""

from __future__ import annotations

import re
from collections import Counter

import torch
from transformers import LogitsProcessor

from .lexicon import (SINGULAR_DETERMINERS, Token, detokenize, fix_articles, inflect_noun, lemma, load_lexicon,
                      mark_modifiers, noun_phrases, tag, words_of_class)
from .rules import check_rule

FREE = "<free word>"
"""In an allowed set: one new word of the plan's class there (:meth:`ReplacementPlan.free_class_at`) that is not
the caption's word."""
END = "<end>"
"""In an allowed set: the reply may end here."""
MAX_FREE_WORD_TOKENS = 4
"""A new word of the domain lexicon is at most this many tokens long (longer words are left out of the tries)."""
MAX_RARE_WORD_TOKENS = 1
"""Another new word (of Brill's lexicon only) is at most this many tokens long: byte-pair merges keep frequent
words whole, so a word that takes several tokens is a rare one, and a model that starts a word the class does not
have ("man" for an adjective) would be completed into it ("man" + "iacal")."""


def rule_words(tokens: list[Token], rule: str) -> list[bool]:
    """Which words of the caption the rule moves or replaces: head nouns for ``reshuffle``,
    ``swap_nouns`` and ``replace_nouns``; modifiers (adjectives, participles, quantifiers,
    modifier nouns) for ``swap_adjectives`` and ``replace_adjectives``."""
    classes = {"NOUN"} if check_rule(rule) in ("reshuffle", "swap_nouns", "replace_nouns") else {"ADJ", "NUM"}
    return [t.tag in classes for t in mark_modifiers(tokens)]


class _Plan:
    """The caption as words (lower-cased but for the first), the final punctuation apart. With
    ``phrases``, each noun phrase is one "word" ("a flowered umbrella") that moves as a whole."""

    def __init__(self, caption: str, rule: str, phrases: bool = False):
        self.rule, self.caption = rule, caption
        tokens = tag(caption)
        movable = rule_words(tokens, rule)
        words = [t.text for t in tokens]
        if phrases:
            spans = dict(noun_phrases(mark_modifiers(tokens)))
            grouped, grouped_movable, i = [], [], 0
            while i < len(words):
                end = spans.get(i, i + 1)
                grouped.append(" ".join(words[i:end]))
                grouped_movable.append(any(movable[i:end]))
                i = end
            words, movable = grouped, grouped_movable
        self.final = words.pop() if words and words[-1] in {".", "!", "?"} else None
        if self.final is not None:
            movable.pop()
        self.movable = movable
        self.words = [w if i == 0 and not (w.isupper() and len(w) > 1) else w.lower() for i, w in enumerate(words)]

    def original_at(self, n: int) -> str | None:
        """The caption's word a free word at position ``n`` would replace (None: no free words)."""
        return None

    def finish(self, emitted: list[str]) -> set[str]:
        return {self.final} if self.final is not None and (not emitted or emitted[-1] != self.final) else {END}

    def render(self, emitted: list[str]) -> str:
        words = [w for w in emitted if w != END]
        text = detokenize(fix_articles(words))
        return text[:1].upper() + text[1:]


class PermutationPlan(_Plan):
    """A permutation of the caption's words that puts another word of the rule's class at the
    first such word's place (see the module docstring)."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule, phrases=rule == "reshuffle")
        positions = [i for i, m in enumerate(self.movable) if m]
        self.pivot = positions[0] if positions else None
        self.class_words = Counter(self.words[i].lower() for i in positions)
        first = self.words[self.pivot].lower() if positions else None
        self.applicable = first is not None and any(w != first for w in self.class_words)

    def allowed(self, emitted: list[str]) -> set[str]:
        body = [w.lower() for w in emitted if w != self.final]
        remaining = Counter(w.lower() for w in self.words) - Counter(body)
        if not remaining:
            return self.finish(emitted)
        if len(body) == self.pivot and body == [w.lower() for w in self.words[: self.pivot]]:
            original = self.words[self.pivot].lower()
            options = {w for w in remaining if w in self.class_words and w != original}
        else:
            options = set(remaining)
        if not body:  # the first word keeps the caption's capitalisation
            options = {w.capitalize() if w != "i" else w for w in options}
        return options


class NounSwapPlan(_Plan):
    """``swap_nouns``: the caption's words other than its head nouns stay in order; at each head
    noun's place the model puts one of the caption's head nouns (another one than the caption's
    at the first), each used once, in the number of the place where the caption shows one (its
    noun a plural, or a singular determiner: "two airplanes ... a sky" -> "two skies ... an
    airplane", not "a airplanes"), else in its own."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule)
        self.slots = [k for k, m in enumerate(self.movable) if m]
        tokens = mark_modifiers(tag(caption))[: len(self.words)]
        opening = {k: tokens[start].lower for start, end in noun_phrases(tokens) for k in range(start, end)}
        self.form = {lemma(self.words[k]): self.words[k].lower() for k in self.slots}  # each noun as the caption has it
        self.nouns = Counter(lemma(self.words[k]) for k in self.slots)
        self.plural_at = {k: _number_shown(self.words[k], opening.get(k)) for k in self.slots}
        self.applicable = len(self.nouns) >= 2

    def _at(self, noun: str, k: int) -> str:
        """``noun`` (a lemma) as it is written at slot ``k``."""
        form, plural = self.form[noun], self.plural_at[k]
        return form if plural is None or plural == _is_plural(form) else inflect_noun(noun, plural)

    def allowed(self, emitted: list[str]) -> set[str]:
        body = [w.lower() for w in emitted if w != self.final]
        n = len(body)
        if n >= len(self.words):
            return self.finish(emitted)
        if n not in self.slots:
            options = {self.words[n].lower()}
        else:
            left = +(self.nouns - Counter(lemma(body[k]) for k in self.slots if k < n))
            if n == self.slots[0]:
                left.pop(lemma(self.words[n]), None)
            options = {self._at(noun, n) for noun in left}
        return {w[:1].upper() + w[1:] for w in options} if not emitted else options


class ModifierSwapPlan(_Plan):
    """``swap_adjectives``: the caption's words other than the modifiers stay in order; before each
    head noun the model places modifiers taken from the caption's (any of them, in any order),
    and at the first noun that had modifiers it must start differently (another modifier, or
    none: the modifier moves on); when only the last noun had modifiers, one of them moves to an
    earlier noun. Every modifier is placed by the last noun."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule)
        tokens = mark_modifiers(tag(caption))[: len(self.words)]
        modifier_at = set()
        for start, end in noun_phrases(tokens):
            head = max(k for k in range(start, end) if tokens[k].tag == "NOUN")
            modifier_at.update(k for k in range(start, head) if tokens[k].tag in {"ADJ", "NUM"}
                               and not tokens[k].lemma.endswith("_of"))  # "a group of" is a determiner
        self.skeleton = [w.lower() for k, w in enumerate(self.words) if k not in modifier_at]
        self.heads = [j for j, k in enumerate(k for k in range(len(self.words)) if k not in modifier_at)
                      if tokens[k].tag == "NOUN"]
        self.modifiers = Counter(self.words[k].lower() for k in modifier_at)
        # the first head noun with modifiers, and its first modifier
        firsts = {}
        for k in sorted(modifier_at):
            j = next(j for j in self.heads if j >= k - sum(1 for m in modifier_at if m < k))
            firsts.setdefault(j, self.words[k].lower())
        self.pivot, self.pivot_first = min(firsts.items()) if firsts else (None, None)
        # only the last noun has modifiers: one of them must move to an earlier noun ("a car next to a red
        # house" -> "a red car next to a house"), by the last noun before it
        self.move_back = self.pivot is not None and self.pivot == self.heads[-1]
        self.applicable = bool(self.modifiers) and len(self.heads) >= 2

    def _parse(self, emitted: list[str]):
        """(position in the skeleton, modifiers left, modifiers placed at the current slot)."""
        j, left, here = 0, Counter(self.modifiers), []
        for word in (w.lower() for w in emitted if w != self.final):
            if j < len(self.skeleton) and word == self.skeleton[j]:
                j, here = j + 1, []
            elif left[word]:
                left[word] -= 1
                here.append(word)
        return j, +left, here

    def allowed(self, emitted: list[str]) -> set[str]:
        j, left, here = self._parse(emitted)
        if j == len(self.skeleton):
            return self.finish(emitted)
        if j not in self.heads:
            options = {self.skeleton[j]}
        elif j == self.heads[-1] and left:
            options = set(left)  # the last noun: every modifier left goes here
        elif self.move_back and j == self.heads[-2] and left == self.modifiers:
            options = set(left)  # nothing moved to an earlier noun yet: this one takes a modifier
        else:
            options = set(left) | {self.skeleton[j]}
            if j == self.pivot and not here and not self.move_back:
                options.discard(self.pivot_first)
                if j == self.heads[-1]:
                    options.discard(self.skeleton[j])
        if not emitted:
            options = {w[:1].upper() + w[1:] for w in options}
        return options


class ReplacementPlan(_Plan):
    """The caption with one word of the rule's class replaced by a free new word."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule)
        positions = [i for i, m in enumerate(self.movable) if m]
        self.last = positions[-1] if positions else None
        self.applicable = bool(positions)

    def allowed(self, emitted: list[str]) -> set[str]:
        body = [w for w in emitted if w != self.final]
        n = len(body)
        copied = body == self.words[:n]
        if copied and n < len(self.words):
            if not self.movable[n]:
                return {self.words[n]}
            return {FREE} if n == self.last else {self.words[n], FREE}
        if n >= len(self.words):
            return self.finish(emitted)
        return {self.words[n]}  # after the new word: the rest of the caption

    def original_at(self, n: int) -> str | None:
        return self.words[n] if n < len(self.words) else None

    def free_class_at(self, n: int) -> str:
        """The class of the new word at position ``n`` (:func:`~degla.generation.lexicon.words_of_class`):
        an adjective or number word for ``replace_adjectives``, a quantity phrase for a quantity
        phrase ("a group of people" -> "a pair of people", not "a red people"); for
        ``replace_nouns`` a noun of the caption's number there (plural for plural)."""
        if self.rule != "replace_nouns":
            return "QUANTITY" if _is_quantity_phrase(self.words[n]) else "ADJ"
        word = self.words[n].lower()
        return "NOUNS" if lemma(word) != word else "NOUN"

    def excluded_at(self, n: int) -> frozenset:
        """Lower-cased words the new word at ``n`` must not be: the caption's word, its lemma and
        inflections, and their synonyms in the domain lexicon (the validator rejects them)."""
        from lemminflect import getAllInflections

        original = self.words[n].lower()
        if _is_quantity_phrase(original):  # the caption's quantity in any number: "lots of", "lot of"
            from lemminflect import getAllLemmas

            def noun_lemma(phrase: str) -> str:
                noun = phrase.split()[0]
                return getAllLemmas(noun).get("NOUN", (noun,))[0]

            same = noun_lemma(original)
            return frozenset(w for w in words_of_class("QUANTITY") | {original} if noun_lemma(w) == same)
        base = {original, lemma(original)}
        groups = load_lexicon().synonym_groups
        ids = set().union(*(groups.get(w, set()) for w in base))
        base |= {w for w, g in groups.items() if g & ids and "_" not in w}
        forms = set(base)
        for w in base:
            forms.update(f for fs in getAllInflections(w).values() for f in fs)
        return frozenset(f.lower() for f in forms)


def _is_plural(noun: str) -> bool:
    return lemma(noun) != noun.lower().replace(" ", "_")


def _number_shown(noun: str, opening: str | None) -> bool | None:
    """The number a noun's place shows: plural for a plural noun, singular after a singular
    determiner opening its phrase ("a", "one", "each"), else None (a bare singular: "on grass")."""
    if _is_plural(noun):
        return True
    return False if opening in SINGULAR_DETERMINERS else None


def _is_quantity_phrase(word: str) -> bool:
    """A quantity phrase of the lexicon, one word of a plan ("group of", "couple of")."""
    return word.lower().endswith(" of") and lemma(word.lower().replace(" ", "_")).endswith("_of")


def make_plan(caption: str, rule: str) -> PermutationPlan | ReplacementPlan:
    """The decoding plan of ``rule`` for ``caption`` (check ``.applicable``: a noun swap needs
    two different nouns, a replacement one word of the class)."""
    if check_rule(rule).startswith("replace"):
        return ReplacementPlan(caption, rule)
    if rule == "swap_adjectives":
        return ModifierSwapPlan(caption, rule)
    if rule == "swap_nouns":
        return NounSwapPlan(caption, rule)
    return PermutationPlan(caption, rule)


_PUNCT = re.compile(r"^[^\sA-Za-z0-9]+$")


class WordTrie:
    """The tokenizations of a set of words as a trie of token ids: a decoder that follows it can
    only write one of the words, and only end where one ends. Words are spelt as they follow a
    space (" dog"), or capitalised with none at the start of the reply (``first``: "Dog").

    Attributes:
        children: per node, {token id: child node}; node 0 is the root.
        word: per node, the word that ends there (None: none does).
    """

    def __init__(self, tokenizer, words, first: bool = False, max_tokens: int = MAX_FREE_WORD_TOKENS):
        self.children: list[dict[int, int]] = [{}]
        self.word: list[str | None] = [None]
        words = sorted(words)
        texts = [w[:1].upper() + w[1:] if first else " " + w for w in words]
        for w, ids in zip(words, tokenizer(texts, add_special_tokens=False)["input_ids"]):
            if not ids or len(ids) > max_tokens:
                continue
            node = 0
            for token in ids:
                child = self.children[node].get(token)
                if child is None:
                    child = len(self.children)
                    self.children[node][token] = child
                    self.children.append({})
                    self.word.append(None)
                node = child
            self.word[node] = w
        self.root_ids = torch.tensor(sorted(self.children[0]), dtype=torch.long)

    def find(self, ids) -> int | None:
        """The node that the token ids lead to (None: off the trie)."""
        node = 0
        for token in ids:
            node = self.children[node].get(token)
            if node is None:
                return None
        return node

    def words(self) -> set[str]:
        return {w for w in self.word if w is not None}


class _Vocabulary:
    """Token ids of words (with or without a leading space) and the tries of the new words' classes,
    for one tokenizer (GPT-2 style byte-level BPE or SentencePiece), cached."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token_id
        self.cache: dict[tuple[str, bool], tuple[int, ...]] = {}
        self.tries: dict[tuple[str, bool], WordTrie] = {}
        self.common: dict[str, frozenset] = {}

    def trie(self, word_class: str, first: bool) -> WordTrie:
        """The :class:`WordTrie` of the class's words (built once per tokenizer): the domain lexicon's,
        and the other words of Brill's lexicon that the tokenizer spells in :data:`MAX_RARE_WORD_TOKENS`
        (after a space; frequent words)."""
        key = (word_class, first)
        if key not in self.tries:
            self.tries[key] = WordTrie(self.tokenizer, self.common_words(word_class), first=first)
        return self.tries[key]

    def common_words(self, word_class: str) -> frozenset:
        if word_class not in self.common:
            words = sorted(words_of_class(word_class))
            lexicon = words_of_class(word_class, domain_only=True)
            ids = self.tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
            self.common[word_class] = frozenset(w for w, t in zip(words, ids)
                                                if w in lexicon or len(t) <= MAX_RARE_WORD_TOKENS)
        return self.common[word_class]

    def encode(self, word: str, first: bool) -> tuple[int, ...]:
        key = (word, first)
        if key not in self.cache:
            text = word if first or _PUNCT.match(word) else " " + word
            self.cache[key] = tuple(self.tokenizer.encode(text, add_special_tokens=False))
        return self.cache[key]


class _RowState:
    """Decoding state of one sequence: the words it has emitted and the tokens of the current one."""

    def __init__(self, plan):
        self.plan = plan
        self.emitted: list[str] = []
        self.partial: list[int] = []
        self.free = False  # inside a free word
        self.node: int | None = None  # the free word's node in its trie
        self.done = False
        self.memo: dict[str, tuple] = {}  # per word position: the plan's allowed words and their tokens


class RuleConstraintLogitsProcessor(LogitsProcessor):
    """Masks every token that would leave the plan of each sequence (see the module docstring).

    Args:
        tokenizer: the model's tokenizer.
        plans: one plan per row of the batch, in the order of ``model.generate``'s rows (with
            ``num_return_sequences=k`` each prompt's plan repeated k times).
        vocabulary: a cached :class:`_Vocabulary` of the tokenizer (built when not given).
    """

    def __init__(self, tokenizer, plans: list, vocabulary: _Vocabulary | None = None):
        self.vocab = vocabulary or _Vocabulary(tokenizer)
        self.rows = [_RowState(p) for p in plans]
        self.prompt_length = None
        self._free_slots: dict[tuple[int, int], tuple[WordTrie, frozenset, list[int]]] = {}

    def _free_slot(self, row: _RowState) -> tuple[WordTrie, frozenset, list[int]]:
        """For a free word at the row's position: its trie, the words it must not be, and the
        first tokens it must not start with (the caption's word's; excluded one-token words)."""
        n = len(row.emitted)
        key = (id(row.plan), n)
        if key not in self._free_slots:
            first = n == 0
            trie = self.vocab.trie(row.plan.free_class_at(n), first)
            excluded = row.plan.excluded_at(n)
            banned = {self.vocab.encode(row.plan.original_at(n), first)[0]}  # the free word replaces the caption's
            for word in excluded:
                start = self.vocab.encode(word.capitalize() if first else word, first)[0]
                node = trie.children[0].get(start)
                if node is not None and trie.word[node] in excluded and not trie.children[node]:
                    banned.add(start)
            self._free_slots[key] = trie, excluded, sorted(banned)
        return self._free_slots[key]

    # -- word bookkeeping
    @staticmethod
    def _plan_allowed(row: _RowState) -> set[str]:
        """``row.plan.allowed(row.emitted)``, computed once per word position (``emitted`` only grows)."""
        n = len(row.emitted)
        memo = row.memo.get("allowed")
        if memo is None or memo[0] != n:
            memo = row.memo["allowed"] = (n, row.plan.allowed(row.emitted))
        return memo[1]

    def _candidates(self, row: _RowState) -> dict[tuple[int, ...], str]:
        n = len(row.emitted)
        memo = row.memo.get("candidates")
        if memo is None or memo[0] != n:
            first = not row.emitted
            memo = row.memo["candidates"] = (n, {self.vocab.encode(w, first): w for w in self._plan_allowed(row)
                                                 if w not in (FREE, END)})
        return memo[1]

    def _advance(self, row: _RowState, token: int):
        if row.done:
            return
        if token == self.vocab.eos:
            row.done = True
            return
        if row.free:
            trie = self._free_slot(row)[0]
            child = trie.children[row.node].get(token) if row.node is not None else None
            if child is not None:
                row.partial.append(token)
                row.node = child
                return
            row.emitted.append(self._free_text(row))
            row.partial, row.free, row.node = [], False, None
        partial = row.partial + [token]
        candidates = self._candidates(row)
        if any(seq[: len(partial)] == tuple(partial) for seq in candidates):
            row.partial = partial
            complete = [w for seq, w in candidates.items() if seq == tuple(partial)]
            longer = any(len(seq) > len(partial) and seq[: len(partial)] == tuple(partial) for seq in candidates)
            if complete and not longer:
                row.emitted.append(complete[0])
                row.partial = []
        else:  # the start of a free word
            row.partial, row.free = [token], True
            row.node = self._free_slot(row)[0].children[0].get(token)

    def _free_text(self, row: _RowState) -> str:
        """The free word written so far: the trie's word (lower case), or the decoded tokens."""
        trie = self._free_slot(row)[0]
        word = trie.word[row.node] if row.node is not None else None
        return word or self.vocab.tokenizer.decode(row.partial).strip()

    def _allowed_ids(self, row: _RowState) -> tuple[list[int], bool]:
        """Allowed token ids, and whether any free-word start token is allowed too."""
        if row.done:
            return [self.vocab.eos], False
        if row.free:
            # go on with the word along its trie, or end it where a word that may be written ends:
            # the next caption word / punctuation / the end
            trie, excluded, _ = self._free_slot(row)
            ids = []
            if row.node is not None:
                children = trie.children[row.node]
                ids = [t for t, c in children.items() if trie.children[c] or trie.word[c] not in excluded]
            word = trie.word[row.node] if row.node is not None else None
            if row.node is None or (word is not None and word not in excluded):
                after = row.memo.get("after")
                if after is None or after[0] != len(row.emitted):
                    after = row.memo["after"] = (len(row.emitted), _after(row))
                ids += [seq[0] for seq in self._candidates(after[1])]
                if END in self._plan_allowed(after[1]):
                    ids.append(self.vocab.eos)
            return ids, False
        allowed = self._plan_allowed(row)
        candidates = self._candidates(row)
        n = len(row.partial)
        ids = {seq[n] for seq in candidates if len(seq) > n and list(seq[:n]) == row.partial}
        if not row.partial and END in allowed:
            ids.add(self.vocab.eos)
        free = FREE in allowed and not row.partial
        if free:  # never the caption's own word: its first token is not a free-word start
            ids.difference_update(self._free_slot(row)[2])
        return sorted(ids), free

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        else:
            for row, token in zip(self.rows, input_ids[:, -1].tolist()):
                self._advance(row, token)
        return self.mask_scores(scores)

    def advance(self, i: int, token: int):
        """Row ``i`` has written ``token``."""
        self._advance(self.rows[i], token)

    def forced_token(self, i: int) -> int | None:
        """The one token that row ``i`` may write now (the mask of :meth:`mask_scores` leaves only it
        finite, so that greedy and sampled decoding both pick it whatever the logits), else None."""
        ids, free = self._allowed_ids(self.rows[i])
        if free or len(set(ids)) > 1:
            return None
        return ids[0] if ids else self.vocab.eos

    def mask_scores(self, scores: torch.FloatTensor, rows: list[int] | None = None) -> torch.FloatTensor:
        """``scores`` (one row per plan, or per row index of ``rows``) with every token the plans do not
        allow now at -inf."""
        mask = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows if rows is None else [self.rows[k] for k in rows]):
            ids, free = self._allowed_ids(row)
            if ids:
                mask[i, ids] = 0
            if free:  # the first token of a word of the class, along its trie
                trie, _, banned = self._free_slot(row)
                mask[i, trie.root_ids] = 0
                mask[i, banned] = float("-inf")
            if not ids and not free:
                mask[i, self.vocab.eos] = 0  # nothing fits: end the reply (the validator will say why)
        return scores + mask

    def replies(self) -> list[str]:
        """The reply of each row, rendered from its words."""
        out = []
        for row in self.rows:
            words = list(row.emitted)
            if row.free and row.partial:
                words.append(self._free_text(row))
            out.append(row.plan.render(words))
        return out


def _after(row: _RowState) -> _RowState:
    """The state once the free word being written is finished."""
    state = _RowState(row.plan)
    state.emitted = row.emitted + [FREE]
    return state
