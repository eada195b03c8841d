"""The four DeGLA loss terms as small pure functions of L2-normalised embeddings.

Conventions (see `docs/method.md` of the project): `b` local samples, `K` negatives per caption, `d` the
projection size. Every function works on one process; distributed training passes the *gathered* (global,
with gradients) tensors through `gather_features` and the `offset` of the local slice, as open_clip's
`ClipLoss(local_loss=True, gather_with_grad=True)` does. Each anchor then lives on exactly one process and
DDP's gradient averaging over W processes yields the gradient of the global-batch mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

DISTILL_REDUCTIONS = ("sum", "mean")


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
    Every process must hold the same number of samples (accelerate's `even_batches=True`, the default).
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


def base_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
              gathered: GatheredFeatures) -> dict[str, torch.Tensor]:
    """Hard-negative-aware CLIP loss (eq. 4-5): L_base = ½(L_i2t + L_t2i), means over the local anchors.

    Image→text candidates are all N positive captions followed by all N·K negatives of the global batch;
    text→image anchors are positive captions only. `logit_scale` is `s = exp(logit_scale_param)`.
    Returns `loss_base`, `logits_per_image` (b, N + N·K) and `logits_per_text` (b, N).
    """
    candidates = gathered.text_embeds
    if gathered.negative_text_embeds is not None:
        candidates = torch.cat([candidates, gathered.negative_text_embeds.flatten(0, 1)], dim=0)
    logits_per_image = logit_scale * image_embeds @ candidates.t()
    logits_per_text = logit_scale * text_embeds @ gathered.image_embeds.t()
    labels = torch.arange(image_embeds.shape[0], device=image_embeds.device) + gathered.offset
    loss = (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
    return {"loss_base": loss, "logits_per_image": logits_per_image, "logits_per_text": logits_per_text}


def _own_negative_logits(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """(b, 1+K) similarities: column 0 is anchor·positive, columns 1..K anchor·(its own) negatives."""
    return torch.cat([(anchor * positive).sum(-1, keepdim=True), torch.einsum("bd,bkd->bk", anchor, negatives)], dim=1)


def _first_column_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def igc_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, negative_text_embeds: torch.Tensor,
             logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """Image-grounded contrast (eq. 8): per image, CE over s·[v·t, v·t̄_1..K] (its own negatives), target 0."""
    logits = logit_scale * _own_negative_logits(image_embeds, text_embeds, negative_text_embeds)
    return {"loss_igc": _first_column_cross_entropy(logits)}


def tgc_loss(text_embeds: torch.Tensor, teacher_text_embeds: torch.Tensor, negative_text_embeds: torch.Tensor,
             temperature: float) -> dict[str, torch.Tensor]:
    """Text-grounded contrast (eq. 9): per caption, CE over [t·t*, t·t̄_1..K]/τ with target 0.

    The student caption is pulled to the teacher's embedding of the same caption and pushed from the student
    embeddings of *its own* K negatives (the authors' released mask picks other captions' negatives; we follow
    the equation).
    """
    logits = _own_negative_logits(text_embeds, teacher_text_embeds.detach(), negative_text_embeds) / temperature
    return {"loss_tgc": _first_column_cross_entropy(logits)}


def distill_loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...], reduction: str = "sum",
                 num_shards: int = 1) -> dict[str, torch.Tensor]:
    """Self-distillation (eq. 7): Σ_i ‖v_i−v_i*‖² + ‖t_i−t_i*‖² + Σ_k ‖t̄_ik−t̄_ik*‖².

    `student`/`teacher` are matching tuples of (b, ..., d) embeddings whose first dim indexes samples.
    `reduction="sum"` sums over the samples of the *global* batch, as the paper. The global batch is split into
    `num_shards` equal local batches (processes × accumulated micro-batches) whose losses get averaged (DDP's
    gradient averaging, the trainer's division by the accumulation steps), so the local sum is multiplied by
    `num_shards` to give the gradient of the global sum. `"mean"` divides by the number of samples (the
    per-sample sum of the three distances, averaged), which needs no such factor.
    """
    if reduction not in DISTILL_REDUCTIONS:
        raise ValueError(f"distill reduction must be one of {DISTILL_REDUCTIONS}, got {reduction!r}")
    total = sum(((s - t.detach()) ** 2).sum() for s, t in zip(student, teacher, strict=True))
    num_samples = student[0].shape[0]
    loss = total * num_shards if reduction == "sum" else total / num_samples
    return {"loss_distill": loss}
