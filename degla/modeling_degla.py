"""DeGLA model: a trainable CLIP student, its frozen EMA teacher and the DeGLA objective.

Reads top to bottom like transformers' `modeling_clip.py`: config, output dataclass, the model.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, CLIPConfig, CLIPModel, PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .losses import DISTILL_REDUCTIONS, base_loss, distill_loss, gather_features, igc_loss, tgc_loss

LOGIT_SCALE_MAX = math.log(100.0)


class DeGLAConfig(PreTrainedConfig):
    r"""Configuration of [`DeGLAForContrastive`]: the student's CLIP config and the objective's hyperparameters.

    Args:
        clip_config (`dict` or `CLIPConfig`, *optional*):
            Config of the student (and of its EMA teacher). Defaults to `CLIPConfig()` (ViT-B/32 sizes).
        ema_decay (`float`, *optional*, defaults to 0.9996):
            α of the teacher update θ* ← α·θ* + (1−α)·θ, applied after every optimizer step.
        lambda_igc (`float`, *optional*, defaults to 0.1):
            λ1, weight of the image-grounded contrast.
        lambda_tgc (`float`, *optional*, defaults to 0.1):
            λ2, weight of the text-grounded contrast.
        lambda_distill (`float`, *optional*, defaults to 0.005):
            λ3, weight of the self-distillation term.
        tgc_temperature (`float`, *optional*, defaults to 0.1):
            Fixed temperature τ of the text-grounded contrast.
        distill_reduction (`str`, *optional*, defaults to `"sum"`):
            `"sum"` over the samples of the global batch (the paper's eq. 7) or `"mean"` over samples.
        num_negatives (`int`, *optional*, defaults to 4):
            K, hard-negative captions per positive caption.
        lora_config (`dict`, *optional*):
            Keyword arguments of `peft.LoraConfig`; when set, the student (and its teacher copy) carry LoRA adapters
            and only the adapters and the logit scale train.
    """

    model_type = "degla"
    sub_configs = {"clip_config": CLIPConfig}

    def __init__(self, clip_config: dict | CLIPConfig | None = None, ema_decay: float = 0.9996,
                 lambda_igc: float = 0.1, lambda_tgc: float = 0.1, lambda_distill: float = 0.005,
                 tgc_temperature: float = 0.1, distill_reduction: str = "sum", num_negatives: int = 4,
                 lora_config: dict | None = None, **kwargs):
        if clip_config is None:
            clip_config = CLIPConfig()
        elif isinstance(clip_config, dict):
            clip_config = CLIPConfig(**clip_config)
        self.clip_config = clip_config
        self.ema_decay = ema_decay
        self.lambda_igc = lambda_igc
        self.lambda_tgc = lambda_tgc
        self.lambda_distill = lambda_distill
        self.tgc_temperature = tgc_temperature
        self.distill_reduction = distill_reduction
        self.num_negatives = num_negatives
        self.lora_config = lora_config
        self._check_values()
        super().__init__(**kwargs)

    def _check_values(self) -> None:
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1] (the paper uses 0.9996), got {self.ema_decay}")
        for name in ("lambda_igc", "lambda_tgc", "lambda_distill"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0 (0 switches the term off), got {value!r}")
        if not self.tgc_temperature > 0:
            raise ValueError(f"tgc_temperature must be > 0 (the paper uses 0.1), got {self.tgc_temperature}")
        if self.distill_reduction not in DISTILL_REDUCTIONS:
            raise ValueError(f"distill_reduction must be one of {DISTILL_REDUCTIONS}, got {self.distill_reduction!r}")
        if not (isinstance(self.num_negatives, int) and self.num_negatives >= 0):
            raise ValueError(f"num_negatives must be an integer >= 0, got {self.num_negatives!r}")

    @property
    def needs_teacher(self) -> bool:
        """The teacher's forward is only needed by the TGC and distillation terms."""
        return self.lambda_tgc > 0 or self.lambda_distill > 0


@dataclass
class DeGLAOutput(ModelOutput):
    r"""Output of [`DeGLAForContrastive`]. N is the global batch (= b on one process), all embeddings L2-normalised.

    Args:
        loss (`torch.FloatTensor` of shape `()`): L_base + λ1·L_IGC + λ2·L_TGC + λ3·L_Distill.
        loss_base (`torch.FloatTensor` of shape `()`): hard-negative-aware CLIP loss (eq. 5).
        loss_igc (`torch.FloatTensor` of shape `()`): image-grounded contrast (eq. 8).
        loss_tgc (`torch.FloatTensor` of shape `()`): text-grounded contrast (eq. 9).
        loss_distill (`torch.FloatTensor` of shape `()`): self-distillation (eq. 7).
        logits_per_image (`torch.FloatTensor` of shape `(b, N + N·K)`): scaled image→[captions; negatives].
        logits_per_text (`torch.FloatTensor` of shape `(b, N)`): scaled caption→image similarities.
        image_embeds (`torch.FloatTensor` of shape `(b, d)`): student image embeddings.
        text_embeds (`torch.FloatTensor` of shape `(b, d)`): student caption embeddings.
        negative_text_embeds (`torch.FloatTensor` of shape `(b, K, d)`): student negative-caption embeddings.
        teacher_image_embeds (`torch.FloatTensor` of shape `(b, d)`): teacher image embeddings.
        teacher_text_embeds (`torch.FloatTensor` of shape `(b, d)`): teacher caption embeddings.
        teacher_negative_text_embeds (`torch.FloatTensor` of shape `(b, K, d)`): teacher negative embeddings.
    """

    loss: torch.FloatTensor | None = None
    loss_base: torch.FloatTensor | None = None
    loss_igc: torch.FloatTensor | None = None
    loss_tgc: torch.FloatTensor | None = None
    loss_distill: torch.FloatTensor | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    negative_text_embeds: torch.FloatTensor | None = None
    teacher_image_embeds: torch.FloatTensor | None = None
    teacher_text_embeds: torch.FloatTensor | None = None
    teacher_negative_text_embeds: torch.FloatTensor | None = None


def _pad_to(ids: torch.Tensor, mask: torch.Tensor, length: int, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    extra = length - ids.shape[-1]
    return F.pad(ids, (0, extra), value=pad_token_id), F.pad(mask, (0, extra), value=0)


def _encode(clip: CLIPModel, pixel_values: torch.Tensor, input_ids: torch.Tensor,
            attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image and text embeddings (texts = all captions, batched in one call)."""
    image = clip.get_image_features(pixel_values=pixel_values).pooler_output
    text = clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output
    return F.normalize(image, dim=-1), F.normalize(text, dim=-1)


def _add_lora(clip: CLIPModel, lora_config: dict):
    """Wrap the student with LoRA adapters (peft); the logit scale keeps training."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(clip, LoraConfig(**lora_config))
    model.base_model.model.logit_scale.requires_grad_(True)
    return model


def _clip_of(student) -> CLIPModel:
    """The CLIPModel inside a student that may be wrapped by peft."""
    return student.base_model.model if hasattr(student, "merge_and_unload") else student


class DeGLAPreTrainedModel(PreTrainedModel):
    config_class = DeGLAConfig
    base_model_prefix = "degla"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CLIPEncoderLayer"]
    # Attention backends are those of the wrapped CLIPModel; declaring them keeps the wrapper from forcing
    # "eager" onto the student's sub-configs.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def _init_weights(self, module):
        # Weights come from the CLIP student (pretrained or CLIP's own initialisation) and its copy.
        pass


class DeGLAForContrastive(DeGLAPreTrainedModel):
    """A trainable CLIP `student` with a frozen EMA `teacher` and the DeGLA objective.

    Build it from a CLIP checkpoint with [`DeGLAForContrastive.from_clip`]; resume a run with `from_pretrained`
    (student and teacher both restored); ship the student with [`export_clip`].
    """

    def __init__(self, config: DeGLAConfig, student: CLIPModel | None = None):
        super().__init__(config)
        student = student if student is not None else CLIPModel(config.clip_config)
        self.student = _add_lora(student, config.lora_config) if config.lora_config else student
        self.teacher = copy.deepcopy(self.student)
        self._freeze_teacher()
        self.post_init()

    def _freeze_teacher(self) -> None:
        self.teacher.requires_grad_(False)
        self.teacher.eval()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """Load a saved wrapper (student and teacher); loading replaces parameters, so the teacher is re-frozen."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._freeze_teacher()
        return loaded

    @classmethod
    def from_clip(cls, clip: CLIPModel | str | os.PathLike, **config_overrides) -> "DeGLAForContrastive":
        """Wrap a `CLIPModel` (or a hub id / local folder `CLIPModel.from_pretrained` takes); teacher = exact copy."""
        if not isinstance(clip, CLIPModel):
            clip = CLIPModel.from_pretrained(clip)
        config = DeGLAConfig(clip_config=copy.deepcopy(clip.config), **config_overrides)
        return cls(config, student=clip)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher stays in eval mode (no dropout) whatever the student does
        return self

    # -- teacher and temperature maintenance (called by the trainer after every optimizer step) --------------
    def _ema_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(teacher, student) parameters the EMA tracks: those of the student that train (e.g. LoRA only)."""
        teacher_params = dict(self.teacher.named_parameters())
        pairs = [(teacher_params[name], p) for name, p in self.student.named_parameters() if p.requires_grad]
        return [t for t, _ in pairs], [s for _, s in pairs]

    @torch.no_grad()
    def update_teacher(self, decay: float | None = None) -> None:
        """One EMA step θ* ← α·θ* + (1−α)·θ = lerp(θ*, θ, 1−α) over all trained parameters, in one fused
        `torch._foreach_lerp_` pass (no Python loop over elements)."""
        alpha = self.config.ema_decay if decay is None else decay
        teacher, student = self._ema_pairs()
        torch._foreach_lerp_(teacher, student, 1.0 - alpha)

    @property
    def logit_scale(self) -> torch.nn.Parameter:
        """The student's learnable log temperature (s = exp(logit_scale))."""
        return _clip_of(self.student).logit_scale

    @torch.no_grad()
    def clamp_logit_scale(self, max_value: float = LOGIT_SCALE_MAX) -> None:
        """Clamp the learnable log temperature to [0, ln 100] (CLIP/open_clip, after every optimizer step)."""
        self.logit_scale.clamp_(0, max_value)

    # -- forward --------------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.LongTensor, pixel_values: torch.FloatTensor,
                attention_mask: torch.LongTensor | None = None, negative_input_ids: torch.LongTensor | None = None,
                negative_attention_mask: torch.LongTensor | None = None, return_loss: bool | None = None,
                gather_distributed: bool = False, accumulation_steps: int = 1, **kwargs) -> DeGLAOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(b, L)`): positive captions.
            pixel_values (`torch.FloatTensor` of shape `(b, 3, H, W)`): images.
            attention_mask (`torch.LongTensor` of shape `(b, L)`, *optional*).
            negative_input_ids (`torch.LongTensor` of shape `(b, K, L')`, *optional*): hard negatives per caption.
            negative_attention_mask (`torch.LongTensor` of shape `(b, K, L')`, *optional*).
            return_loss (`bool`, *optional*): compute the objective (default: when the model is training).
            gather_distributed (`bool`, defaults to `False`): gather embeddings across processes with gradients
                so the base loss contrasts against the global batch (the trainer sets this).
            accumulation_steps (`int`, defaults to 1): micro-batches accumulated into one optimizer step. The
                trainer divides each micro-batch loss by it; the summed distillation is scaled back up so the step
                sees the sum over every accumulated sample, as with one big batch. (Contrastive negatives stay
                those of the micro-batch.)
        """
        if return_loss is None:
            return_loss = self.training
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        b = input_ids.shape[0]
        k = 0
        texts, masks = input_ids, attention_mask
        if negative_input_ids is not None:
            if negative_input_ids.dim() != 3 or negative_input_ids.shape[0] != b:
                raise ValueError(f"negative_input_ids must have shape (batch={b}, K, L), got {tuple(negative_input_ids.shape)}")
            k = negative_input_ids.shape[1]
            if negative_attention_mask is None:
                negative_attention_mask = torch.ones_like(negative_input_ids)
            neg_ids, neg_mask = negative_input_ids.flatten(0, 1), negative_attention_mask.flatten(0, 1)
            length = max(texts.shape[-1], neg_ids.shape[-1])
            pad = self.config.clip_config.text_config.pad_token_id or 0
            texts, masks = _pad_to(texts, masks, length, pad)
            neg_ids, neg_mask = _pad_to(neg_ids, neg_mask, length, pad)
            texts, masks = torch.cat([texts, neg_ids]), torch.cat([masks, neg_mask])

        image_embeds, all_text = _encode(self.student, pixel_values, texts, masks)
        text_embeds, negative_text_embeds = all_text[:b], (all_text[b:].view(b, k, -1) if k else None)

        teacher = (None, None, None)
        if return_loss and self.config.needs_teacher:
            with torch.no_grad():
                t_image, t_text = _encode(self.teacher, pixel_values, texts, masks)
            teacher = (t_image, t_text[:b], t_text[b:].view(b, k, -1) if k else None)

        output = DeGLAOutput(image_embeds=image_embeds, text_embeds=text_embeds,
                             negative_text_embeds=negative_text_embeds, teacher_image_embeds=teacher[0],
                             teacher_text_embeds=teacher[1], teacher_negative_text_embeds=teacher[2])
        logit_scale = self.logit_scale.exp()
        if not return_loss:
            output.logits_per_text = logit_scale * text_embeds @ image_embeds.t()
            output.logits_per_image = logit_scale * image_embeds @ torch.cat(
                [text_embeds] + ([negative_text_embeds.flatten(0, 1)] if k else [])).t()
            return output
        return self._objective(output, logit_scale, gather_distributed, accumulation_steps)

    def _objective(self, out: DeGLAOutput, logit_scale: torch.Tensor, gather_distributed: bool,
                   accumulation_steps: int) -> DeGLAOutput:
        config = self.config
        gathered = gather_features(out.image_embeds, out.text_embeds, out.negative_text_embeds,
                                   enabled=gather_distributed)
        terms = base_loss(out.image_embeds, out.text_embeds, logit_scale, gathered)
        out.logits_per_image, out.logits_per_text = terms["logits_per_image"], terms["logits_per_text"]
        zero = terms["loss_base"].new_zeros(())
        has_negatives = out.negative_text_embeds is not None
        if has_negatives and config.lambda_igc > 0:
            terms.update(igc_loss(out.image_embeds, out.text_embeds, out.negative_text_embeds, logit_scale))
        if has_negatives and config.lambda_tgc > 0:
            terms.update(tgc_loss(out.text_embeds, out.teacher_text_embeds, out.negative_text_embeds,
                                  config.tgc_temperature))
        if config.lambda_distill > 0:
            pairs = [(out.image_embeds, out.teacher_image_embeds), (out.text_embeds, out.teacher_text_embeds)]
            if has_negatives:
                pairs.append((out.negative_text_embeds, out.teacher_negative_text_embeds))
            student, teacher = zip(*pairs)
            terms.update(distill_loss(student, teacher, config.distill_reduction,
                                      num_shards=gathered.world_size * accumulation_steps))
        out.loss_base = terms["loss_base"]
        out.loss_igc = terms.get("loss_igc", zero)
        out.loss_tgc = terms.get("loss_tgc", zero)
        out.loss_distill = terms.get("loss_distill", zero)
        out.loss = (out.loss_base + config.lambda_igc * out.loss_igc + config.lambda_tgc * out.loss_tgc
                    + config.lambda_distill * out.loss_distill)
        return out

    # -- export ---------------------------------------------------------------------------------------------
    def export_clip(self, save_directory: str | os.PathLike, processor=None, **kwargs) -> CLIPModel:
        """Write the student as a plain `CLIPModel` checkpoint (safetensors) that `CLIPModel.from_pretrained` loads.

        LoRA adapters (peft) are merged into a copy first, so the export needs nothing but transformers.
        `processor` (a `CLIPProcessor`) is saved beside it; `kwargs` go to `save_pretrained` (e.g. `push_to_hub`).
        Returns the exported `CLIPModel`.
        """
        clip = self.student
        if hasattr(clip, "merge_and_unload"):  # a peft model
            clip = copy.deepcopy(clip).merge_and_unload()
        clip.save_pretrained(save_directory, safe_serialization=True, **kwargs)
        if processor is not None:
            processor.save_pretrained(save_directory, **kwargs)
        return clip


AutoConfig.register("degla", DeGLAConfig)
AutoModel.register(DeGLAConfig, DeGLAForContrastive)

__all__ = ["DeGLAConfig", "DeGLAOutput", "DeGLAPreTrainedModel", "DeGLAForContrastive", "LOGIT_SCALE_MAX"]
