"""The arguments of a DeGLA training run, split by concern as in transformers' `run_clip.py`:

- `ModelArguments`: which CLIP to fine-tune and how (full or LoRA);
- `DataArguments`: the negatives dataset, its images and the training-time image augmentation;
- `ObjectiveArguments`: derived field by field from `DeGLAConfig`'s objective fields (never retyped here);
- `DeGLATrainingArguments`: `TrainingArguments` with the recipe's defaults (docs/recipe.md).

`scripts/train.py` parses all four (also from a `--config` JSON/YAML file) and calls `run_training`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, make_dataclass

from transformers import TrainingArguments

from ..configuration_degla import objective_fields
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

    def __post_init__(self):
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
        parse_negative_slots(self.negative_slots)
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"--crop_scale takes two numbers 0 < min <= max <= 1, got {self.crop_scale}")


def _argument_field(config_field) -> tuple[str, type, object]:
    """A command-line argument for a `DeGLAConfig` objective field: same name, type, default and help."""
    hint = config_field.type  # a real type: configuration_degla.py does not postpone annotations
    if isinstance(hint, types.UnionType):
        hint = typing.get_args(hint)[0]  # `float | int` → float (argparse takes one type)
    return config_field.name, hint, field(default=config_field.default,
                                          metadata={"help": config_field.metadata["help"]})


ObjectiveArguments = make_dataclass("ObjectiveArguments", [_argument_field(f) for f in objective_fields()])
ObjectiveArguments.__doc__ = "The DeGLA objective's fields, derived from `DeGLAConfig` (defaults, help)."
ObjectiveArguments.__module__ = __name__


@dataclass
class DeGLATrainingArguments(TrainingArguments):
    """`TrainingArguments` with the defaults of the paper's recipe and, where it is silent, the authors' code.

    Each default below that differs from transformers' is a row of docs/recipe.md.
    """

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
        super().__post_init__()
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub uploads the drop-in CLIP export: name its repository with "
                             "--hub_model_id org/name")
