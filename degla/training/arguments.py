"""`DeGLATrainingArguments`: TrainingArguments plus the DeGLA objective, data and LoRA options.

Defaults follow the paper's recipe (table 8) where it differs from transformers': lr 1e-6, weight decay 0.1,
Adam β2 0.98, ε 1e-6, cosine schedule, 50 warm-up steps, 5 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..losses import DISTILL_REDUCTIONS
from .data import DEFAULT_NEGATIVE_SLOTS, FILL_POLICIES, parse_negative_slots

OBJECTIVE_FIELDS = ("ema_decay", "lambda_igc", "lambda_tgc", "lambda_distill", "tgc_temperature",
                    "distill_reduction", "num_negatives")


@dataclass
class DeGLATrainingArguments(TrainingArguments):
    # -- the objective (names and defaults of DeGLAConfig) --
    ema_decay: float = field(default=0.9996, metadata={"help": "α of the EMA teacher, θ* ← α·θ* + (1−α)·θ after "
                                                                 "every optimizer step."})
    lambda_igc: float = field(default=0.1, metadata={"help": "λ1, weight of the image-grounded contrast."})
    lambda_tgc: float = field(default=0.1, metadata={"help": "λ2, weight of the text-grounded contrast."})
    lambda_distill: float = field(default=0.005, metadata={"help": "λ3, weight of the self-distillation term."})
    tgc_temperature: float = field(default=0.1, metadata={"help": "Fixed temperature τ of the text-grounded "
                                                                    "contrast."})
    distill_reduction: str = field(default="sum", metadata={
        "help": "'sum' over the samples of the global batch (paper eq. 7) or 'mean' over samples.",
        "choices": list(DISTILL_REDUCTIONS)})
    num_negatives: int = field(default=4, metadata={"help": "K, hard-negative captions per caption per step."})
    # -- negatives data --
    negative_slots: str = field(default=DEFAULT_NEGATIVE_SLOTS, metadata={
        "help": "Which rules feed each of the K negative slots: ';'-separated slots of ','-separated rules. The "
                "default merges the two swap rules into one slot (K=4 from five rules)."})
    missing_negative_policy: str = field(default="fill", metadata={
        "help": "A slot whose rules gave no valid negative: 'fill' (another rule's negative of the same caption, "
                "else another caption's negative; counted) or 'drop' the caption (counted).",
        "choices": list(FILL_POLICIES)})
    skip_bad_images: bool = field(default=False, metadata={
        "help": "Skip (and count) rows whose image is missing or unreadable instead of stopping with an error."})
    max_text_length: int = field(default=77, metadata={"help": "Token limit of captions and negatives."})
    # -- parameter-efficient training --
    use_lora: bool = field(default=False, metadata={
        "help": "Train LoRA adapters on the student's attention and MLP projections (peft) plus the logit scale; "
                "the EMA teacher tracks only what trains; the export merges the adapters."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(default="q_proj,k_proj,v_proj,out_proj,fc1,fc2", metadata={
        "help": "Comma-separated module names that get adapters."})
    # -- paper recipe defaults that differ from transformers' --
    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate (paper: 1e-6)."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (paper: 0.1); never applied to "
                                                                 "biases, norms or the logit scale."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW β2 (paper: 0.98)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW ε (paper: 1e-6)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (paper: cosine)."})
    warmup_steps: float = field(default=50, metadata={"help": "Linear warm-up steps (paper: 50)."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs (paper: 5)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})

    def __post_init__(self):
        super().__post_init__()
        parse_negative_slots(self.negative_slots)
        if self.num_negatives < 0:
            raise ValueError(f"--num_negatives must be >= 0, got {self.num_negatives}")
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push_to_hub uploads the drop-in CLIP export: name its repository with "
                             "--hub_model_id org/name")

    def objective_kwargs(self) -> dict:
        """The DeGLAConfig fields these arguments set."""
        return {name: getattr(self, name) for name in OBJECTIVE_FIELDS}

    def lora_config(self) -> dict | None:
        """Keyword arguments of `peft.LoraConfig` for the student, or None without `--use_lora`."""
        if not self.use_lora:
            return None
        return {"r": self.lora_r, "lora_alpha": self.lora_alpha, "lora_dropout": self.lora_dropout,
                "target_modules": [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]}
