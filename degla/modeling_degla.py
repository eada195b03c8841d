"""DeGLA model: a trainable dual-encoder student (CLIP, SigLIP, SigLIP 2), its frozen EMA teacher and the objective.

Reads top to bottom like transformers' `modeling_clip.py`: output dataclass, the model. The config is in
`configuration_degla.py`, the objective in `losses.py`.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from .atomic_io import atomic_directory
from .configuration_degla import DeGLAConfig
from .families import FAMILIES
from .losses import DeGLAObjective, ObjectiveInputs, contrastive_logits, gather_features

LOGIT_SCALE_MAX = FAMILIES["clip"].logit_scale_max  # ln 100, CLIP's clamp


@dataclass
class DeGLAOutput(ModelOutput):
    r"""Output of [`DeGLAForContrastive`]. N is the global batch (= b on one process), all embeddings L2-normalised.

    Args:
        loss (`torch.FloatTensor` of shape `()`): L_base + λ1·L_IGC + λ2·L_TGC + λ3·L_Distill.
        loss_terms (`dict[str, torch.FloatTensor]`, each of shape `()`): every computed term by name: `loss_base`
            (eq. 5 for CLIP, the sigmoid loss for SigLIP), `loss_igc` (eq. 8), `loss_tgc` (eq. 9), `loss_distill`
            (eq. 7); a term whose λ is 0 is not computed. Each is also an attribute (`output.loss_igc`).
        logits_per_image (`torch.FloatTensor` of shape `(b, N + N·K)`): image→[captions; negatives], s·cos (+ b for
            the sigmoid families).
        logits_per_text (`torch.FloatTensor` of shape `(b, N)`): caption→image logits, likewise.
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


def _pad_to(ids: torch.Tensor, mask: torch.Tensor | None, length: int,
            pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    extra = length - ids.shape[-1]
    return F.pad(ids, (0, extra), value=pad_token_id), None if mask is None else F.pad(mask, (0, extra), value=0)


def _encode(model, image_inputs: dict[str, torch.Tensor], input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image and text embeddings (texts = all captions, batched in one call). `image_inputs`: what
    the family's image processor returns (`pixel_values`, and NaFlex's `pixel_attention_mask`, `spatial_shapes`)."""
    image = model.get_image_features(**image_inputs).pooler_output
    text = model.get_text_features(input_ids=input_ids, attention_mask=attention_mask).pooler_output
    return F.normalize(image, dim=-1), F.normalize(text, dim=-1)


LOGIT_PARAMETERS = ("logit_scale", "logit_bias")  # trained even under LoRA (the bias: sigmoid families only)


def _add_lora(model, lora_config: dict):
    """Wrap the student with LoRA adapters (peft); the logit scale (and bias) keep training.

    The `out_proj` of an `nn.MultiheadAttention` (SigLIP's attention-pooling head) gets no adapter: that module's
    forward reads `out_proj.weight` directly, so an adapter would not act in training yet be merged into the export.
    """
    from peft import LoraConfig, get_peft_model

    inside_attention = [f"{name}.out_proj" for name, module in model.named_modules()
                        if isinstance(module, torch.nn.MultiheadAttention)]
    if inside_attention:
        lora_config = {**lora_config, "exclude_modules": [*(lora_config.get("exclude_modules") or []),
                                                           *inside_attention]}
    model = get_peft_model(model, LoraConfig(**lora_config))
    for name in LOGIT_PARAMETERS:
        parameter = getattr(model.base_model.model, name, None)
        if parameter is not None:
            parameter.requires_grad_(True)
    return model


def _model_of(student):
    """The dual encoder (`CLIPModel`, `SiglipModel`, ...) inside a student that may be wrapped by peft."""
    return student.base_model.model if hasattr(student, "merge_and_unload") else student


class DeGLAPreTrainedModel(PreTrainedModel):
    config_class = DeGLAConfig
    base_model_prefix = "degla"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["CLIPEncoderLayer", "SiglipEncoderLayer", "Siglip2EncoderLayer"]
    # Attention backends are those of the wrapped model; declaring them keeps the wrapper from forcing
    # "eager" onto the student's sub-configs.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    def _init_weights(self, module):
        # Weights come from the student (pretrained or its family's own initialisation) and its copy.
        pass


class DeGLAForContrastive(DeGLAPreTrainedModel):
    """A trainable dual-encoder `student` (CLIP, SigLIP or SigLIP 2) with a frozen EMA `teacher` and the DeGLA
    objective; the student's family (`config.family`) picks the base term and the logit-scale clamp.

    Build it from a checkpoint with [`DeGLAForContrastive.from_student`] (`from_clip` is the same); resume a run with
    `from_pretrained` (student and teacher both restored); ship the student with [`export_student`] (`export_clip`).
    """

    def __init__(self, config: DeGLAConfig, student: PreTrainedModel | None = None):
        super().__init__(config)
        self.objective = DeGLAObjective(config)
        student = student if student is not None else AutoModel.from_config(config.student_config)
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
    def from_student(cls, student: PreTrainedModel | str | os.PathLike, **config_overrides) -> "DeGLAForContrastive":
        """Wrap a dual encoder of a family DeGLA trains (`CLIPModel`, `SiglipModel`, `Siglip2Model`), or the hub id /
        local folder `AutoModel.from_pretrained` loads it from; teacher = exact copy."""
        if not isinstance(student, PreTrainedModel):
            student = AutoModel.from_pretrained(student)
        config = DeGLAConfig(student_config=copy.deepcopy(student.config), **config_overrides)
        return cls(config, student=student)

    from_clip = from_student  # the name from when only CLIP was wrapped

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
    def student_model(self) -> PreTrainedModel:
        """The student's dual encoder (`CLIPModel`, `SiglipModel`, ...), inside its peft wrapper under LoRA."""
        return _model_of(self.student)

    @property
    def logit_scale(self) -> torch.nn.Parameter:
        """The student's learnable log temperature (s = exp(logit_scale))."""
        return self.student_model.logit_scale

    @property
    def logit_bias(self) -> torch.nn.Parameter | None:
        """The student's learnable logit bias b (SigLIP, SigLIP 2; None for CLIP)."""
        return getattr(self.student_model, "logit_bias", None)

    @torch.no_grad()
    def clamp_logit_scale(self, max_value: float | None = None) -> None:
        """Clamp the learnable log temperature to [0, max_value] after every optimizer step, where the family's code
        clamps: CLIP to ln 100 (OpenAI's CLIP, open_clip); SigLIP and SigLIP 2 not at all (big_vision)."""
        max_value = self.config.family.logit_scale_max if max_value is None else max_value
        if max_value is not None:
            self.logit_scale.clamp_(0, max_value)

    # -- forward --------------------------------------------------------------------------------------------
    def forward(self, input_ids: torch.LongTensor, pixel_values: torch.FloatTensor,
                attention_mask: torch.LongTensor | None = None, negative_input_ids: torch.LongTensor | None = None,
                negative_attention_mask: torch.LongTensor | None = None, return_loss: bool | None = None,
                gather_distributed: bool = False, accumulation_steps: int = 1,
                pixel_attention_mask: torch.Tensor | None = None, spatial_shapes: torch.LongTensor | None = None,
                **kwargs) -> DeGLAOutput:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(b, L)`): positive captions.
            pixel_values (`torch.FloatTensor` of shape `(b, 3, H, W)`, or NaFlex's `(b, patches, C·p·p)`): images.
            attention_mask (`torch.LongTensor` of shape `(b, L)`, *optional*): for CLIP, all ones when omitted; the
                SigLIP families are run without one (as big_vision), so their collator leaves it out.
            negative_input_ids (`torch.LongTensor` of shape `(b, K, L')`, *optional*): hard negatives per caption.
            negative_attention_mask (`torch.LongTensor` of shape `(b, K, L')`, *optional*).
            return_loss (`bool`, *optional*): compute the objective (default: when the model is training).
            gather_distributed (`bool`, defaults to `False`): gather embeddings across processes with gradients
                so the base loss contrasts against the global batch (the trainer sets this).
            accumulation_steps (`int`, defaults to 1): micro-batches accumulated into one optimizer step. The
                trainer divides each micro-batch loss by it; the summed distillation is scaled back up so the step
                sees the sum over every accumulated sample, as with one big batch. (Contrastive negatives stay
                those of the micro-batch.)
            pixel_attention_mask, spatial_shapes (*optional*): SigLIP 2 NaFlex's image inputs, from its processor.
        """
        if return_loss is None:
            return_loss = self.training
        if attention_mask is None and (self.config.family.text.attention_mask or negative_attention_mask is not None):
            attention_mask = torch.ones_like(input_ids)
        image_inputs = {"pixel_values": pixel_values}
        image_inputs.update({name: value for name, value in (("pixel_attention_mask", pixel_attention_mask),
                                                             ("spatial_shapes", spatial_shapes)) if value is not None})
        b = input_ids.shape[0]
        k = 0
        texts, masks = input_ids, attention_mask
        if negative_input_ids is not None:
            if negative_input_ids.dim() != 3 or negative_input_ids.shape[0] != b:
                raise ValueError(f"negative_input_ids must have shape (batch={b}, K, L), "
                                 f"got {tuple(negative_input_ids.shape)}")
            k = negative_input_ids.shape[1]
            if negative_attention_mask is None and masks is not None:
                negative_attention_mask = torch.ones_like(negative_input_ids)
            neg_ids = negative_input_ids.flatten(0, 1)
            neg_mask = None if masks is None else negative_attention_mask.flatten(0, 1)
            length = max(texts.shape[-1], neg_ids.shape[-1])
            pad = self.config.student_config.text_config.pad_token_id or 0
            texts, masks = _pad_to(texts, masks, length, pad)
            neg_ids, neg_mask = _pad_to(neg_ids, neg_mask, length, pad)
            texts = torch.cat([texts, neg_ids])
            masks = None if masks is None else torch.cat([masks, neg_mask])

        image_embeds, all_text = _encode(self.student, image_inputs, texts, masks)
        text_embeds, negative_text_embeds = all_text[:b], (all_text[b:].view(b, k, -1) if k else None)

        embeds = dict(image_embeds=image_embeds, text_embeds=text_embeds, negative_text_embeds=negative_text_embeds)
        logits = dict(logit_scale=self.logit_scale.exp(), logit_bias=self.logit_bias)
        if not return_loss:  # the base loss's logits over this process's batch (no gathering)
            logits_per_image, logits_per_text = contrastive_logits(ObjectiveInputs(
                gathered=gather_features(**embeds, enabled=False), **logits, **embeds))
            return DeGLAOutput(logits_per_image=logits_per_image, logits_per_text=logits_per_text, **embeds)

        teacher = dict(teacher_image_embeds=None, teacher_text_embeds=None, teacher_negative_text_embeds=None)
        if self.objective.needs_teacher(has_negatives=k > 0):
            with torch.no_grad():
                t_image, t_text = _encode(self.teacher, image_inputs, texts, masks)
            teacher = dict(teacher_image_embeds=t_image, teacher_text_embeds=t_text[:b],
                           teacher_negative_text_embeds=t_text[b:].view(b, k, -1) if k else None)
        gathered = gather_features(image_embeds, text_embeds, negative_text_embeds, enabled=gather_distributed)
        result = self.objective(ObjectiveInputs(gathered=gathered, **logits,
                                                num_shards=gathered.world_size * accumulation_steps,
                                                **embeds, **teacher))
        return DeGLAOutput(loss=result.loss, loss_terms=result.terms, logits_per_image=result.logits_per_image,
                           logits_per_text=result.logits_per_text, **embeds, **teacher)

    # -- export ---------------------------------------------------------------------------------------------
    def export_student(self, save_directory: str | os.PathLike, processor=None,
                       extra_files: dict[str, str] | None = None) -> PreTrainedModel:
        """Write the student as a plain checkpoint of its own class (safetensors): `CLIPModel.from_pretrained`,
        `SiglipModel.from_pretrained`, ... (and `AutoModel`) load it.

        LoRA adapters (peft) are merged into a copy first, so the export needs nothing but transformers.
        `processor` (the checkpoint's processor) is saved beside it, and `extra_files` ({name: text}, e.g. the model
        card). The folder is built under a temporary name and swapped in whole: a killed export leaves no folder that
        looks finished. Returns the exported model.
        """
        student = self.student
        if hasattr(student, "merge_and_unload"):  # a peft model
            student = copy.deepcopy(student).merge_and_unload()
        with atomic_directory(save_directory) as tmp:
            student.save_pretrained(tmp, safe_serialization=True)
            if processor is not None:
                processor.save_pretrained(tmp)
            for name, text in (extra_files or {}).items():
                with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                    f.write(text)
        return student

    export_clip = export_student  # the name from when only CLIP was wrapped


AutoConfig.register("degla", DeGLAConfig)
AutoModel.register(DeGLAConfig, DeGLAForContrastive)

__all__ = ["DeGLAOutput", "DeGLAPreTrainedModel", "DeGLAForContrastive", "LOGIT_SCALE_MAX"]
