"""The five rewrite rules of DeGLA (section 3.2, table 1) and the paper's rewrite prompt
(appendix A.4, figure 8, right column), chat-templated for instruct models."""

from __future__ import annotations

from ..schema import RULES, check_rule, neg_column  # noqa: F401  (re-exported: the rules are part of the schema)

RULE_INSTRUCTIONS = {
    "reshuffle": "Reshuffle the overall order of the sentence",
    "swap_nouns": "Swap the nouns in the sentence",
    "swap_adjectives": "Swap the adjectives in the sentence",
    "replace_adjectives": "Replace the adjectives in the sentence",
    "replace_nouns": "Replace the nouns in the sentence",
}
"""The rule text of figure 8, verbatim."""

RULE_FAMILIES = {
    "reshuffle": "intra-sentence reshuffle",
    "swap_nouns": "intra-sentence reshuffle",
    "swap_adjectives": "intra-sentence reshuffle",
    "replace_adjectives": "minimal semantic substitution",
    "replace_nouns": "minimal semantic substitution",
}

PROMPT_TEMPLATE = (
    "Please rewrite the following input caption based on the rewrite rule and examples: <{instruction}>. "
    "Here are the examples: {examples}. ensuring that the rewritten sentences have significantly different "
    "or opposite meanings from the original sentences. Input text: <{caption}>"
)
"""Figure 8 (right column), word for word; ``{examples}`` is ``<example1>,<example2>,...``."""

ANSWER_INSTRUCTION = "\nAnswer with the rewritten caption only."
"""Appended to the paper's prompt so that replies can be parsed (the paper's prompt does not
say how to answer; an 8B model answers with the caption anyway, small models ramble)."""


def format_example(caption: str, negative: str) -> str:
    return f'<"{caption}" -> "{negative}">'


def build_prompt(caption: str, rule: str, exemplars: list[tuple[str, str]], answer_instruction: bool = True) -> str:
    """The paper's rewrite prompt for one caption.

    Args:
        caption: the input caption.
        rule: one of :data:`RULES`.
        exemplars: (original, rewrite) pairs shown as examples (the paper uses 5).
        answer_instruction: append :data:`ANSWER_INSTRUCTION`.
    """
    check_rule(rule)
    prompt = PROMPT_TEMPLATE.format(
        instruction=RULE_INSTRUCTIONS[rule],
        examples=",".join(format_example(o, r) for o, r in exemplars),
        caption=caption.strip(),
    )
    return prompt + ANSWER_INSTRUCTION if answer_instruction else prompt


def build_messages(caption: str, rule: str, exemplars: list[tuple[str, str]],
                   answer_instruction: bool = True) -> list[dict]:
    """The prompt as a one-turn chat (``[{"role": "user", "content": ...}]``), for the
    tokenizer's chat template."""
    return [{"role": "user", "content": build_prompt(caption, rule, exemplars, answer_instruction)}]
