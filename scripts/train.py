"""Fine-tune a CLIP model with DeGLA and export a drop-in `CLIPModel` checkpoint to `<output_dir>/clip`.

Usage:
    accelerate launch scripts/train.py \\
        --model_name_or_path openai/clip-vit-base-patch32 \\
        --train_file coco_negatives/ --image_root /data/coco \\
        --output_dir runs/degla-vitb32 --per_device_train_batch_size 32 --num_train_epochs 5 \\
        --learning_rate 1e-6 --weight_decay 0.1 --adam_beta2 0.98 --adam_epsilon 1e-6 \\
        --lr_scheduler_type cosine --warmup_steps 50 --bf16 \\
        --push_to_hub --hub_model_id org/degla-vitb32

    # 8 GPUs (DDP), DeepSpeed ZeRO-2, or 2 CPU processes (tests):
    accelerate launch --config_file scripts/accelerate_configs/multi_gpu.yaml scripts/train.py ...
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 scripts/train.py ...

    # no arguments: the embedded default (the shipped shapes-world CLIP fine-tuned on world negatives)
    python scripts/train.py

`--train_file` is a negatives dataset (`scripts/generate_negatives.py` output folder, a `save_to_disk` folder, a
Hub dataset id) or NegCLIP's TSV. Resume with `--resume_from_checkpoint <output_dir>/checkpoint-N` (student,
teacher, optimizer, scheduler and RNG state are restored).
"""

import sys

from transformers import HfArgumentParser

from degla.training import DeGLATrainingArguments
from degla.training.run import ScriptArguments, run_training


def make_parser() -> HfArgumentParser:
    return HfArgumentParser((ScriptArguments, DeGLATrainingArguments))


if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv:
        from degla.world.pipeline import demo_train_args

        argv = demo_train_args()
    script_args, training_args = make_parser().parse_args_into_dataclasses(argv)
    run_training(script_args, training_args)
