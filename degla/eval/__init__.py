"""Evaluation harness: SugarCrepe, VALSE, ARO, zero-shot classification, linear probe and retrieval for any
`CLIPModel` checkpoint. See docs/evaluation.md."""

from .config import EvalDataConfig
from .encoder import CLIPFeatureEncoder, ImageRef
from .harness import evaluate_model, parse_tasks, plan_tasks
from .image_processing import OpenCLIPImageProcessor
from .tables import plot_tradeoff, render_markdown
from .tasks import TASKS, EvalDataError, EvalTask

__all__ = ["TASKS", "CLIPFeatureEncoder", "EvalDataConfig", "EvalDataError", "EvalTask", "ImageRef",
           "OpenCLIPImageProcessor", "evaluate_model", "parse_tasks", "plan_tasks", "plot_tradeoff", "render_markdown"]
