"""Hard-negative caption generation (DeGLA section 3.2): the five rewrite rules, the paper's
prompt, an exemplar bank, a validator, a rule-based generator, and batched LLM generation
through ``transformers.pipeline("text-generation")`` into a ``datasets`` dataset."""

from ..schema import RULES, neg_column, source_column
from .exemplars import ExemplarSampler, load_exemplars
from .inputs import DEFAULT_CAPTIONS, CaptionInputError, read_captions
from .rule_based import generate_rule_based, rewrite_rule_based
from .rules import RULE_INSTRUCTIONS, build_messages, build_prompt
from .runner import GenerationConfig, finalize, format_summary, push_to_hub, run_generation
from .validation import REASONS, parse_reply, validate_negative

__all__ = [
    "RULES",
    "RULE_INSTRUCTIONS",
    "REASONS",
    "neg_column",
    "source_column",
    "build_prompt",
    "build_messages",
    "load_exemplars",
    "ExemplarSampler",
    "validate_negative",
    "parse_reply",
    "generate_rule_based",
    "rewrite_rule_based",
    "read_captions",
    "CaptionInputError",
    "DEFAULT_CAPTIONS",
    "GenerationConfig",
    "run_generation",
    "finalize",
    "format_summary",
    "push_to_hub",
]
