"""The embedded defaults of the scripts: what each runs when its command line names none of its data options.

The stages (`degla.training`, `degla.generation`, `degla.eval`) know no data of their own; this module is the one
place that does, and each script wires its stage to its default here (`main(TRAINING.with_default(demo.TRAINING))`,
see `degla.cli`). The command line applies over the default's options: `python scripts/train.py --max_steps 5
--output_dir my_run` is the demo, changed and written elsewhere.

| script | without | the embedded default | its own folder |
|---|---|---|---|
| `train.py` | `--train_file` | the shipped shapes-world CLIP, DeGLA-fine-tuned on the world's negatives (the world recipe) | `runs/degla-world` |
| `generate_negatives.py` | `--captions` | the shipped SmolLM2 on 24 of the 48 real COCO captions shipped with degla | `runs/negatives-demo` |
| `evaluate_clip.py` | every data option | `runs/degla-world/clip` (else the shipped base CLIP) on the world's benchmarks | `runs/degla-world-eval` |
| `pretrain_world_clip.py` | (no data options) | the recipe of the shipped base CLIP | `runs/world_clip` |

A run that leaves `--output_dir` to its default writes into the default's own folder and replaces an earlier run
there (said on the console; `--resume_from_checkpoint` continues one instead); a run into a folder the user
named keeps the stage's refusal to overwrite finished work.
"""  # noqa: E501

from __future__ import annotations

import os
from dataclasses import fields

from .cli import EmbeddedDefault
from .eval.config import EvalDataConfig

TRAIN_OUTPUT_DIR = os.path.join("runs", "degla-world")
NEGATIVES_OUTPUT_DIR = os.path.join("runs", "negatives-demo")
EVAL_OUTPUT_DIR = os.path.join("runs", "degla-world-eval")
PRETRAIN_OUTPUT_DIR = os.path.join("runs", "world_clip")


# The world and the generation inputs are imported when a default is applied, not when a script starts (--help).
def training_options() -> dict:
    from .world.pipeline import world_train_options

    return world_train_options(output_dir=TRAIN_OUTPUT_DIR)


def generation_options() -> dict:
    """The shipped SmolLM2 on 24 of the 48 real COCO captions shipped with degla, on the CPU (3 exemplars per
    prompt, no retries, the rule-based generator filling what the LLM misses); COCO's captions are CC BY 4.0."""
    from .generation.inputs import DEFAULT_CAPTIONS

    return {"captions": str(DEFAULT_CAPTIONS), "max_captions": 24, "max_retries": 0, "fallback": "rule_based",
            "exemplars_per_prompt": 3, "license": "cc-by-4.0", "output_dir": NEGATIVES_OUTPUT_DIR}


def evaluation_options() -> dict:
    """The training demo's export if it has run (else the shipped base model) on the world's benchmarks."""
    from .world.clip import BASE_MODEL_DIR
    from .world.pipeline import build_benchmarks

    export = os.path.join(TRAIN_OUTPUT_DIR, "clip")
    model = export if os.path.isdir(export) else BASE_MODEL_DIR
    return {"model_name_or_path": model, **build_benchmarks(), "output_dir": EVAL_OUTPUT_DIR}


TRAINING = EmbeddedDefault(
    description="DeGLA fine-tuning of the shipped shapes-world CLIP on the world's negatives",
    options=training_options, data_options=("train_file", "image_root", "train_format", "dataset_split"),
    replace_option="overwrite_output_dir", resume_options=("resume_from_checkpoint",))
GENERATION = EmbeddedDefault(
    description="the shipped SmolLM2 on 24 of the real COCO captions shipped with degla",
    options=generation_options, data_options=("captions", "caption_column", "split"), replace_option="overwrite")
EVALUATION = EmbeddedDefault(
    description=f"{os.path.join(TRAIN_OUTPUT_DIR, 'clip')} (the training demo's export; the shipped base CLIP if it "
                "has not run) on the shapes world's benchmarks",
    options=evaluation_options, data_options=tuple(f.name for f in fields(EvalDataConfig)),
    replace_option="overwrite_output_dir")
PRETRAINING = EmbeddedDefault(
    description="the recipe of the shipped base CLIP", options=lambda: {"output_dir": PRETRAIN_OUTPUT_DIR},
    replace_option="overwrite_output_dir")
