"""Rules, prompts, exemplar bank, validator, reply parsing and the rule-based generator."""

import pytest

from degla.generation import (REASONS, RULES, ExemplarSampler, build_messages, build_prompt, generate_rule_based,
                              load_exemplars, neg_column, parse_reply, validate_negative)
from degla.generation.inputs import DEFAULT_CAPTIONS, read_captions


def test_rules_and_columns():
    assert RULES == ("reshuffle", "swap_nouns", "swap_adjectives", "replace_adjectives", "replace_nouns")
    assert [neg_column(r) for r in RULES] == [
        "neg_reshuffle", "neg_swap_nouns", "neg_swap_adjectives", "neg_replace_adjectives", "neg_replace_nouns"]
    with pytest.raises(ValueError, match="unknown rule 'swap_verbs'"):
        neg_column("swap_verbs")


def test_prompt_is_the_papers():
    exemplars = [(f"caption {i}", f"negative {i}") for i in range(5)]
    prompt = build_prompt("A dog on a red couch.", "swap_nouns", exemplars)
    assert prompt.startswith("Please rewrite the following input caption based on the rewrite rule and examples: "
                             "<Swap the nouns in the sentence>. Here are the examples: ")
    for i in range(5):
        assert f'<"caption {i}" -> "negative {i}">' in prompt
    assert ("ensuring that the rewritten sentences have significantly different or opposite meanings from the "
            "original sentences. Input text: <A dog on a red couch.>") in prompt
    assert prompt.endswith("Answer with the rewritten caption only.")
    assert "Answer" not in build_prompt("A dog.", "reshuffle", exemplars, answer_instruction=False)
    messages = build_messages("A dog.", "replace_nouns", exemplars)
    assert messages == [{"role": "user", "content": build_prompt("A dog.", "replace_nouns", exemplars)}]
    assert "<Replace the nouns in the sentence>" in messages[0]["content"]


def test_exemplar_bank_obeys_its_rules():
    for rule in RULES:
        pairs = load_exemplars(rule)
        assert len(pairs) >= 50, rule
        assert len(set(pairs)) == len(pairs), rule
        for caption, negative in pairs:
            assert validate_negative(caption, negative, rule) is None, (rule, caption, negative)


def test_exemplar_sampling_is_seeded():
    sampler = ExemplarSampler(k=5, seed=3)
    a = sampler.sample("reshuffle", 7)
    assert len(a) == 5 and len(set(a)) == 5
    assert a == ExemplarSampler(k=5, seed=3).sample("reshuffle", 7)
    assert a != sampler.sample("reshuffle", 7, attempt=1)  # a retry sees new exemplars
    caption = a[0][0]
    assert all(c != caption for c, _ in sampler.sample("reshuffle", 7, caption=caption))


def test_exemplar_groups_share_a_seeded_draw_and_size_one_is_a_draw_per_caption():
    import random
    import zlib

    bank = load_exemplars("swap_nouns")
    caption = bank[0][0]
    # group size 1: the per-caption draw of earlier versions, computed by hand
    expected = random.Random(zlib.crc32(b"3|swap_nouns|7|0")).sample([p for p in bank if p[0] != caption], 5)
    assert ExemplarSampler(k=5, seed=3, group_size=1).sample("swap_nouns", 7, caption=caption) == expected
    grouped = ExemplarSampler(k=5, seed=3, group_size=4)
    draws = [grouped.sample("swap_nouns", i) for i in range(12)]
    assert draws[0] == draws[1] == draws[2] == draws[3] != draws[4]  # captions 0-3 share one draw, 4-7 another
    assert draws[4:8] == [draws[4]] * 4 and draws[8] != draws[4] and len(set(draws[0])) == 5
    assert grouped.sample("swap_nouns", 1, attempt=1) != draws[1]  # a retry sees new exemplars (the group's)
    assert grouped.sample("swap_nouns", 1, attempt=1) == grouped.sample("swap_nouns", 2, attempt=1)
    assert ExemplarSampler(k=5, seed=3, group_size=4).sample("swap_nouns", 5) == draws[5]  # seeded
    # a caption that is one of the group's exemplars gets the others and the group's next pair
    own = draws[0][2][0]
    mine = grouped.sample("swap_nouns", 0, caption=own)
    assert own not in [c for c, _ in mine] and len(mine) == 5 and mine[:2] == draws[0][:2] and mine[2:4] == draws[0][3:]
    with pytest.raises(ValueError, match="group_size"):
        ExemplarSampler(group_size=0)


ACCEPT = {
    "reshuffle": [
        ("A dog chases a cat in the park.", "A cat chases a dog in the park."),
        ("a small red circle to the left of a large blue square",
         "a large blue square to the left of a small red circle"),
        ("A man rides a horse on the beach.", "A horse rides a man on the beach."),
        ("Two women try to guide a boat.", "A woman tries to guide two boats."),  # "guide" is a verb here
    ],
    "swap_nouns": [
        ("A woman prepares a pizza while a man watches.", "A man prepares a pizza while a woman watches."),
        ("a small red circle to the left of a large blue square",
         "a small red square to the left of a large blue circle"),
        ("Two dogs chase a cat in the park.", "Two cats chase a dog in the park."),
        ("A cat eating a hot dog on a bench.", "A hot dog eating a cat on a bench."),
        # noun phrases exchanged as units, number agreement repaired
        ("A man on a motorcycle waves at two men.", "Two men on a motorcycle wave at a man."),
        ("A girl feeds a horse an apple.", "A horse feeds a girl an apple."),
        ("Two tennis rackets lie beside a bag.", "Two bags lie beside a tennis racket."),
    ],
    "swap_adjectives": [
        ("A red car is parked next to a white house.", "A white car is parked next to a red house."),
        ("a small red circle to the left of a large blue square",
         "a large red circle to the left of a small blue square"),
        ("a red striped triangle above a green circle", "a green striped triangle above a red circle"),
        ("A young man helps an old woman.", "An old man helps a young woman."),
        ("A crowd of people near a tall tower.", "A tall crowd of people near a tower."),  # modifies the quantity
        ("The first two horses pull a green cart.", "The first two green horses pull a cart."),  # an ordinal
    ],
    "replace_adjectives": [
        ("A small dog sleeps on a wooden bench.", "A large dog sleeps on a wooden bench."),
        ("a small red circle to the left of a large blue square",
         "a small yellow circle to the left of a large blue square"),
        ("An empty glass on a table.", "A full glass on a table."),
        ("a tiny dotted star below a big plain heart", "a tiny striped star below a big plain heart"),
        ("A couple of dogs on a rug.", "A few dogs on a rug."),  # a quantity keeps "a" with a plural
        ("A very tall man next to a tree.", "A very short man next to a tree."),
    ],
    "replace_nouns": [
        ("A man rides a horse on the beach.", "A man rides a camel on the beach."),
        ("a red striped triangle above a green circle", "a red striped triangle above a green hexagon"),
        ("A little boy sitting with his blanket.", "A little girl sitting with her blanket."),
        ("Two dogs play in the snow.", "Two cats play in the snow."),
        ("A old men sits on a wooden bench.", "A old women sits on a wooden bench."),  # the caption's own slip
    ],
}

REJECT = [
    # (caption, negative, rule, reason)
    ("A dog on a couch.", "", "reshuffle", "empty"),
    ("A dog on a couch.", None, "swap_nouns", "empty"),
    ("A dog on a couch.", "a dog on a couch", "reshuffle", "identical"),
    ("A dog on a couch.", "The dog on the couch!", "replace_nouns", "identical"),
    ("The cat is eating the food.", "The cat is eating the hot food.", "replace_adjectives", "addition"),
    ("The cat is eating the food.", "The cat is eating the food with a fork.", "replace_nouns", "addition"),
    ("A plate with broccoli and noodles.", "A plate with broccoli, noodles and carrots.", "replace_nouns", "addition"),
    ("A big brown dog runs on the beach.", "A dog runs on the beach.", "replace_adjectives", "deletion"),
    ("A dog chases a cat.", "A dog chases a cat " + "very fast " * 10, "reshuffle", "too_long"),
    ("A dog chases a cat in the park.", "A cat chases a mouse in the park.", "reshuffle", "words_changed"),
    ("A dog chases a cat in the park.", "A cat chases a dog in the garden.", "swap_nouns", "words_changed"),
    ("A red car near a white house.", "A red house near a white car.", "swap_adjectives", "wrong_word_class"),
    ("A man in a black shirt with a baseball mitt.", "A man in a baseball shirt with a black mitt.", "swap_nouns",
     "wrong_word_class"),
    ("A dog sits on a cat near a tree.", "A cat sits near a dog on a tree.", "swap_nouns", "wrong_word_class"),
    ("A dog chases a cat in the park.", "A dog chases a cat the park in.", "swap_nouns", "no_swap"),
    ("a small red circle above a square", "a red small circle above a square", "swap_adjectives", "no_swap"),
    ("A man rides a horse.", "A man walks a horse.", "replace_nouns", "wrong_word_class"),
    ("A red car near a house.", "A red truck near a house.", "replace_adjectives", "wrong_word_class"),
    ("A narrow kitchen with a stove.", "A mangerdeer kitchen with a stove.", "replace_adjectives", "wrong_word_class"),
    ("There are two sinks next to a mirror.", "There are two smallxons next to a mirror.", "replace_nouns",
     "wrong_word_class"),
    ("A cat and a dog on a couch.", "A dog and a cat on a couch.", "swap_nouns", "meaning_preserved"),
    ("A cat and a dog on a couch.", "A dog and a cat on a couch.", "reshuffle", "meaning_preserved"),
    ("A red car next to a blue car.", "A blue car next to a red car.", "swap_adjectives", "meaning_preserved"),
    ("A red and white bus.", "A white and red bus.", "swap_adjectives", "meaning_preserved"),
    ("A big dog on the grass.", "A large dog on the grass.", "replace_adjectives", "meaning_preserved"),
    ("A dog sleeps on a couch.", "A dog sleeps on a sofa.", "replace_nouns", "meaning_preserved"),
    ("A dog sleeps on a couch.", "An animal sleeps on a couch.", "replace_nouns", "meaning_preserved"),
    ("On a table, a cat sleeps.", "A cat sleeps, on a table.", "reshuffle", "meaning_preserved"),
    ("A dog chases a cat.", "A cat chases a dog.", "replace_nouns", "reordered"),
    ("A small red circle.", "A tiny purple striped hexagon with dots.", "replace_adjectives", "wrong_word_class"),
    ("a red striped triangle above a green circle", "a blue dotted big square below a tiny yellow star",
     "replace_adjectives", "wrong_word_class"),
    ("A red and white bus with blue yellow green stripes.", "A black and gray bus with pink purple orange stripes.",
     "replace_adjectives", "too_many_changes"),
    ("A flock of birds on a wire.", "A black birds on a wire.", "replace_adjectives", "ungrammatical"),
    ("A woman and three dogs in a park.", "A dogs and three woman in a park.", "swap_nouns", "ungrammatical"),
    ("Three small boats near a red house.", "Red boats near a small three house.", "swap_adjectives", "ungrammatical"),
    ("A black and white cat beside a chair.", "A and white cat beside a black chair.", "swap_adjectives",
     "ungrammatical"),
    ("A very tall man next to a tree.", "A very man next to a tall tree.", "swap_adjectives", "ungrammatical"),
]


@pytest.mark.parametrize("rule", RULES)
def test_validator_accepts(rule):
    for caption, negative in ACCEPT[rule]:
        assert validate_negative(caption, negative, rule) is None, (caption, negative)


@pytest.mark.parametrize("caption,negative,rule,reason", REJECT)
def test_validator_rejects(caption, negative, rule, reason):
    assert validate_negative(caption, negative, rule) == reason


def test_every_reason_is_exercised():
    assert {r for *_, r in REJECT} == set(REASONS)


def test_a_swap_is_not_another_rules_output():
    caption, negative = "A red car is parked next to a white house.", "A white car is parked next to a red house."
    assert validate_negative(caption, negative, "swap_adjectives") is None
    assert validate_negative(caption, negative, "swap_nouns") is not None
    assert validate_negative(caption, negative, "replace_adjectives") == "reordered"


@pytest.mark.parametrize("reply,expected", [
    ("A cat chases a dog.", "A cat chases a dog."),
    ('"A cat chases a dog."', "A cat chases a dog."),
    ("Rewritten caption: A cat chases a dog.", "A cat chases a dog."),
    ("rewritten sentence:  'A cat chases a dog.'", "A cat chases a dog."),
    ("Sure! Here is the rewritten caption:\n\nA cat chases a dog.\n\nThis swaps the nouns.", "A cat chases a dog."),
    ("Output: <A cat chases a dog.>", "A cat chases a dog."),
    ("- **A cat chases a dog.**", "A cat chases a dog."),
    ("1. A cat chases a dog.", "A cat chases a dog."),
    ('"A dog chases a cat." -> "A cat chases a dog."', "A cat chases a dog."),
    ("A cat chases a dog. (The nouns were swapped.)", "A cat chases a dog."),
    ("Rewritten caption:\nA cat  chases\ta dog.", "A cat chases a dog."),
    ("", None),
    ("   \n  ", None),
    (None, None),
    ('""', None),
])
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected


SHAPES = [
    "a small red circle to the left of a large blue square",
    "a red striped triangle above a green circle",
    "a tiny purple star below a big orange hexagon",
    "a large dotted yellow heart to the right of a small plain black cross",
    "a white square above a green striped pentagon",
]


def test_rule_based_on_shapes_world():
    out = generate_rule_based(SHAPES, seed=0)
    assert set(out) == set(RULES)
    for rule, negatives in out.items():
        assert len(negatives) == len(SHAPES)
        for caption, negative in zip(SHAPES, negatives):
            assert negative is not None, (rule, caption)
            assert validate_negative(caption, negative, rule) is None, (rule, caption, negative)
    # swaps exchange words of the right class; shapes, colours and relations stay shapes, colours, relations
    assert out["swap_nouns"][0] == "a small red square to the left of a large blue circle"
    assert out["reshuffle"][1] == "a green circle above a red striped triangle"
    kinds = [{"red", "green", "blue", "yellow", "purple", "orange", "white", "black", "brown", "gray", "pink"},
             {"small", "large", "big", "tiny", "little", "huge"}, {"striped", "dotted", "plain"},
             {"circle", "square", "triangle", "star", "heart", "hexagon", "cross", "pentagon", "rectangle", "oval",
              "diamond", "octagon", "ellipse", "cube", "sphere", "cylinder", "cone", "pyramid"}]
    for rule in ("replace_adjectives", "replace_nouns"):
        for caption, negative in zip(SHAPES, out[rule]):
            pairs = [(a, b) for a, b in zip(caption.split(), negative.split()) if a != b and {a, b} != {"a", "an"}]
            old, new = [a for a, _ in pairs], [b for _, b in pairs]
            assert len(old) == len(new) == 1, (caption, negative)
            assert any(old[0] in k and new[0] in k for k in kinds), (caption, negative)  # colour -> colour, ...
    assert generate_rule_based(SHAPES, seed=0) == out  # deterministic


def test_rule_based_on_real_captions_passes_the_validator():
    captions = read_captions(DEFAULT_CAPTIONS)["caption"]
    out = generate_rule_based(captions, seed=1)
    for rule, negatives in out.items():
        produced = [(c, n) for c, n in zip(captions, negatives) if n is not None]
        assert len(produced) >= (5 if rule == "swap_adjectives" else 20), rule
        for caption, negative in produced:
            assert validate_negative(caption, negative, rule) is None
