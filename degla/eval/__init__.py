"""Evaluation harness: SugarCrepe, VALSE, ARO, zero-shot classification, linear probe and retrieval for any dual
encoder (CLIP, SigLIP, SigLIP 2, ALIGN, ...). See docs/evaluation.md."""

from ..families import FAMILIES, Family, TextRecipe, family_of
from .config import EvalDataConfig
from .encoder import CLIPFeatureEncoder, FeatureEncoder, ImageRef
from .harness import evaluate_model, parse_tasks, plan_tasks
from .image_processing import OpenCLIPImageProcessor
from .tables import plot_tradeoff, render_markdown
from .tasks import TASKS, EvalDataError, EvalTask

__all__ = ["FAMILIES", "TASKS", "CLIPFeatureEncoder", "EvalDataConfig", "EvalDataError", "EvalTask", "Family",
           "FeatureEncoder", "ImageRef", "OpenCLIPImageProcessor", "TextRecipe", "evaluate_model", "family_of",
           "parse_tasks", "plan_tasks", "plot_tradeoff", "render_markdown"]
