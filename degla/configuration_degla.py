"""DeGLA model configuration: the student's config (CLIP, SigLIP or SigLIP 2) and the single definition of the
objective's fields.

Every objective hyperparameter (its default, help and validation) is written here once, as a field of
[`DeGLAConfig`] marked `objective=True` in its metadata. The training arguments are derived from these fields
(`degla.training.arguments`), the model card and the logs read `model.config`, and a resumed run is compared
against the checkpoint's saved config field by field.
"""

from dataclasses import fields
from typing import Literal

from huggingface_hub.dataclasses import strict, validated_field
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .families import Family, family_of_type, trainable_families


def _in_unit_interval(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must lie in [0, 1], got {value}")


def _non_negative(value: float) -> None:
    if value < 0:
        raise ValueError(f"must be >= 0 (0 switches the term off), got {value}")


def _positive(value: float) -> None:
    if not value > 0:
        raise ValueError(f"must be > 0, got {value}")


def _non_negative_int(value: int) -> None:
    if value < 0:
        raise ValueError(f"must be an integer >= 0 (0 trains without negatives), got {value}")


def objective_field(default, help: str, validator=None):
    """A field of the DeGLA objective: its default, its `--help` text and its check, in one place.

    The check runs whenever the field is set (at construction and on assignment), through `@strict`.
    """
    return validated_field(validator or [], default=default, metadata={"help": help, "objective": True})


@strict
class DeGLAConfig(PreTrainedConfig):
    r"""Configuration of [`DeGLAForContrastive`]: the student's config and the objective's hyperparameters.

    The objective's fields (`ema_decay`, `lambda_igc`, `lambda_tgc`, `lambda_distill`, `tgc_temperature`,
    `distill_reduction`, `num_negatives`) are declared below with `objective_field`: each one's default (the
    paper's, or the authors' code where the paper is silent; docs/recipe.md), help text and check are written
    there once, and `scripts/train.py --help` shows them.

    Args:
        student_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the student (and of its EMA teacher) of a family DeGLA trains (`CLIPConfig`, `SiglipConfig`,
            `Siglip2Config`; a dict is built by its `model_type`). Its `model_type` is the family (`family`), which
            picks the base term and the logit-scale clamp (`degla.families`). Defaults to `CLIPConfig()` (ViT-B/32
            sizes). `clip_config`, the name from when only CLIP was wrapped, is the same field.
        lora_config (`dict`, *optional*):
            Keyword arguments of `peft.LoraConfig`; when set, the student (and its teacher copy) carry LoRA adapters
            and only the adapters and the logit scale train.
    """

    model_type = "degla"
    attribute_map = {"clip_config": "student_config"}  # wrappers saved when only CLIP was wrapped
    sub_configs_defaults = {"student_config": SubConfigSpec(config_class=AutoConfig, model_type="clip")}

    student_config: dict | PreTrainedConfig | None = None
    ema_decay: float | int = objective_field(
        0.9996, "α of the EMA teacher, θ* ← α·θ* + (1−α)·θ after every optimizer step.", _in_unit_interval)
    lambda_igc: float | int = objective_field(
        0.1, "λ1, weight of the image-grounded contrast (eq. 8); 0 switches it off.", _non_negative)
    lambda_tgc: float | int = objective_field(
        0.1, "λ2, weight of the text-grounded contrast (eq. 9); 0 switches it off.", _non_negative)
    lambda_distill: float | int = objective_field(
        0.005, "λ3, weight of the self-distillation term (eq. 7); 0 switches it off.", _non_negative)
    tgc_temperature: float | int = objective_field(
        0.1, "Fixed temperature τ of the text-grounded contrast (the authors' code; the paper gives none).",
        _positive)
    distill_reduction: Literal["sum", "mean"] = objective_field(
        "sum", "'sum' over the samples of the global batch (eq. 7, the authors' code) or 'mean' over samples "
               "(batch-size-free λ3).")
    num_negatives: int = objective_field(
        4, "K, hard-negative captions per caption per step (0: plain CLIP fine-tuning without negatives).",
        _non_negative_int)
    lora_config: dict | None = None

    def __post_init__(self, **kwargs):
        if "clip_config" in kwargs:  # the field's former name (`attribute_map` maps it after construction only)
            clip_config = kwargs.pop("clip_config")
            if self.student_config is not None and clip_config is not None:
                raise ValueError("pass the student's config once, as student_config (clip_config is its former name)")
            self.student_config = self.student_config if clip_config is None else clip_config
        super().__post_init__(**kwargs)
        if self.student_config.model_type not in trainable_families():
            raise ValueError(f"DeGLA trains the dual-encoder families {trainable_families()} (a base term is defined "
                             f"for each, degla.families); the student's model_type is "
                             f"{self.student_config.model_type!r}")

    @property
    def family(self) -> Family:
        """The student's family (`degla.families.FAMILIES[student_config.model_type]`)."""
        return family_of_type(self.student_config.model_type)

    def objective(self) -> dict:
        """The objective's fields and values (what the model card records and a resume must match)."""
        return {f.name: getattr(self, f.name) for f in objective_fields()}


def objective_fields() -> tuple:
    """The dataclass fields of [`DeGLAConfig`] that define the objective, in declaration order."""
    return tuple(f for f in fields(DeGLAConfig) if f.metadata.get("objective"))


__all__ = ["DeGLAConfig", "objective_fields"]
