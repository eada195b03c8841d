"""The validator's contextual part-of-speech decisions (issue 18), on sentences written for these
tests (not taken from SugarCrepe or any benchmark split): compound modifiers, whole noun phrases
swapped, participles and adverbs inside noun phrases, spelling fixes and agreement repaired along
the way; and the mismatched rewrites that must still be rejected."""

import os
import sys

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
    ("swap_adjectives", "Three cups of tea and a glass of water.", "A cup of tea and three glasses of water."),
    # a lexicon compound that the rewrite breaks up is read as a modifier and a noun on both sides
    ("swap_adjectives", "A teddy bear sits beside a red lamp.", "A red bear sits beside a teddy lamp."),
    ("replace_adjectives", "A polar bear swims near a small boat.", "A brown bear swims near a small boat."),
    # the base form right after a singular noun is the head of a compound, not its verb
    ("replace_nouns", "A soda can stands next to a glass.", "A soda bottle stands next to a glass."),
    ("replace_nouns", "A paper cup is on the desk.", "A paper plate is on the desk."),
    ("swap_adjectives", "A little boy holding a tennis racket on the court.",
     "A tennis boy holding a little racket on the court."),
    # ... but after a preposition's object it can be the verb of the subject
    ("swap_nouns", "Two men on a bicycle wave at a woman.", "A woman on a bicycle waves at two men."),
    # a quantity word without "of" is a noun ("a number 7 train"); a quantifier without its noun a pronoun
    ("replace_nouns", "A number 7 train waits at the platform.", "A bus waits at the platform."),
    ("replace_nouns", "The children are all in a classroom.", "The children are all in a kitchen."),
    # a possessive agrees with the noun phrase it follows after a swap
    ("swap_nouns", "Two boys are flying their kites while a girl watches.",
     "A girl is flying her kites while two boys watch."),
    # a colour named without its noun is an attribute
    ("replace_adjectives", "The referee in yellow holds a whistle.", "The referee in black holds a whistle."),
    # adverbs and particles between a determiner and its noun are one modifier
    ("swap_adjectives", "A man holds an upside down cup near a tall lamp.",
     "A man holds a tall cup near an upside down lamp."),
    # an "and" may come or go with the phrases replaced
    ("replace_nouns", "A tray with cups of coffee and a plate of cookies.",
     "A tray with cups and saucers and a plate of cookies."),
    # a present-tense verb that is also a noun, found by agreement or by the object after it
    ("swap_nouns", "A farmer waters the plants.", "The plants water a farmer."),
    ("swap_nouns", "A girl lectures a parrot.", "A parrot lectures a girl."),
    ("swap_nouns", "A chef cooks lunches for a nurse.", "A nurse cooks lunches for a chef."),
    ("swap_nouns", "A pair hugs a teacher.", "A teacher hugs a pair."),
    ("swap_nouns", "A lamb nudges its mother.", "A mother nudges its lamb."),
    # an adjective's spelling as the head of an object; an adverb that is also a noun, after a noun
    ("swap_nouns", "A guard salutes a female.", "A female salutes a guard."),
    ("replace_nouns", "A boy throws a stick back to his dog.", "A boy throws a frisbee back to his dog."),
    ("replace_nouns", "A stone bench full of leaves.", "A stone wall full of leaves."),
    # ... but not before a relation's noun ("a green front")
    ("swap_adjectives", "A red bus with a green front parks by a wall.",
     "A green bus with a red front parks by a wall."),
    # an "-ing" word after a person or an animal is what it does, not a compound's head (round 4)
    ("replace_nouns", "A girl surfing near a pier.", "A boy surfing near a pier."),
    ("replace_nouns", "A nurse jogging with her dog.", "A nurse jogging with her husband."),
    # one "NP of NP" moved whole into another's complement
    ("swap_nouns", "A bowl of cherries on the lid of a jar.", "A jar on the lid of a bowl of cherries."),
    # numbers traded between two phrases of one noun, their adjectives staying: the meaning changes
    ("swap_adjectives", "One brown puppy and three white puppies on a rug.",
     "Three brown puppies and one white puppy on a rug."),
    # a word the lexicon does not know, after the clause's verb, is no second verb
    ("swap_nouns", "Ducks are nibbling bread crusts by the pond.", "Bread crusts are nibbling ducks by the pond."),
    # a non-word split in two by the rewrite; a number after "a" naming a thing
    ("replace_nouns", "two dogs lying beside eachother", "two cats lying beside each other"),
    ("replace_nouns", "A 737 parked at a gate.", "A bus parked at a gate."),
    # round 6: a compound's base-form head before its subject's verb; a moved compound read as where it was
    ("swap_nouns", "A lemonade stand sits behind a parked van.", "A parked van sits behind a lemonade stand."),
    ("swap_nouns", "A television set is standing beside a lamp.", "A lamp is standing beside a television set."),
    # an "-ing" word after an animal, with its object
    ("swap_nouns", "A cow spraying mud on a farmer.", "A farmer spraying mud on a cow."),
    # round 7: "her" after a preposition, before a word that can be a noun, is a possessive; a modal before "be"
    ("swap_nouns", "A woman with her display on a cart.", "A woman with her cart on a display."),
    ("swap_nouns", "A red truck can be seen behind a fence.", "A red fence can be seen behind a truck."),
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
    # a colour for a colour is no noun replacement; a word joined or split by a space is no change
    ("replace_nouns", "The referee in yellow holds a whistle.", "The referee in black holds a whistle.",
     "wrong_word_class"),
    ("replace_nouns", "A bath room with a white sink.", "A bathroom with a white sink.", "identical"),
    # a person's activity replaced is a verb, not a noun; a full trade across "next to" keeps the meaning
    ("replace_nouns", "A man skiing down a hill.", "A man sledding down a hill.", "wrong_word_class"),
    ("swap_adjectives", "A green van next to a white van.", "A white van next to a green van.", "meaning_preserved"),
    # a possessive changing alone is no swap
    ("swap_nouns", "A man walks his dog past a tree.", "A man walks their dog past a tree.", "no_swap"),
]


# issue 35: written for the tests, of the kinds a contextual tagger reads in context (noun modifiers,
# participles, "her" + noun, noun-phrase swaps); they pin what the validator does (the contextual tagger
# measured in issue 35 accepted them too, and lost on the held-out folds elsewhere)
ACCEPTED += [
    ("swap_adjectives", "A boy in a striped dress shirt stands near a red wall.",
     "A boy in a red dress shirt stands near a striped wall."),
    ("replace_adjectives", "A cat sits on a tree filled hill.", "A cat sits on a barren hill."),
    ("swap_adjectives", "A skillet holds diced onions and sliced carrots.",
     "A skillet holds sliced onions and diced carrots."),
    ("swap_adjectives", "A kitchen with white cabinets and orange walls.",
     "A kitchen with orange cabinets and white walls."),
    ("replace_nouns", "A yak grazing near a fence.", "A camel grazing near a fence."),
    ("swap_nouns", "A puppy chews her slipper near a couch.", "A couch chews her slipper near a puppy."),
    ("replace_nouns", "A man on swings near a slide.", "A man on swings near a fountain."),
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


def test_joined_spellings_are_not_taken_from_function_words():
    # "a long" spells "along", but an article is not part of a compound's spelling
    assert fix_spelling(["A", "long", "train", "."], ["Along", "train", "."]) == ["A", "long", "train", "."]
    assert fix_spelling(["a", "bath", "room"], ["a", "bathroom"]) == ["a", "bathroom"]


def test_lexicon_compounds_join_whatever_their_case_and_number():
    # (issue 35 round 2 looks a compound up only from a word that starts one: capitals and plurals still join)
    words = [t.text for t in tag("A Teddy Bear near two fire hydrants and a couple of hot dogs.")]
    assert words == ["A", "Teddy Bear", "near", "two", "fire hydrants", "and", "a", "couple of", "hot dogs", "."]
    assert [t.text for t in tag("A bear near a fire.")] == ["A", "bear", "near", "a", "fire", "."]


def test_compound_heads_and_quantifiers_in_context():
    by_word = {t.lower: t.tag for t in tag("A soda can and a sushi roll sit on a table.")}
    assert by_word["can"] == "NOUN" and by_word["roll"] == "NOUN" and by_word["sit"] == "VERB"
    assert {t.lower: t.tag for t in tag("A dog can swim.")}["can"] == "AUX"
    assert {t.lower: t.tag for t in tag("People watch a man play tennis.")}["play"] == "VERB"
    by_word = {t.lower: t.tag for t in tag("Some are sitting and two dogs sleep.")}
    assert by_word["some"] == "PRON" and by_word["two"] == "NUM"
    assert {t.lower: t.tag for t in tag("A couple sits on a bench.")}["couple"] == "NOUN"
    assert {t.lower: t.tag for t in tag("A lemonade stand sits in a park.")}["stand"] == "NOUN"


def test_a_verb_that_is_also_a_noun_is_read_from_the_clause():
    by_word = {t.lower: t.tag for t in tag("A man lights up a candle.")}
    assert by_word["lights"] == "VERB" and by_word["man"] == "NOUN"
    by_word = {t.lower: t.tag for t in tag("A baby hugs its mother.")}
    assert by_word["baby"] == "NOUN" and by_word["hugs"] == "VERB"
    # but a plural modifier before a singular head, and a relative "that", are not verbs
    assert [t.tag for t in tag("A sports car that has stripes.")][:4] == ["DET", "NOUN", "NOUN", "DET"]
    assert {t.lower: t.tag for t in tag("The dogs each have a ball.")}["dogs"] == "NOUN"
    # a verb's two objects ("gives a dog a bone")
    assert {t.lower: t.tag for t in tag("A boy gives a dog a bone.")}["dog"] == "NOUN"


def test_an_activity_after_a_person_or_an_animal_is_its_verb():
    assert {t.lower: t.tag for t in tag("A woman shopping with her son.")}["shopping"] == "VERB"
    assert {t.lower: t.tag for t in tag("A goat skiing down a slope.")}["skiing"] == "VERB"
    assert {t.lower: t.tag for t in tag("A goat spraying milk on a child.")}["spraying"] == "VERB"
    # but a compound's "-ing" head after a thing stays a noun
    assert {t.lower: t.tag for t in tag("A hotel building with a flag.")}["building"] == "NOUN"


def test_her_is_a_possessive_or_an_object_by_what_surrounds_it():
    assert {t.lower: t.tag for t in tag("A girl with her display of shells.")}["her"] == "DET"
    assert {t.lower: t.tag for t in tag("A sheep with her two lambs.")}["her"] == "DET"
    # an object: at the end, and before the bare verb a verb of seeing takes
    assert {t.lower: t.tag for t in tag("A dog sits beside her")}["her"] == "PRON"
    watching = {t.lower: t.tag for t in tag("A boy watches her play chess.")}
    assert (watching["her"], watching["play"]) == ("PRON", "VERB")


def test_rule_keeping_is_decided_by_the_words_alone():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    from eval_validator import keeps_rule

    # a swap keeps its rule when its words are the caption's in another order, "a"/"an" one word
    assert keeps_rule("swap_att", "A red cup on a white plate.", "A white cup on a red plate.")
    assert keeps_rule("swap_obj", "An owl watches a mouse.", "A mouse watches an owl.")
    assert not keeps_rule("swap_obj", "Two boys fly their kites near a girl.", "A girl flies her kites near two boys.")
    assert not keeps_rule("swap_att", "A red cup on a white plate.", "A white cup next to a red plate.")
    assert not keeps_rule("swap_att", "A red cup on a white plate.", "a red cup on a white plate")  # same order
    # a replacement keeps it when one contiguous span of 1-3 words differs on each side
    assert keeps_rule("replace_obj", "A dog sleeps on the grass.", "A cat sleeps on the grass.")
    assert keeps_rule("replace_att", "An old car on a wide road.", "A shiny new car on a wide road.")  # 1 -> 2 words
    assert keeps_rule("replace_att", "A cat sitting on a red chair.", "A cat standing on a red chair.")  # (a verb)
    assert not keeps_rule("replace_obj", "A dog on the grass near a bench.", "A cat on the grass near a car.")
    assert not keeps_rule("replace_att", "A small dog on a mat.", "A small dog on a mat.")  # nothing differs
    assert not keeps_rule("replace_obj", "A dog sleeps.", "A big black furry cat sleeps.")  # 4 words
    # an addition (which every rule must reject) keeps its type when it has all the caption's words, in order,
    # and more; one that replaces a word is a replacement, whatever its file says
    assert keeps_rule("add_att", "A dog sleeps.", "A small dog sleeps.")
    assert not keeps_rule("add_obj", "A man rides a horse.", "A man and a boy ride a horse.")  # "rides"
    assert keeps_rule("add_obj", "A man with a dog.", "A man with a dog and a cat.")
    assert not keeps_rule("add_obj", "A cat looks at a photo of a cat.", "A cat looks at a photo of a dog.")
    assert not keeps_rule("add_att", "A dog sleeps.", "A dog sleeps.")  # nothing added
    assert not keeps_rule("replace_rel", "A dog on a mat.", "A dog under a mat.")  # no rule


def test_the_report_counts_mismatched_additions_apart_from_replacements_filed_as_additions():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    from eval_validator import evaluate, format_report

    records = [("add_obj", "A man with a dog on a beach.", "A man with a dog and a cat on a beach."),  # an addition
               ("add_obj", "A man with a dog on a beach.", "A man with a horse on a beach.")]  # a replacement
    report = format_report(evaluate(records), n_examples=0)
    # replace_nouns accepts the replacement (a real one), rejects the addition
    assert "add_obj under replace_nouns: 1/2 (50.0%); of those that keep their type: 1/1 (100.0%)" in report
    assert "add_obj under replace_adjectives: 2/2 (100.0%); of those that keep their type: 1/1 (100.0%)" in report


def test_valse_records_split_into_folds_and_keep_their_kind():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    from eval_validator import EXPECTED, keeps_rule, load_valse

    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "valse")
    every = load_valse(fixture)
    folds = [load_valse(fixture, str(f)) for f in range(5)]
    assert sorted(every) == sorted(r for fold in folds for r in fold)  # a partition
    assert all(len(fold) > 0.1 * len(every) for fold in folds)
    assert {kind for kind, _, _ in every} == {"actant-swap", "foil-it", "relations", "action-replacement"}
    assert EXPECTED["actant-swap"] == "swap_nouns" and EXPECTED["foil-it"] == "replace_nouns"
    # an actant swap is judged as a swap: a word added ("for") breaks it
    assert not keeps_rule("actant-swap", "A man exercises his torso.", "A torso exercises for a man.")
    assert keeps_rule("actant-swap", "A man kicks a ball.", "A ball kicks a man.")
