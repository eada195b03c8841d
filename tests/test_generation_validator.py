"""The validator's contextual part-of-speech decisions (issue 18), on sentences written for these
tests (not taken from SugarCrepe or any benchmark split): compound modifiers, whole noun phrases
swapped, participles and adverbs inside noun phrases, spelling fixes and agreement repaired along
the way; and the mismatched rewrites that must still be rejected."""

import pytest

from degla.generation import validate_negative
from degla.generation.lexicon import noun_phrases, tag
from degla.generation.validation import fix_spelling

ACCEPTED = [
    # a noun used as a modifier, decided in context (Brill's tag, the noun-before-noun convention)
    ("swap_adjectives", "A woman in a work jacket walks past blue boots.",
     "A woman in a blue jacket walks past work boots."),
    ("swap_adjectives", "A tall office tower stands beside a small brick house.",
     "A small office tower stands beside a tall brick house."),
    # coordinated modifiers move with the others of their noun
    ("swap_adjectives", "The black and white dog sleeps under a large wooden table.",
     "The large dog sleeps under a black and white wooden table."),
    # an adverb of degree moves with its adjective
    ("swap_adjectives", "A well lit kitchen with a dark hallway behind it.",
     "A dark kitchen with a well lit hallway behind it."),
    # whole noun phrases swapped, with their adverbs and "of" complements
    ("swap_nouns", "The extremely tall man stands behind the little girl.",
     "The little girl stands behind the extremely tall man."),
    ("swap_nouns", "A cup of coffee sits on top of a stack of books.",
     "A stack of books sits on top of a cup of coffee."),
    # participles before their noun are modifiers
    ("swap_adjectives", "Sleeping cats lie under a broken chair.", "Broken cats lie under a sleeping chair."),
    ("replace_adjectives", "A skier goes down a snow covered hill.", "A skier goes down a sand covered hill."),
    ("replace_adjectives", "A lamp stands beside a rose filled vase.", "A lamp stands beside an empty vase."),
    # a preposition or adverb between a determiner and its noun is a modifier
    ("replace_adjectives", "Shoppers walk through an outside market.", "Shoppers walk through an indoor market."),
    ("replace_adjectives", "A glass sits on the table next to an upright bottle.",
     "A glass sits on the table next to a fallen bottle."),
    # an adverb of degree changed with its adjective
    ("replace_adjectives", "A nearly empty glass stands on the table.", "A completely full glass stands on the table."),
    # a predicative adjective
    ("replace_adjectives", "The kitchen is clean and bright.", "The kitchen is dirty and bright."),
    # spelling fixed along the way
    ("replace_nouns", "A puppy chews on it's bone in the yard.", "A puppy chews on its toy in the yard."),
    ("replace_adjectives", "A whte dog chases a red ball.", "A white dog chases a blue ball."),
    ("swap_adjectives", "A grean frog sits on a yellow leaf.", "A yellow frog sits on a green leaf."),
    # pronoun gender and number agreement repaired after a replacement
    ("replace_nouns", "A man holds a phone in his hand.", "A woman holds a phone in her hand."),
    ("replace_nouns", "A boy stands next to a bike behind him.", "A girl stands next to a bike behind her."),
    # a category's name for a member of another category is a real change
    ("replace_nouns", "A person walks along the beach.", "An animal walks along the beach."),
    # unknown plurals get their lemma, so a number swap keeps the bag of words
    ("swap_adjectives", "Two kayakers paddle past a windsurfer.", "A kayaker paddles past two windsurfers."),
]

REJECTED = [
    # additions are hard positives, not replacements
    ("replace_adjectives", "A dog sits on a couch.", "A small dog sits on a couch.", "addition"),
    ("replace_nouns", "A dog sits on a couch.", "A dog sits on a couch with a cat.", "addition"),
    # replacements are not swaps
    ("swap_nouns", "A cat sits on a red chair.", "A dog sits on a red chair.", "words_changed"),
    ("swap_adjectives", "A cat sits on a red chair.", "A cat sits on a blue chair.", "words_changed"),
    # relations and verbs are not nouns or adjectives
    ("replace_nouns", "A cat sits on a chair.", "A cat sits under a chair.", "wrong_word_class"),
    ("replace_adjectives", "A cat sits on a chair.", "A cat sits under a chair.", "wrong_word_class"),
    ("replace_adjectives", "A man standing behind the car.", "A man sitting behind the car.", "wrong_word_class"),
    ("replace_nouns", "A girl jumps into a muddy puddle.", "A girl splashes into a muddy puddle.", "wrong_word_class"),
    # a spelling fix alone, or agreement alone, is no negative
    ("replace_nouns", "A puppy chews on it's bone.", "A puppy chews on its bone.", "identical"),
    ("replace_adjectives", "A whte dog chases a ball.", "A white dog chases a ball.", "identical"),
    ("replace_nouns", "A man holds his phone.", "A man holds her phone.", "identical"),
    # a hypernym of the word's own category keeps the meaning
    ("replace_nouns", "A dog sleeps on the grass.", "An animal sleeps on the grass.", "meaning_preserved"),
    # an exchange across "and" keeps the meaning, with or without adverbs
    ("swap_nouns", "A very small cat and a dog.", "A dog and a very small cat.", "meaning_preserved"),
]


@pytest.mark.parametrize("rule,caption,negative", ACCEPTED)
def test_contextual_rewrites_are_accepted(rule, caption, negative):
    assert validate_negative(caption, negative, rule) is None


@pytest.mark.parametrize("rule,caption,negative,reason", REJECTED)
def test_mismatched_rewrites_are_still_rejected(rule, caption, negative, reason):
    assert validate_negative(caption, negative, rule) == reason


def test_a_real_word_one_edit_away_is_a_replacement_not_a_typo():
    # "cat" is an English word: "car" replaces it, it does not correct it
    assert fix_spelling("A cat sits on a mat .".split(), "A car sits on a mat .".split())[1] == "cat"
    assert validate_negative("A cat sits on a mat.", "A car sits on a mat.", "replace_nouns") is None
    # a non-word is corrected only to a word the rewrite writes
    assert fix_spelling(["a", "whte", "dog"], ["a", "black", "dog"]) == ["a", "whte", "dog"]
    assert fix_spelling(["a", "whte", "dog"], ["a", "white", "cat"]) == ["a", "white", "dog"]


def test_noun_compounds_and_adverbs_in_noun_phrases():
    tokens = tag("The extremely tall man walks past a train yard.")
    spans = [" ".join(t.lower for t in tokens[s:e]) for s, e in noun_phrases(tokens)]
    assert spans == ["the extremely tall man", "a train yard"]
    by_word = {t.lower: t.tag for t in tag("A man in a dress shirt works on blossoming trees.")}
    assert by_word["dress"] == "NOUN" and by_word["shirt"] == "NOUN"  # a noun modifier (the head is "shirt")
    assert by_word["works"] == "VERB" and by_word["blossoming"] == "ADJ"
