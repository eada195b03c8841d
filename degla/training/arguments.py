"""The arguments of a DeGLA training run, split by concern as in transformers' `run_clip.py`:

- `ModelArguments`: which CLIP to fine-tune and how (full or LoRA);
- `DataArguments`: the negatives dataset, its images and the training-time image augmentation;
- `ObjectiveArguments`: derived field by field from `DeGLAConfig`'s objective fields (never retyped here);
- `DeGLATrainingArguments`: `TrainingArguments` with the recipe's defaults (docs/recipe.md).

`scripts/train.py` parses all four (also from a `--config` JSON/YAML file) and calls `run_training`: `TRAINING`,
the stage, names it without importing it, and lays out `--help` under four headings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, make_dataclass

from transformers import TrainingArguments

from ..cli import Stage
from ..configuration_degla import objective_fields
from ..errors import InputError, check_ranges
from ..hub import check_local_path
from .data import DEFAULT_NEGATIVE_SLOTS, FILL_POLICIES, parse_negative_slots
from .formats import TRAIN_FORMATS
from .transforms import AUGMENTATIONS


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default="openai/clip-vit-base-patch32", metadata={
        "help": "Dual encoder to fine-tune (CLIP, SigLIP or SigLIP 2): a Hub id or a local folder (with its "
                "processor)."})
    use_lora: bool = field(default=False, metadata={
        "help": "Train LoRA adapters on the student's attention and MLP projections (peft) plus the logit scale; "
                "the EMA teacher tracks only what trains; the export merges the adapters."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(default="q_proj,k_proj,v_proj,out_proj,fc1,fc2", metadata={
        "help": "Comma-separated module names that get adapters."})
    license: str | None = field(default=None, metadata={
        "help": "Licence of the export, written to its model card (an SPDX id such as apache-2.0 or mit); "
                "default: the base model's licence when its card or config names one."})

    def __post_init__(self):
        check_ranges(self, lora_r=">= 1", lora_alpha="> 0", lora_dropout="in [0, 1)")
        check_local_path(self.model_name_or_path, "--model_name_or_path")

    def lora_config(self) -> dict | None:
        """Keyword arguments of `peft.LoraConfig` for the student, or None without `--use_lora`."""
        if not self.use_lora:
            return None
        return {"r": self.lora_r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]}


@dataclass
class DataArguments:
    train_file: str | None = field(default=None, metadata={
        "help": "The negatives: a generate_negatives.py output folder, a save_to_disk folder, a Hub dataset id, "
                "NegCLIP's .tsv, or the authors' DeGLA.json (a local path or hf://datasets/<org>/<name>/<file>)."})
    train_format: str = field(default="auto", metadata={
        "help": "Format of --train_file; 'auto' detects it from the file and says which it found.",
        "choices": ["auto", *TRAIN_FORMATS]})
    image_root: str | None = field(default=None, metadata={
        "help": "Folder the images are relative to (for DeGLA.json: COCO's train2014 folder)."})
    dataset_split: str = field(default="train", metadata={"help": "Split to read from a Hub/parquet dataset."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N captions."})
    negative_slots: str = field(default=DEFAULT_NEGATIVE_SLOTS, metadata={
        "help": "Which rules feed each negative slot: ';'-separated slots of ','-separated rules. The default "
                "merges the two swap rules into one slot (K=4 from five rules); K < slots uses the first K."})
    missing_negative_policy: str = field(default="fill", metadata={
        "help": "A slot with no valid negative: 'fill' (another rule's negative of the same caption, else another "
                "caption's negative; counted) or 'drop' the caption (counted).", "choices": list(FILL_POLICIES)})
    skip_bad_images: bool = field(default=False, metadata={
        "help": "Skip (and count) rows whose image is missing, truncated or unreadable instead of stopping."})
    max_text_length: int = field(default=77, metadata={
        "help": "Token limit of captions and negatives, at most the text tower's length (SigLIP pads every text to "
                "that limit, as its authors do)."})
    train_augmentation: str = field(default="random_resized_crop", metadata={
        "help": "Training image augmentation: 'random_resized_crop' (the authors' RandomResizedCrop, bicubic, "
                "scale --crop_scale, seeded) or 'none' (the checkpoint's CLIPImageProcessor: resize and centre "
                "crop, no augmentation).",
        "choices": list(AUGMENTATIONS)})
    crop_scale: list[float] = field(default_factory=lambda: [0.9, 1.0], metadata={
        "help": "Area range of the random crop (the authors: 0.9 1.0)."})

    def __post_init__(self):
        check_ranges(self, max_train_samples=">= 1", max_text_length=">= 1")
        try:
            parse_negative_slots(self.negative_slots)
        except ValueError as err:
            raise InputError(f"--negative_slots: {err}") from None
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise InputError(f"--crop_scale takes two numbers 0 < min <= max <= 1, got {self.crop_scale}")


def _argument_field(config_field) -> tuple[str, type, object]:
    """A command-line argument for a `DeGLAConfig` objective field: same name, type, default and help."""
    hint = config_field.type  # a real type: configuration_degla.py does not postpone annotations
    if isinstance(hint, types.UnionType):
        hint = typing.get_args(hint)[0]  # `float | int` → float (argparse takes one type)
    return config_field.name, hint, field(default=config_field.default,
                                          metadata={"help": config_field.metadata["help"]})


def _check_objective(self) -> None:
    """Each objective option through its `DeGLAConfig` field's own check, before anything is loaded."""
    for config_field in objective_fields():
        value = getattr(self, config_field.name)
        for check in config_field.metadata.get("validator") or ():
            try:
                check(value)
            except ValueError as err:
                raise InputError(f"--{config_field.name} {value}: {str(err).split(', got')[0]}") from None


ObjectiveArguments = make_dataclass("ObjectiveArguments", [_argument_field(f) for f in objective_fields()],
                                    namespace={"__post_init__": _check_objective})
ObjectiveArguments.__doc__ = "The DeGLA objective's fields, derived from `DeGLAConfig` (defaults, help)."
ObjectiveArguments.__module__ = __name__


@dataclass
class DeGLATrainingArguments(TrainingArguments):
    """`TrainingArguments` with the defaults of the paper's recipe and, where it is silent, the authors' code.

    Each default below that differs from transformers' is a row of docs/recipe.md.
    """

    output_dir: str | None = field(default=None, metadata={
        "help": "Where the checkpoints, the wrapper and the drop-in CLIP export (<output_dir>/clip) are written; "
                "default: trainer_output (transformers' default)."})
    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate (paper: 1e-6)."})
    weight_decay: float = field(default=0.1, metadata={
        "help": "AdamW weight decay (paper: 0.1), applied as the authors' code does: never to parameters with "
                "fewer than 2 dimensions (biases, norms, class embedding, logit scale) nor to names containing "
                "'bn', 'ln', 'bias' or 'logit_scale'."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW β2 (paper: 0.98)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW ε (paper: 1e-6)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (paper: cosine)."})
    warmup_steps: float = field(default=50, metadata={"help": "Linear warm-up steps (paper: 50)."})
    open_clip_warmup: bool = field(default=True, metadata={
        "help": "Warm up as open_clip (the authors' code): step s uses lr·(s+1)/warmup_steps, so the first step "
                "already moves; false: transformers' lr·s/warmup_steps (the first step has lr 0)."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs (paper: 5)."})
    per_device_train_batch_size: int = field(default=32, metadata={
        "help": "Captions per device per step (paper: 32 on each of 8 GPUs, a global batch of 256)."})
    max_grad_norm: float = field(default=0.0, metadata={
        "help": "Gradient clipping norm; 0 = no clipping (the paper and the authors' code do not clip)."})
    dataloader_drop_last: bool = field(default=True, metadata={
        "help": "Drop the last partial batch (the authors' code); keeping it under DDP pads it with repeated "
                "samples, false negatives in the contrastive denominator."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})
    # -- safety --
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "Train into an --output_dir that already holds a run: its checkpoints, wrapper and export are removed "
                "when training starts."})
    allow_objective_change: bool = field(default=False, metadata={
        "help": "Resume a checkpoint with objective fields (λ, α, τ, K, ...) other than it was trained with."})

    def __post_init__(self):
        check_ranges(self, learning_rate="> 0", num_train_epochs="> 0", per_device_train_batch_size=">= 1",
                     per_device_eval_batch_size=">= 1", gradient_accumulation_steps=">= 1", warmup_steps=">= 0",
                     weight_decay=">= 0", max_grad_norm=">= 0", adam_beta1="in [0, 1)", adam_beta2="in [0, 1)",
                     adam_epsilon="> 0", logging_steps="> 0", save_steps="> 0", dataloader_num_workers=">= 0")
        if self.max_steps != -1 and self.max_steps < 1:  # -1: Trainer's "train --num_train_epochs epochs"
            raise InputError(f"--max_steps {self.max_steps}: must be >= 1, or -1 (train for --num_train_epochs "
                             "epochs)")
        super().__post_init__()
        import torch

        if self.dataloader_pin_memory and (self.use_cpu or not torch.accelerator.is_available()):
            self.dataloader_pin_memory = False  # pinning needs an accelerator: on a CPU, torch only warns it cannot
        if self.push_to_hub and not self.hub_model_id:
            raise InputError("--push_to_hub uploads the drop-in CLIP export: name its repository with "
                             "--hub_model_id org/name")


TRAINING = Stage(
    name="train", argument_types=(ModelArguments, DataArguments, ObjectiveArguments, DeGLATrainingArguments),
    run="degla.training.run:run_training",
    description="Fine-tune a CLIP, SigLIP or SigLIP 2 model with DeGLA and export a drop-in checkpoint of its own "
                "class.",
    help_groups=(
        ("The run and its data", (
            "model_name_or_path", "train_file", "train_format", "image_root", "dataset_split", "max_train_samples",
            "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "allow_objective_change", "license",
            "push_to_hub", "hub_model_id", "seed", "use_lora", "lora_r", "lora_alpha", "lora_dropout",
            "lora_target_modules")),
        ("DeGLA's objective (the paper's values by default)", tuple(f.name for f in objective_fields())),
        ("Negatives and images", tuple(f.name for f in dataclasses.fields(DataArguments)
                                       if f.name not in ("train_file", "train_format", "image_root", "dataset_split",
                                                         "max_train_samples"))),
        ("The recipe (TrainingArguments with the paper's defaults)", tuple(
            name for name in DeGLATrainingArguments.__annotations__ if name not in
            ("overwrite_output_dir", "allow_objective_change"))),
        ("Everything else Trainer passes through (transformers' TrainingArguments)", ("*",)),
    ))
