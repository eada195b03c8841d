"""Evaluation harness: SugarCrepe, VALSE, ARO, zero-shot classification, linear probe and retrieval for any dual
encoder (CLIP, SigLIP, SigLIP 2, ALIGN, ...). See docs/evaluation.md. Each name is imported on first use."""

from .._lazy import lazy_exports

_EXPORTS = {
    "EvalDataConfig": ".config",
    **dict.fromkeys(("CLIPFeatureEncoder", "FeatureEncoder", "ImageRef"), ".encoder"),
    **dict.fromkeys(("FAMILIES", "Family", "TextRecipe", "family_of"), "..families"),
    **dict.fromkeys(("evaluate_model", "parse_tasks", "plan_tasks"), ".harness"),
    "OpenCLIPImageProcessor": ".image_processing",
    **dict.fromkeys(("plot_tradeoff", "render_markdown"), ".tables"),
    **dict.fromkeys(("TASKS", "EvalDataError", "EvalTask"), ".tasks"),
}
__all__ = ["FAMILIES", "TASKS", "CLIPFeatureEncoder", "EvalDataConfig", "EvalDataError", "EvalTask", "Family",
           "FeatureEncoder", "ImageRef", "OpenCLIPImageProcessor", "TextRecipe", "evaluate_model", "family_of",
           "parse_tasks", "plan_tasks", "plot_tradeoff", "render_markdown"]
__getattr__ = lazy_exports(__name__, _EXPORTS)
