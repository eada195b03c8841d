"""Decoding constrained by the rewrite rule: the LLM writes the negative, but only in the shape the
rule allows, so that a small model's reply is a rewrite of the caption and not an echo, a copy of
an exemplar or a ramble.

- ``reshuffle`` (:class:`PermutationPlan`): the reply is a permutation of the caption's noun
  phrases and other words ("a flowered umbrella" moves as one). At the first noun phrase's
  place the model must put another one; after that it orders what is left as it likes.
- ``swap_nouns`` (:class:`NounSwapPlan`): the words other than the head nouns stay in order;
  at each head noun's place the model puts one of the caption's head nouns (another one at
  the first). Which noun goes where is the model's choice.
- ``swap_adjectives`` (:class:`ModifierSwapPlan`): the words other than the modifiers stay in
  order; before each head noun the model places modifiers taken from the caption's, starting
  differently from the caption at the first noun that had some ("a red car by a white house"
  -> "a white car by a red house", or "a car by a red white house"... which the validator
  then judges).
- Replace rules (:class:`ReplacementPlan`): the reply is the caption with one word of the
  rule's class (a head noun / a modifier) replaced by one new word (at most 2 tokens) that the model writes
  freely. The model copies the caption and may leave it at any word of the class (it must at
  the last one); after the new word the rest of the caption follows. What the new word is, and
  where it goes, is the model's choice.

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

from .lexicon import Token, detokenize, fix_articles, mark_modifiers, noun_phrases, tag
from .rules import check_rule

FREE = "<free word>"
"""In an allowed set: any one new word (letters only) that is not the caption's word there."""
END = "<end>"
"""In an allowed set: the reply may end here."""
MAX_FREE_WORD_TOKENS = 2
"""A new word is at most this many tokens long."""


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
        self.rule = rule
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
    at the first), each used once."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule)
        self.slots = [k for k, m in enumerate(self.movable) if m]
        self.nouns = Counter(self.words[k].lower() for k in self.slots)
        self.applicable = len(self.nouns) >= 2

    def allowed(self, emitted: list[str]) -> set[str]:
        body = [w.lower() for w in emitted if w != self.final]
        n = len(body)
        if n >= len(self.words):
            return self.finish(emitted)
        if n not in self.slots:
            options = {self.words[n].lower()}
        else:
            options = set(+(self.nouns - Counter(body[k] for k in self.slots if k < n)))
            if n == self.slots[0]:
                options.discard(self.words[n].lower())
        return {w[:1].upper() + w[1:] for w in options} if not emitted else options


class ModifierSwapPlan(_Plan):
    """``swap_adjectives``: the caption's words other than the modifiers stay in order; before each
    head noun the model places modifiers taken from the caption's (any of them, in any order),
    and at the first noun that had modifiers it must start differently (another modifier, or
    none: the modifier moves on). Every modifier is placed by the last noun."""

    def __init__(self, caption: str, rule: str):
        super().__init__(caption, rule)
        tokens = mark_modifiers(tag(caption))[: len(self.words)]
        modifier_at = set()
        for start, end in noun_phrases(tokens):
            head = max(k for k in range(start, end) if tokens[k].tag == "NOUN")
            modifier_at.update(k for k in range(start, head) if tokens[k].tag in {"ADJ", "NUM"})
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
        self.applicable = bool(self.modifiers) and len(self.heads) >= 2 and self.pivot != self.heads[-1]

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
        else:
            options = set(left) | {self.skeleton[j]}
            if j == self.pivot and not here:
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


class _Vocabulary:
    """Token ids of words (with or without a leading space) and of the tokens a free word is made
    of, for one tokenizer (GPT-2 style byte-level BPE or SentencePiece)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.eos = tokenizer.eos_token_id
        self.cache: dict[tuple[str, bool], tuple[int, ...]] = {}
        starts, conts = [], []
        for token_id in range(len(tokenizer)):
            text = tokenizer.decode([token_id])
            if re.fullmatch(r" [A-Za-z]+", text):
                starts.append(token_id)
            elif re.fullmatch(r"[A-Za-z]+", text):
                conts.append(token_id)
        self.word_starts = torch.tensor(starts)
        self.word_continuations = torch.tensor(conts)
        self.continuation_set = frozenset(conts)

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
        self.done = False


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

    # -- word bookkeeping
    def _candidates(self, row: _RowState) -> dict[tuple[int, ...], str]:
        first = not row.emitted
        return {self.vocab.encode(w, first): w for w in row.plan.allowed(row.emitted) if w not in (FREE, END)}

    def _advance(self, row: _RowState, token: int):
        if row.done:
            return
        if token == self.vocab.eos:
            row.done = True
            return
        if row.free:
            if token in self.vocab.continuation_set and len(row.partial) < MAX_FREE_WORD_TOKENS:
                row.partial.append(token)
                return
            row.emitted.append(self.vocab.tokenizer.decode(row.partial).strip())
            row.partial, row.free = [], False
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

    def _allowed_ids(self, row: _RowState) -> tuple[list[int], bool]:
        """Allowed token ids, and whether any free-word start token is allowed too."""
        if row.done:
            return [self.vocab.eos], False
        if row.free:
            # go on with the word (up to a length), or end it: the next caption word / punctuation / the end
            nxt = self._candidates(_after(row))
            ids = [seq[0] for seq in nxt]
            if END in row.plan.allowed(row.emitted + [FREE]):
                ids.append(self.vocab.eos)
            return ids, False
        allowed = row.plan.allowed(row.emitted)
        candidates = self._candidates(row)
        n = len(row.partial)
        ids = {seq[n] for seq in candidates if len(seq) > n and list(seq[:n]) == row.partial}
        if not row.partial and END in allowed:
            ids.add(self.vocab.eos)
        free = FREE in allowed and not row.partial
        if free:  # never the caption's own word: its first token is not a free-word start
            original = row.plan.original_at(len(row.emitted))
            if original is not None:
                ids.discard(self.vocab.encode(original, not row.emitted)[0])
        return sorted(ids), free

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        else:
            for row, token in zip(self.rows, input_ids[:, -1].tolist()):
                self._advance(row, token)
        mask = torch.full_like(scores, float("-inf"))
        for i, row in enumerate(self.rows):
            ids, free = self._allowed_ids(row)
            if ids:
                mask[i, ids] = 0
            if row.free and len(row.partial) < MAX_FREE_WORD_TOKENS:
                mask[i, self.vocab.word_continuations] = 0
            if free:
                mask[i, self.vocab.word_starts] = 0
                original = row.plan.original_at(len(row.emitted))
                if original is not None:
                    mask[i, self.vocab.encode(original, not row.emitted)[0]] = float("-inf")
            if not ids and not free:
                mask[i, self.vocab.eos] = 0  # nothing fits: end the reply (the validator will say why)
        return scores + mask

    def replies(self) -> list[str]:
        """The reply of each row, rendered from its words."""
        out = []
        for row in self.rows:
            words = list(row.emitted)
            if row.free and row.partial:
                words.append(self.vocab.tokenizer.decode(row.partial).strip())
            out.append(row.plan.render(words))
        return out


def _after(row: _RowState) -> _RowState:
    """The state once the free word being written is finished."""
    state = _RowState(row.plan)
    state.emitted = row.emitted + [FREE]
    return state
