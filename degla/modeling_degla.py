"""DeGLA model: a trainable CLIP student, its frozen EMA teacher and the DeGLA objective.

Reads top to bottom like transformers' `modeling_clip.py`: output dataclass, the model. The config is in
`configuration_degla.py`, the objective in `losses.py`.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, CLIPModel, PreTrainedModel
from transformers.utils import ModelOutput

from .atomic_io import atomic_directory
from .configuration_degla import DeGLAConfig
from .losses import DeGLAObjective, ObjectiveInputs, contrastive_logits, gather_features

LOGIT_SCALE_MAX = math.log(100.0)


@dataclass
class DeGLAOutput(ModelOutput):
    r"""Output of [`DeGLAForContrastive`]. N is the global batch (= b on one process), all embeddings L2-normalised.

    Args:
        loss (`torch.FloatTensor` of shape `()`): L_base + λ1·L_IGC + λ2·L_TGC + λ3·L_Distill.
        loss_terms (`dict[str, torch.FloatTensor]`, each of shape `()`): every computed term by name: `loss_base`
            (eq. 5), `loss_igc` (eq. 8), `loss_tgc` (eq. 9), `loss_distill` (eq. 7); a term whose λ is 0 is not
            computed. Each is also an attribute (`output.loss_igc`).
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
    loss_terms: dict[str, torch.FloatTensor] | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    negative_text_embeds: torch.FloatTensor | None = None
    teacher_image_embeds: torch.FloatTensor | None = None
    teacher_text_embeds: torch.FloatTensor | None = None
    teacher_negative_text_embeds: torch.FloatTensor | None = None

    def __getattr__(self, name: str):
        terms = self.__dict__.get("loss_terms")
        if name.startswith("loss_") and terms is not None and name in terms:
            return terms[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}"
                             + (f" (computed terms: {sorted(terms)})" if name.startswith("loss_") and terms else ""))


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
        self.objective = DeGLAObjective(config)
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
                raise ValueError(f"negative_input_ids must have shape (batch={b}, K, L), "
                                 f"got {tuple(negative_input_ids.shape)}")
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

        embeds = dict(image_embeds=image_embeds, text_embeds=text_embeds, negative_text_embeds=negative_text_embeds)
        logit_scale = self.logit_scale.exp()
        if not return_loss:  # the base loss's logits over this process's batch (no gathering)
            logits_per_image, logits_per_text = contrastive_logits(ObjectiveInputs(
                logit_scale=logit_scale, gathered=gather_features(**embeds, enabled=False), **embeds))
            return DeGLAOutput(logits_per_image=logits_per_image, logits_per_text=logits_per_text, **embeds)

        teacher = dict(teacher_image_embeds=None, teacher_text_embeds=None, teacher_negative_text_embeds=None)
        if self.objective.needs_teacher(has_negatives=k > 0):
            with torch.no_grad():
                t_image, t_text = _encode(self.teacher, pixel_values, texts, masks)
            teacher = dict(teacher_image_embeds=t_image, teacher_text_embeds=t_text[:b],
                           teacher_negative_text_embeds=t_text[b:].view(b, k, -1) if k else None)
        gathered = gather_features(image_embeds, text_embeds, negative_text_embeds, enabled=gather_distributed)
        result = self.objective(ObjectiveInputs(logit_scale=logit_scale, gathered=gathered,
                                                num_shards=gathered.world_size * accumulation_steps,
                                                **embeds, **teacher))
        return DeGLAOutput(loss=result.loss, loss_terms=result.terms, logits_per_image=result.logits_per_image,
                           logits_per_text=result.logits_per_text, **embeds, **teacher)

    # -- export ---------------------------------------------------------------------------------------------
    def export_clip(self, save_directory: str | os.PathLike, processor=None,
                    extra_files: dict[str, str] | None = None) -> CLIPModel:
        """Write the student as a plain `CLIPModel` checkpoint (safetensors) that `CLIPModel.from_pretrained` loads.

        LoRA adapters (peft) are merged into a copy first, so the export needs nothing but transformers.
        `processor` (a `CLIPProcessor`) is saved beside it, and `extra_files` ({name: text}, e.g. the model card).
        The folder is built under a temporary name and swapped in whole: a killed export leaves no folder that
        looks finished. Returns the exported `CLIPModel`.
        """
        clip = self.student
        if hasattr(clip, "merge_and_unload"):  # a peft model
            clip = copy.deepcopy(clip).merge_and_unload()
        with atomic_directory(save_directory) as tmp:
            clip.save_pretrained(tmp, safe_serialization=True)
            if processor is not None:
                processor.save_pretrained(tmp)
            for name, text in (extra_files or {}).items():
                with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                    f.write(text)
        return clip


AutoConfig.register("degla", DeGLAConfig)
AutoModel.register(DeGLAConfig, DeGLAForContrastive)

__all__ = ["DeGLAOutput", "DeGLAPreTrainedModel", "DeGLAForContrastive", "LOGIT_SCALE_MAX"]
