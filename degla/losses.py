"""The DeGLA objective: four named loss terms of L2-normalised embeddings, and the object that weighs them.

The base term depends on the student's family (`degla.families`): CLIP's softmax contrast (eq. 4-5, `base_loss`) or
SigLIP's pairwise sigmoid loss (`sigmoid_base_loss`, SigLIP and SigLIP 2). IGC, TGC and the distillation are the
same for every family.

Conventions (docs/method.md): `b` local samples, `N = W·b` global samples, `K` negatives per caption, `d` the
projection size. Every term reads one [`ObjectiveInputs`] (the student's and teacher's embeddings, the logit
scale, the gathered global batch) and the model's [`DeGLAConfig`], and returns a scalar. Distributed training
passes the *gathered* (global, with gradients) tensors through `gather_features` with the offset of the local
slice, as open_clip's `ClipLoss(local_loss=True, gather_with_grad=True)` does: each anchor lives on exactly one
process, and DDP's gradient averaging over W processes yields the gradient of the global-batch mean.

Adding a term is one function here, one `objective_field` in `configuration_degla.py` for its weight, and one
line in `WEIGHTED_TERMS`; the model returns it as `loss_<name>` and the trainer logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .families import SIGMOID, SOFTMAX


@dataclass
class GatheredFeatures:
    """Embeddings of the global batch (every process's slice, with gradients) and where the local slice starts."""

    image_embeds: torch.Tensor  # (N, d), N = W·b
    text_embeds: torch.Tensor  # (N, d)
    negative_text_embeds: torch.Tensor | None  # (N, K, d)
    offset: int  # index of this process's first sample in the global batch
    world_size: int


def _all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate `tensor` from every process along dim 0; gradients flow back to each owner's slice."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def gather_features(image_embeds: torch.Tensor, text_embeds: torch.Tensor,
                    negative_text_embeds: torch.Tensor | None = None, enabled: bool = True) -> GatheredFeatures:
    """Gather embeddings across processes *with gradients* (accelerate's `gather` carries none).

    With `enabled=False`, outside an initialised process group, or with one process, the local tensors are
    returned unchanged (a rank-local contrast).
    Every process must hold the same number of samples (the training loader drops the last partial batch).
    """
    if not enabled or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return GatheredFeatures(image_embeds, text_embeds, negative_text_embeds, offset=0, world_size=1)
    world_size, rank = dist.get_world_size(), dist.get_rank()
    gathered_negatives = None if negative_text_embeds is None else _all_gather_with_grad(negative_text_embeds)
    return GatheredFeatures(
        image_embeds=_all_gather_with_grad(image_embeds),
        text_embeds=_all_gather_with_grad(text_embeds),
        negative_text_embeds=gathered_negatives,
        offset=rank * image_embeds.shape[0],
        world_size=world_size,
    )


@dataclass
class ObjectiveInputs:
    """What the loss terms read. Student embeddings carry gradients; teacher embeddings (None when no active term
    needs the teacher) do not.

    Args:
        image_embeds (`(b, d)`), text_embeds (`(b, d)`), negative_text_embeds (`(b, K, d)` or None): student.
        teacher_image_embeds, teacher_text_embeds, teacher_negative_text_embeds: the same from the EMA teacher.
        logit_scale (`()`): s = exp(logit_scale parameter), the learnable inverse temperature.
        logit_bias (`()` or None): b, the learnable bias of the sigmoid families' logits s·cos + b (None for CLIP).
        gathered: the global batch (`gather_features`), equal to the local one on one process.
        num_shards: how many equal local losses are averaged into one optimizer step (processes × accumulated
            micro-batches); a loss summed over the global batch multiplies its local sum by it.
    """

    image_embeds: torch.Tensor
    text_embeds: torch.Tensor
    negative_text_embeds: torch.Tensor | None
    logit_scale: torch.Tensor
    gathered: GatheredFeatures
    num_shards: int = 1
    teacher_image_embeds: torch.Tensor | None = None
    teacher_text_embeds: torch.Tensor | None = None
    teacher_negative_text_embeds: torch.Tensor | None = None
    logit_bias: torch.Tensor | None = None


def contrastive_logits(inputs: ObjectiveInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the base loss, s·cos (+ b for the sigmoid families): image→[all N captions; all N·K negatives]
    `(b, N + N·K)` and caption→[all N images] `(b, N)`."""
    gathered = inputs.gathered
    candidates = gathered.text_embeds
    if gathered.negative_text_embeds is not None:
        candidates = torch.cat([candidates, gathered.negative_text_embeds.flatten(0, 1)], dim=0)
    logits_per_image = inputs.logit_scale * inputs.image_embeds @ candidates.t()
    logits_per_text = inputs.logit_scale * inputs.text_embeds @ gathered.image_embeds.t()
    if inputs.logit_bias is not None:
        logits_per_image, logits_per_text = logits_per_image + inputs.logit_bias, logits_per_text + inputs.logit_bias
    return logits_per_image, logits_per_text


def base_loss(logits_per_image: torch.Tensor, logits_per_text: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Hard-negative-aware CLIP loss (eq. 4-5): L_base = ½(L_i2t + L_t2i), means over the local anchors.

    `logits_per_image` (b, N + N·K): image→[all N captions; all N·K negatives of the global batch] (as NegCLIP and
    the authors' code); `logits_per_text` (b, N): caption→images (negative captions are never anchors).
    `offset` is the index of the first local sample in the global batch.
    """
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device) + offset
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def sigmoid_base_loss(logits_per_image: torch.Tensor, logits_per_text: torch.Tensor | None = None,
                      offset: int = 0) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss with hard negatives (SigLIP, SigLIP 2): over the image × [all N captions; all
    N·K negatives] logits s·cos + b, label +1 on each image's own caption and −1 everywhere else (every negative
    caption of the batch is a −1 column for every image), −Σ log σ(label·logit) summed over the columns and averaged
    over the local images.

    Without negatives this is transformers' `SiglipModel` loss (big_vision's `trainers/proj/image_text/siglip.py`:
    the sum over the N×N matrix divided by N). Across W processes each holds b of the N rows, and DDP's averaging of
    the W local means gives the global mean, as for CLIP. `logits_per_text` is not read (the caption→image view is
    the same matrix); it is accepted so both base terms share one signature.
    """
    labels = -torch.ones_like(logits_per_image)
    rows = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    labels[rows, rows + offset] = 1.0
    return -F.logsigmoid(labels * logits_per_image).sum(dim=1).mean()


BASE_TERMS = {SOFTMAX: base_loss, SIGMOID: sigmoid_base_loss}
"""The base term of each family's `base_loss` (`degla.families`)."""


def _own_negative_logits(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(b, 1+K) similarities: column 0 is anchor·positive, columns 1..K anchor·(its own) negatives."""
    return torch.cat([(anchor * positive).sum(-1, keepdim=True), torch.einsum("bd,bkd->bk", anchor, negatives)], dim=1)


def _first_column_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def igc_loss(inputs: ObjectiveInputs, config) -> torch.Tensor:
    """Image-grounded contrast (eq. 8): per image, CE over s·[v·t, v·t̄_1..K] (its own negatives), target 0.

    The sigmoid families' bias b would add the same constant to every logit of a row, which a softmax cancels: it
    is left out."""
    logits = inputs.logit_scale * _own_negative_logits(inputs.image_embeds, inputs.text_embeds,
                                                       inputs.negative_text_embeds)
    return _first_column_cross_entropy(logits)


def tgc_loss(inputs: ObjectiveInputs, config) -> torch.Tensor:
    """Text-grounded contrast (eq. 9): per caption, CE over [t·t*, t·t̄_1..K]/τ with target 0.

    The student caption is pulled to the teacher's embedding of the same caption and pushed from the student
    embeddings of *its own* K negatives (the authors' released mask picks other captions' negatives; we follow
    the equation).
    """
    logits = _own_negative_logits(inputs.text_embeds, inputs.teacher_text_embeds.detach(),
                                  inputs.negative_text_embeds) / config.tgc_temperature
    return _first_column_cross_entropy(logits)


def distill_loss(inputs: ObjectiveInputs, config) -> torch.Tensor:
    """Self-distillation (eq. 7): Σ_i ‖v_i−v_i*‖² + ‖t_i−t_i*‖² + Σ_k ‖t̄_ik−t̄_ik*‖².

    `distill_reduction="sum"` sums over the samples of the *global* batch, as the paper and the authors' code
    (`mse_loss(reduction="sum")`). The global batch is split into `num_shards` equal local batches whose losses
    get averaged (DDP's gradient averaging, the trainer's division by the accumulation steps), so the local sum
    is multiplied by `num_shards` to give the gradient of the global sum. `"mean"` divides by the number of
    samples (the per-sample sum of the distances, averaged), which needs no such factor.
    """
    pairs = [(inputs.image_embeds, inputs.teacher_image_embeds), (inputs.text_embeds, inputs.teacher_text_embeds)]
    if inputs.negative_text_embeds is not None:
        pairs.append((inputs.negative_text_embeds, inputs.teacher_negative_text_embeds))
    total = sum(((student - teacher.detach()) ** 2).sum() for student, teacher in pairs)
    if config.distill_reduction == "sum":
        return total * inputs.num_shards
    return total / inputs.image_embeds.shape[0]


@dataclass(frozen=True)
class WeightedTerm:
    """A term λ·L of the objective: logged as `loss_<name>`, weighted by the config field `weight`."""

    name: str
    loss: Callable[[ObjectiveInputs, object], torch.Tensor]
    weight: str
    needs_negatives: bool
    needs_teacher: bool


WEIGHTED_TERMS = (
    WeightedTerm("igc", igc_loss, weight="lambda_igc", needs_negatives=True, needs_teacher=False),
    WeightedTerm("tgc", tgc_loss, weight="lambda_tgc", needs_negatives=True, needs_teacher=True),
    WeightedTerm("distill", distill_loss, weight="lambda_distill", needs_negatives=False, needs_teacher=True),
)
"""L_all = L_base + Σ λ·L over these terms (eq. 10). A term runs only when its λ > 0 (and its inputs exist)."""


@dataclass
class ObjectiveResult:
    """The objective's value, its named terms and the base loss's logits (`contrastive_logits`)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    logits_per_image: torch.Tensor
    logits_per_text: torch.Tensor


class DeGLAObjective:
    """L_all = L_base + λ1·L_IGC + λ2·L_TGC + λ3·L_Distill, read from a live [`DeGLAConfig`]; L_base is the base
    term of the student's family (`BASE_TERMS[config.family.base_loss]`).

    Returns the total and every computed term by name (`loss_base`, `loss_igc`, ...); a term whose λ is 0, or
    that needs negatives when there are none, is not computed and not returned.
    """

    def __init__(self, config):
        self.config = config

    def active_terms(self, has_negatives: bool = True) -> list[WeightedTerm]:
        return [term for term in WEIGHTED_TERMS if getattr(self.config, term.weight) > 0
                and (has_negatives or not term.needs_negatives)]

    def needs_teacher(self, has_negatives: bool = True) -> bool:
        """Whether the teacher's forward is needed at all (only TGC and distillation read it)."""
        return any(term.needs_teacher for term in self.active_terms(has_negatives))

    def __call__(self, inputs: ObjectiveInputs) -> ObjectiveResult:
        logits_per_image, logits_per_text = contrastive_logits(inputs)
        base = BASE_TERMS[self.config.family.base_loss]
        terms = {"loss_base": base(logits_per_image, logits_per_text, inputs.gathered.offset)}
        total = terms["loss_base"]
        for term in self.active_terms(inputs.negative_text_embeds is not None):
            value = term.loss(inputs, self.config)
            terms[f"loss_{term.name}"] = value
            total = total + getattr(self.config, term.weight) * value
        return ObjectiveResult(total, terms, logits_per_image, logits_per_text)
