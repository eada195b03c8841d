"""Fine-tune a CLIP model with DeGLA and export a drop-in `CLIPModel` checkpoint to `<output_dir>/clip`.

Usage:
    accelerate launch scripts/train.py \\
        --model_name_or_path openai/clip-vit-base-patch32 \\
        --train_file coco_negatives/ --image_root /data/coco \\
        --output_dir runs/degla-vitb32 --bf16 \\
        --push_to_hub --hub_model_id org/degla-vitb32

    # the authors' released negatives, with COCO's train2014 images
    accelerate launch scripts/train.py --train_file hf://datasets/wsdwJohn1231/DeGLA/DeGLA.json \\
        --image_root /data/coco/train2014 --output_dir runs/degla-vitb32 --bf16

    # 8 GPUs (DDP), DeepSpeed ZeRO-2, or 2 CPU processes (tests); options from a file
    accelerate launch --config_file scripts/accelerate_configs/multi_gpu.yaml scripts/train.py ...
    ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes 2 scripts/train.py ...
    python scripts/train.py --config my_run.yaml --seed 1

    # no arguments: the embedded default (the shipped shapes-world CLIP fine-tuned on world negatives)
    python scripts/train.py

Defaults are the paper's recipe and, where it is silent, the authors' code (docs/recipe.md). Resume with
`--resume_from_checkpoint <output_dir>/checkpoint-N` (student, teacher, optimizer, scheduler and RNG state).
"""

from degla import demo
from degla.cli import main
from degla.training import TRAINING

if __name__ == "__main__":
    main(TRAINING.with_default(demo.TRAINING))
