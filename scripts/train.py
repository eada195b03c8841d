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

    # no arguments: the embedded default (see README)
    python scripts/train.py

`--train_file` is a negatives dataset (`scripts/generate_negatives.py` output folder, a `save_to_disk` folder, a
Hub dataset id) or NegCLIP's TSV. Resume with `--resume_from_checkpoint <output_dir>/checkpoint-N` (student,
teacher, optimizer, scheduler and RNG state are restored).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from accelerate import PartialState
from transformers import CLIPProcessor, HfArgumentParser

from degla import DeGLAForContrastive
from degla.training import DeGLATrainer, DeGLATrainingArguments, assign_negative_slots, check_images, \
    load_negatives_dataset
from degla.training.export import write_model_card

logger = logging.getLogger("degla.train")


@dataclass
class ScriptArguments:
    model_name_or_path: str = field(default="openai/clip-vit-base-patch32", metadata={
        "help": "CLIPModel to fine-tune: a Hub id or a local folder (with its CLIPProcessor)."})
    train_file: str = field(default=None, metadata={
        "help": "Negatives dataset: generate_negatives.py output / save_to_disk folder / Hub id / NegCLIP .tsv."})
    image_root: str = field(default=None, metadata={"help": "Folder that `image_path` entries are relative to."})
    dataset_split: str = field(default="train", metadata={"help": "Split to read from a Hub/parquet dataset."})
    max_train_samples: int = field(default=None, metadata={"help": "Use only the first N captions (debugging)."})


def main(script_args: ScriptArguments, training_args: DeGLATrainingArguments) -> str:
    state = PartialState()
    logging.basicConfig(level=logging.INFO if state.is_main_process else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    if script_args.train_file is None:
        raise ValueError("--train_file is required (or run with no arguments for the embedded default)")
    processor = CLIPProcessor.from_pretrained(script_args.model_name_or_path)
    model = DeGLAForContrastive.from_clip(script_args.model_name_or_path, lora_config=training_args.lora_config(),
                                         **training_args.objective_kwargs())

    with state.main_process_first():  # the main process prepares (and caches) the data first
        dataset = load_negatives_dataset(script_args.train_file, script_args.dataset_split)
        if script_args.max_train_samples:
            dataset = dataset.select(range(min(script_args.max_train_samples, len(dataset))))
        dataset, skipped = check_images(dataset, script_args.image_root, training_args.skip_bad_images)
        dataset, stats = assign_negative_slots(dataset, training_args.num_negatives, training_args.negative_slots,
                                               training_args.missing_negative_policy, training_args.seed)
    data_summary = f"{stats.summary()}; {skipped} rows skipped for missing/unreadable images"
    logger.info("Training data: %s", data_summary)

    trainer = DeGLATrainer(model=model, args=training_args, train_dataset=dataset, processing_class=processor)
    trainer.data_collator.image_root = script_args.image_root
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_state()

    export_dir = trainer.export()
    if trainer.is_world_process_zero():
        write_model_card(export_dir, script_args.model_name_or_path, training_args, script_args.train_file,
                         data_summary, state.num_processes)
    # Saves the wrapper (student + teacher) locally and, with --push_to_hub, uploads the CLIP export.
    trainer.save_model()
    state.print(f"Drop-in CLIP checkpoint: {export_dir}  (CLIPModel.from_pretrained({export_dir!r}))")
    return export_dir


def make_parser() -> HfArgumentParser:
    return HfArgumentParser((ScriptArguments, DeGLATrainingArguments))


if __name__ == "__main__":
    script_args, training_args = make_parser().parse_args_into_dataclasses()
    main(script_args, training_args)
