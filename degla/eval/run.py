"""`run_evaluation`: the evaluation behind `scripts/evaluate_clip.py` (the entry-point pattern of `degla.cli`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cli import Stage
from ..errors import InputError
from ..hub import model_loading
from .config import EvalDataConfig
from .encoder import FeatureEncoder
from .harness import DEFAULT_CACHE_DIR, evaluate_model, plan_tasks
from .tasks import TASKS

TASKS_HELP = "; ".join(f"{name}: {task.description}" for name, task in TASKS.items())


@dataclass
class EvaluateArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "Hub id or local folder of any "
        "dual encoder checkpoint (CLIP, SigLIP, SigLIP 2, ALIGN, ...: AutoModel with get_image_features and "
        "get_text_features) with its processor (safetensors weights)."})
    tasks: str = field(default="all", metadata={"help": f"Comma-separated tasks, or all (every task whose data is "
        f"given), or compositional (every compositional benchmark whose data is given). A task named here must have "
        f"its data. Tasks: {TASKS_HELP}."})
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
    trust_remote_code: bool = field(default=False, metadata={"help": "Run the checkpoint's own modelling code "
        "(off by default: only classes that transformers ships are loaded)."})


def run_evaluation(args: EvaluateArguments, data: EvalDataConfig) -> dict:
    """Score the model on the requested tasks and write results.json / results.md / run_info.json."""
    if args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required (a Hub id or a local checkpoint folder; "
                         "scripts/evaluate_clip.py run without any data option starts from its embedded default)")
    plan_tasks(args.tasks, data)  # every data path is checked before the model is loaded
    with model_loading("--model_name_or_path", args.model_name_or_path):
        encoder = FeatureEncoder.from_pretrained(
            args.model_name_or_path, device=args.device, trust_remote_code=args.trust_remote_code,
            batch_size=args.batch_size,
            cache_dir=None if args.cache_dir.lower() == "none" else args.cache_dir, num_workers=args.num_workers,
            show_progress=not args.no_progress)
    results = evaluate_model(encoder, args.tasks, data, output_dir=args.output_dir, seed=args.seed)
    print(f"results written to {os.path.join(args.output_dir, 'results.json')}")
    return results


EVALUATION = Stage(name="evaluate_clip", argument_types=(EvaluateArguments, EvalDataConfig), run=run_evaluation,
                   description="Score any CLIP checkpoint or other dual encoder on the DeGLA paper's benchmarks "
                   "and the compositional benchmarks beyond it.")
