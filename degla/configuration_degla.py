"""DeGLA model configuration: the student's CLIP config and the single definition of the objective's fields.

Every objective hyperparameter (its default, help and validation) is written here once, as a field of
[`DeGLAConfig`] marked `objective=True` in its metadata. The training arguments are derived from these fields
(`degla.training.arguments`), the model card and the logs read `model.config`, and a resumed run is compared
against the checkpoint's saved config field by field.
"""

from dataclasses import fields
from typing import Literal

from huggingface_hub.dataclasses import strict, validated_field
from transformers import CLIPConfig, PreTrainedConfig


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
    r"""Configuration of [`DeGLAForContrastive`]: the student's CLIP config and the objective's hyperparameters.

    The objective's fields (`ema_decay`, `lambda_igc`, `lambda_tgc`, `lambda_distill`, `tgc_temperature`,
    `distill_reduction`, `num_negatives`) are declared below with `objective_field`: each one's default (the
    paper's, or the authors' code where the paper is silent; docs/recipe.md), help text and check are written
    there once, and `scripts/train.py --help` shows them.

    Args:
        clip_config (`dict` or `CLIPConfig`, *optional*):
            Config of the student (and of its EMA teacher). Defaults to `CLIPConfig()` (ViT-B/32 sizes).
        lora_config (`dict`, *optional*):
            Keyword arguments of `peft.LoraConfig`; when set, the student (and its teacher copy) carry LoRA adapters
            and only the adapters and the logit scale train.
    """

    model_type = "degla"
    sub_configs_defaults = {"clip_config": CLIPConfig}

    clip_config: dict | CLIPConfig | None = None
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

    def objective(self) -> dict:
        """The objective's fields and values (what the model card records and a resume must match)."""
        return {f.name: getattr(self, f.name) for f in objective_fields()}


def objective_fields() -> tuple:
    """The dataclass fields of [`DeGLAConfig`] that define the objective, in declaration order."""
    return tuple(f for f in fields(DeGLAConfig) if f.metadata.get("objective"))


__all__ = ["DeGLAConfig", "objective_fields"]
