"""`run_training`: the whole fine-tuning job behind `scripts/train.py` (data, model, trainer, export, card)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from accelerate import PartialState
from transformers import CLIPProcessor

from ..modeling_degla import DeGLAForContrastive
from .arguments import DeGLATrainingArguments
from .data import DeGLACollator, assign_negative_slots, check_images, load_negatives_dataset
from .export import write_model_card
from .trainer import DeGLATrainer

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


def run_training(script_args: ScriptArguments, training_args: DeGLATrainingArguments) -> str:
    """Fine-tune, save the wrapper, export `<output_dir>/clip` with a model card (and push it); returns its path."""
    state = PartialState()
    logging.basicConfig(level=logging.INFO if state.is_main_process else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    if script_args.train_file is None:
        raise ValueError("--train_file is required (or run scripts/train.py with no arguments for the embedded "
                         "default)")
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

    collator = DeGLACollator(processor, training_args.num_negatives, script_args.image_root,
                             training_args.max_text_length)
    trainer = DeGLATrainer(model=model, args=training_args, train_dataset=dataset, processing_class=processor,
                           data_collator=collator)
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


