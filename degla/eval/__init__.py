"""Evaluation harness: SugarCrepe, VALSE, ARO, zero-shot classification, linear probe and retrieval for any
`CLIPModel` checkpoint. See docs/evaluation.md."""

from .config import TASKS, EvalDataConfig
from .encoder import CLIPFeatureEncoder, ImageRef
from .harness import evaluate_model, parse_tasks
from .tables import plot_tradeoff, render_markdown

__all__ = ["TASKS", "CLIPFeatureEncoder", "EvalDataConfig", "ImageRef", "evaluate_model", "parse_tasks",
           "plot_tradeoff", "render_markdown"]
