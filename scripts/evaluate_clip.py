"""Score any CLIP checkpoint on the DeGLA paper's benchmarks and write results.json / results.md / run_info.json.

Usage:

```
python scripts/evaluate_clip.py --model_name_or_path openai/clip-vit-base-patch32 \
    --tasks sugarcrepe,aro,valse,zeroshot,linear_probe,retrieval \
    --sugarcrepe_dir sugar-crepe/data --coco_val2017_dir /data/coco/val2017 \
    --valse_dir VALSE/data --valse_visual7w_dir /data/visual7w/images --valse_swig_dir /data/swig/images \
    --valse_visdial_dir /data/visdial/images --valse_coco2014_dir /data/coco/val2014 \
    --aro_dir /data/aro --coco_karpathy_test_json /data/coco/coco_karpathy_test.json --coco_image_root /data/coco \
    --flickr30k_test_json /data/flickr30k/flickr30k_test.json --flickr30k_image_root /data/flickr30k/flickr30k-images \
    --zeroshot_datasets all --zeroshot_sources cifar10=/data/cifar10_folder \
    --output_dir eval/clip-vit-b32
```

Evaluation runs in one process (encoding is batched; use a GPU with `--device cuda`). Through accelerate, on one
machine: `accelerate launch --num_processes 1 scripts/evaluate_clip.py ...`. Every option is listed by `--help`;
docs/evaluation.md describes the data layout of each.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from degla.eval import TASKS, EvalDataConfig, EvalDataError, evaluate_model
from degla.eval.harness import DEFAULT_CACHE_DIR

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


def make_parser() -> HfArgumentParser:
    return HfArgumentParser((EvaluateArguments, EvalDataConfig), description=__doc__.split("\n\n")[0])


def default_setup() -> tuple[str, EvalDataConfig]:
    """(model, data) of a run without arguments: the export of the embedded default (`python scripts/train.py`),
    or the shipped base model if that has not run, on the shapes world's benchmarks (built once, cached)."""
    from degla.world.pipeline import BASE_MODEL_DIR, DEMO_OUTPUT_DIR, build_benchmarks

    export = os.path.join(DEMO_OUTPUT_DIR, "clip")
    model = export if os.path.isdir(export) else BASE_MODEL_DIR
    print(f"No arguments: scoring {model} on the embedded shapes-world benchmarks")
    return model, EvalDataConfig.from_dict(build_benchmarks())


def main(args: EvaluateArguments, data: EvalDataConfig) -> dict:
    if args.model_name_or_path is None:
        raise SystemExit("--model_name_or_path is required (a hub id or a local CLIPModel folder)")
    try:
        return evaluate_model(
            args.model_name_or_path, args.tasks, data, output_dir=args.output_dir, batch_size=args.batch_size,
            device=args.device, cache_dir=None if args.cache_dir.lower() == "none" else args.cache_dir,
            seed=args.seed, num_workers=args.num_workers, show_progress=not args.no_progress,
        )
    except EvalDataError as err:  # data that cannot run a requested task: checked before any model work
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    parser = make_parser()
    eval_args, data_config = parser.parse_args_into_dataclasses()
    if len(sys.argv) == 1:
        eval_args.model_name_or_path, data_config = default_setup()
    results = main(eval_args, data_config)
    print(f"results written to {eval_args.output_dir}/results.json")
