"""Hard-negative caption generation (DeGLA section 3.2): the five rewrite rules, the paper's
prompt, an exemplar bank, a validator, a rule-based generator, and batched LLM generation
through ``transformers.pipeline("text-generation")`` into a ``datasets`` dataset."""

from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("RULES", "neg_column", "source_column"), "..schema"),
    **dict.fromkeys(("ExemplarSampler", "load_exemplars"), ".exemplars"),
    **dict.fromkeys(("DEFAULT_CAPTIONS", "CaptionInputError", "read_captions"), ".inputs"),
    **dict.fromkeys(("generate_rule_based", "rewrite_rule_based"), ".rule_based"),
    **dict.fromkeys(("RULE_INSTRUCTIONS", "build_messages", "build_prompt"), ".rules"),
    **dict.fromkeys(("GenerationConfig", "finalize", "format_summary", "push_to_hub", "run_generation"), ".runner"),
    **dict.fromkeys(("REASONS", "parse_reply", "validate_negative"), ".validation"),
}
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
__getattr__ = lazy_exports(__name__, _EXPORTS)
