"""`run_evaluation`: the evaluation behind `scripts/evaluate_clip.py` (the entry-point pattern of `degla.cli`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cli import Stage
from ..errors import InputError, OutputExistsError, check_ranges
from ..hub import check_hub_repo, model_loading
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
        "run_info.json are written. A folder that already holds results is refused (nothing is loaded) unless "
        "--overwrite_output_dir."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the results an --output_dir "
        "already holds (every task's: write the tasks to keep into a new folder instead)."})
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

    def __post_init__(self):
        check_ranges(self, batch_size=">= 1", num_workers=">= 0")


RESULT_FILES = ("results.json", "results.md", "run_info.json")


def check_output_dir(args: EvaluateArguments) -> None:
    """Refuse to replace the results a folder already holds, unless `--overwrite_output_dir`."""
    found = [name for name in RESULT_FILES if os.path.exists(os.path.join(args.output_dir, name))]
    if found and not args.overwrite_output_dir:
        raise OutputExistsError(f"--output_dir {args.output_dir} already holds results ({', '.join(found)}); "
                                "evaluate into a new --output_dir, or pass --overwrite_output_dir to replace them")


def check_hub_datasets(tasks, data: EvalDataConfig) -> None:
    """The Hub datasets the chosen tasks read, checked with one request each before the model is loaded."""
    from .tasks.classification import resolve_sources

    names = {task.name for task in tasks}
    if names & {"zeroshot", "linear_probe"}:
        for name, spec in resolve_sources(data).items():
            if spec.startswith("hf:"):
                check_hub_repo(spec[3:].split(":")[0], f"--zeroshot_sources {name}", "dataset", error=InputError)
    if "winoground" in names and data.winoground_hub_id and not data.winoground_dir:
        check_hub_repo(data.winoground_hub_id, "--winoground_hub_id", "dataset", error=InputError)


def run_evaluation(args: EvaluateArguments, data: EvalDataConfig) -> dict:
    """Score the model on the requested tasks and write results.json / results.md / run_info.json."""
    if args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required (a Hub id or a local checkpoint folder; "
                         "scripts/evaluate_clip.py run without any data option starts from its embedded default)")
    tasks = plan_tasks(args.tasks, data)  # every data path is checked before the model is loaded
    check_output_dir(args)
    check_hub_datasets(tasks, data)
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
