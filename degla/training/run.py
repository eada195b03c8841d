"""`run_training`: the whole fine-tuning job behind `scripts/train.py` (data, model, trainer, export, card); the
stage `TRAINING` that runs it is declared beside its arguments (`arguments.py`), so that `--help` imports none of
this."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict

from accelerate import PartialState
from accelerate.utils import gather_object
from transformers import AutoProcessor

from ..configuration_degla import DeGLAConfig
from ..errors import InputError
from ..hub import check_data_source, check_folder, model_loading
from ..modeling_degla import DeGLAForContrastive
from .arguments import DataArguments, DeGLATrainingArguments, ModelArguments, ObjectiveArguments
from .data import assign_negative_slots, bad_images_error, check_images
from .export import model_card_files
from .formats import TrainDataError, load_negatives_dataset
from .trainer import DeGLATrainer, check_output_dir

logger = logging.getLogger("degla.train")
DATA_CARD_FIELDS = ("negative_slots", "missing_negative_policy", "train_augmentation", "crop_scale")


def check_resume_objective(checkpoint: str, config: DeGLAConfig, allow_change: bool) -> None:
    """Refuse to resume `checkpoint` with an objective other than the one it was trained with."""
    saved = DeGLAConfig.from_pretrained(checkpoint).objective()
    differs = {name: (saved.get(name), value) for name, value in config.objective().items() if saved.get(name) != value}
    if differs and not allow_change:
        listed = "; ".join(f"{name}: checkpoint {old!r}, now {new!r}" for name, (old, new) in differs.items())
        raise InputError(f"{checkpoint} was trained with another objective ({listed}); resume with the checkpoint's "
                         "values, or pass --allow_objective_change to train the rest of the run with the new ones")
    if differs:
        logger.warning("resuming %s with a changed objective: %s", checkpoint, differs)


def prepare_training_data(data_args: DataArguments, num_negatives: int, seed: int, state: PartialState):
    """Load, slot and check the training data; returns (dataset, one-line summary). The main process prepares
    (and caches) the table first; every process then checks its share of the images."""
    with state.main_process_first():
        dataset = load_negatives_dataset(data_args.train_file, data_args.train_format, data_args.dataset_split)
        if data_args.max_train_samples:
            dataset = dataset.select(range(min(data_args.max_train_samples, len(dataset))))
        dataset, stats = assign_negative_slots(dataset, num_negatives, data_args.negative_slots,
                                               data_args.missing_negative_policy, seed)
    with state.split_between_processes(list(range(len(dataset)))) as mine:  # no rank raises alone: all gather
        bad, messages = check_images(dataset, data_args.image_root, skip_bad_images=True, indices=mine)
    found = sorted(zip(gather_object(bad), gather_object(messages)))
    bad, messages = [row for row, _ in found], [message for _, message in found]
    if bad and not data_args.skip_bad_images:
        raise bad_images_error(messages)
    for message in messages[:5]:
        logger.warning("skipped %s", message)
    if bad:
        dataset = dataset.select(sorted(set(range(len(dataset))) - set(bad)))
    summary = f"{stats.summary()}; {len(bad)} rows skipped for missing or unreadable images"
    return dataset, summary


def build_trainer(model_args: ModelArguments, data_args: DataArguments, objective_args: ObjectiveArguments,
                  training_args: DeGLATrainingArguments) -> tuple[DeGLATrainer, str]:
    """Everything `run_training` trains with: the model, the checked data and the trainer (and a data summary)."""
    state = PartialState()
    if data_args.train_file is None:
        raise InputError("--train_file is required: the negatives to train on (scripts/train.py run without any "
                         "data option starts from its embedded default instead)")
    resume = training_args.resume_from_checkpoint
    # every path first (cheap), then the model
    check_data_source(data_args.train_file, "--train_file")
    check_folder(data_args.image_root, "--image_root")
    check_folder(resume, "--resume_from_checkpoint")
    check_output_dir(training_args, resuming=bool(resume))
    with model_loading("--model_name_or_path", model_args.model_name_or_path):
        processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
        model = DeGLAForContrastive.from_student(model_args.model_name_or_path, lora_config=model_args.lora_config(),
                                                **asdict(objective_args))
    if resume:
        check_resume_objective(resume, model.config, training_args.allow_objective_change)

    dataset, data_summary = prepare_training_data(data_args, model.config.num_negatives, training_args.seed, state)
    global_batch = training_args.per_device_train_batch_size * state.num_processes
    if training_args.dataloader_drop_last and len(dataset) < global_batch:
        raise TrainDataError(f"{len(dataset)} training captions are fewer than one global batch ({global_batch}): "
                             "with --dataloader_drop_last (the default) no step would run; use a smaller "
                             "--per_device_train_batch_size or more data")
    logger.info("Training data: %s", data_summary)
    trainer = DeGLATrainer(model=model, args=training_args, train_dataset=dataset, processing_class=processor,
                           data_args=data_args)
    return trainer, data_summary


def run_training(model_args: ModelArguments, data_args: DataArguments, objective_args: ObjectiveArguments,
                 training_args: DeGLATrainingArguments) -> str:
    """Fine-tune, save the wrapper, export `<output_dir>/<family>` (`clip`, `siglip`, `siglip2`) with a model card
    (and push it); returns its path."""
    state = PartialState()
    logging.basicConfig(level=logging.INFO if state.is_main_process else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    trainer, data_summary = build_trainer(model_args, data_args, objective_args, training_args)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_state()

    model_class = type(trainer.model.student_model).__name__
    card = model_card_files(model_args.model_name_or_path, trainer.model.config.objective(), training_args,
                            {name: getattr(data_args, name) for name in DATA_CARD_FIELDS}, data_args.train_file,
                            data_summary, state.num_processes, model_class, type(trainer.processing_class).__name__,
                            license=model_args.license)
    export_dir = trainer.export(extra_files=card)
    # Saves the wrapper (student + teacher) locally and, with --push_to_hub, uploads the CLIP export.
    trainer.save_model()
    shown = os.path.relpath(export_dir)
    family = model_class.removesuffix("Model")
    state.print(f"Drop-in {family} checkpoint: {shown}  ({model_class}.from_pretrained({shown!r}))")
    return export_dir
