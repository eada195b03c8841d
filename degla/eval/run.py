"""`run_evaluation`: the evaluation behind `scripts/evaluate_clip.py` (the entry-point pattern of `degla.cli`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cli import Stage, options_argv
from ..errors import InputError
from .config import EvalDataConfig
from .harness import DEFAULT_CACHE_DIR, evaluate_model
from .tasks import TASKS

TASKS_HELP = "; ".join(f"{name}: {task.description}" for name, task in TASKS.items())


@dataclass
class EvaluateArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "Hub id or local folder of any "
        "CLIPModel checkpoint with its CLIPProcessor (safetensors weights)."})
    tasks: str = field(default="all", metadata={"help": f"Comma-separated tasks, or all (every task whose data is "
        f"given). A task named here must have its data. Tasks: {TASKS_HELP}."})
    output_dir: str = field(default="eval_results", metadata={"help": "Where results.json, results.md and "
        "run_info.json are written."})
    batch_size: int = field(default=64, metadata={"help": "Images/texts per forward pass."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available)."})
    cache_dir: str = field(default=DEFAULT_CACHE_DIR, metadata={"help": "Feature cache keyed by model and data; "
        "'none' disables it."})
    num_workers: int = field(default=4, metadata={"help": "Threads decoding images."})
    seed: int = field(default=0, metadata={"help": "Seed of the ARO order perturbations and of the linear-probe "
        "validation split."})
    no_progress: bool = field(default=False, metadata={"help": "Hide progress bars."})


def run_evaluation(args: EvaluateArguments, data: EvalDataConfig) -> dict:
    """Score the model on the requested tasks and write results.json / results.md / run_info.json."""
    if args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required (a Hub id or a local CLIPModel folder), or run the script "
                         "without arguments for the embedded default")
    results = evaluate_model(
        args.model_name_or_path, args.tasks, data, output_dir=args.output_dir, batch_size=args.batch_size,
        device=args.device, cache_dir=None if args.cache_dir.lower() == "none" else args.cache_dir,
        seed=args.seed, num_workers=args.num_workers, show_progress=not args.no_progress)
    print(f"results written to {os.path.join(args.output_dir, 'results.json')}")
    return results


def embedded_default() -> list[str]:
    """Without arguments: the export of the embedded training default (`python scripts/train.py`), or the shipped
    base model if that has not run, on the shapes world's benchmarks (built once, cached)."""
    from ..world.pipeline import BASE_MODEL_DIR, DEMO_OUTPUT_DIR, build_benchmarks

    export = os.path.join(DEMO_OUTPUT_DIR, "clip")
    model = export if os.path.isdir(export) else BASE_MODEL_DIR
    print(f"No arguments: scoring {export if model == export else 'the shipped base model'} on the embedded "
          "shapes-world benchmarks")
    return options_argv({"model_name_or_path": model, **build_benchmarks()})


EVALUATION = Stage(name="evaluate_clip", argument_types=(EvaluateArguments, EvalDataConfig), run=run_evaluation,
                   embedded_default=embedded_default,
                   description="Score any CLIP checkpoint on the DeGLA paper's benchmarks.")
