"""Each DeGLA loss term, and the objective that weighs them, against a hand computation on small tensors."""

import math

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassFieldValidationError

from degla import DeGLAConfig
from degla.losses import (DeGLAObjective, ObjectiveInputs, base_loss, contrastive_logits, distill_loss, gather_features,
                          igc_loss, tgc_loss)


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def _ce(logits_row, target):
    return -logits_row[target] + torch.logsumexp(logits_row, dim=0)


B, K, D = 3, 2, 5


@pytest.fixture
def embeds():
    return _unit(B, D, seed=1), _unit(B, D, seed=2), _unit(B, K, D, seed=3), _unit(B, D, seed=4)


def inputs(v, t, tn=None, s=1.0, num_shards=1, teacher=(None, None, None)):
    return ObjectiveInputs(v, t, tn, torch.tensor(s), gather_features(v, t, tn), num_shards, *teacher)


CONFIG = DeGLAConfig()


def test_base_loss_puts_every_negative_of_the_batch_in_every_image_denominator(embeds):
    v, t, tn, _ = embeds
    s = torch.tensor(7.0)
    logits_per_image, logits_per_text = contrastive_logits(inputs(v, t, tn, 7.0))
    i2t, t2i = 0.0, 0.0
    for i in range(B):
        candidates = [s * v[i] @ t[j] for j in range(B)] + [s * v[i] @ tn[j, k] for j in range(B) for k in range(K)]
        i2t += _ce(torch.stack(candidates), i)
        t2i += _ce(torch.stack([s * t[i] @ v[j] for j in range(B)]), i)
    expected = (i2t / B + t2i / B) / 2
    assert logits_per_image.shape == (B, B + B * K)
    assert logits_per_text.shape == (B, B)
    torch.testing.assert_close(base_loss(logits_per_image, logits_per_text), expected)


def test_igc_uses_each_images_own_negatives_and_the_logit_scale(embeds):
    v, t, tn, _ = embeds
    s = torch.tensor(3.0)
    expected = sum(_ce(torch.stack([s * v[i] @ t[i]] + [s * v[i] @ tn[i, k] for k in range(K)]), 0)
                   for i in range(B)) / B
    torch.testing.assert_close(igc_loss(inputs(v, t, tn, 3.0), CONFIG), expected)


def test_tgc_contrasts_teacher_caption_against_own_negatives_not_other_captions(embeds):
    v, t, tn, t_teacher = embeds
    tau = 0.1
    expected = sum(_ce(torch.stack([t[i] @ t_teacher[i]] + [t[i] @ tn[i, k] for k in range(K)]) / tau, 0)
                   for i in range(B)) / B
    config = DeGLAConfig(tgc_temperature=tau)
    torch.testing.assert_close(tgc_loss(inputs(v, t, tn, teacher=(None, t_teacher, None)), config), expected)
    # The authors' mask bug picks other captions' negatives: moving another caption's negatives must not matter.
    moved = tn.clone()
    moved[1:] = _unit(B - 1, K, D, seed=9)
    row0 = _ce(torch.stack([t[0] @ t_teacher[0]] + [t[0] @ moved[0, k] for k in range(K)]) / tau, 0)
    per_row_changed = tgc_loss(inputs(v[:1], t[:1], moved[:1], teacher=(None, t_teacher[:1], None)), config)
    torch.testing.assert_close(per_row_changed, row0)


def test_tgc_gradient_does_not_reach_the_teacher(embeds):
    _, t, tn, t_teacher = embeds
    t_teacher = t_teacher.clone().requires_grad_(True)
    tgc_loss(inputs(t, t.clone().requires_grad_(True), tn, teacher=(None, t_teacher, None)), CONFIG).backward()
    assert t_teacher.grad is None


def test_distill_sum_and_mean(embeds):
    v, t, tn, _ = embeds
    vs, ts, tns = _unit(B, D, seed=5), _unit(B, D, seed=6), _unit(B, K, D, seed=7)
    expected = sum(((v[i] - vs[i]) ** 2).sum() + ((t[i] - ts[i]) ** 2).sum()
                   + sum(((tn[i, k] - tns[i, k]) ** 2).sum() for k in range(K)) for i in range(B))
    teacher = (vs, ts, tns)
    torch.testing.assert_close(distill_loss(inputs(v, t, tn, teacher=teacher), CONFIG), expected)
    mean = DeGLAConfig(distill_reduction="mean")
    torch.testing.assert_close(distill_loss(inputs(v, t, tn, teacher=teacher), mean), expected / B)
    # Under DDP averaging over W processes, the local sum is scaled by W to give the global-sum gradient.
    torch.testing.assert_close(distill_loss(inputs(v, t, tn, num_shards=4, teacher=teacher), CONFIG), 4 * expected)
    with pytest.raises(StrictDataclassFieldValidationError, match="distill_reduction"):
        DeGLAConfig(distill_reduction="max")


def test_base_loss_without_negatives_is_the_clip_loss(embeds):
    v, t, _, _ = embeds
    s = torch.tensor(math.e)
    logits = s * t @ v.t()
    clip = (F.cross_entropy(logits, torch.arange(B)) + F.cross_entropy(logits.t(), torch.arange(B))) / 2
    torch.testing.assert_close(base_loss(*contrastive_logits(inputs(v, t, s=math.e))), clip)


def test_objective_weighs_the_computed_terms_and_skips_switched_off_ones(embeds):
    v, t, tn, t_teacher = embeds
    teacher = (_unit(B, D, seed=5), t_teacher, _unit(B, K, D, seed=7))
    config = DeGLAConfig(lambda_igc=0.3, lambda_tgc=0.2, lambda_distill=0.01)
    x = inputs(v, t, tn, 2.0, teacher=teacher)
    result = DeGLAObjective(config)(x)
    expected = (base_loss(*contrastive_logits(x)) + 0.3 * igc_loss(x, config) + 0.2 * tgc_loss(x, config)
                + 0.01 * distill_loss(x, config))
    torch.testing.assert_close(result.loss, expected)
    assert set(result.terms) == {"loss_base", "loss_igc", "loss_tgc", "loss_distill"}
    # λ = 0 terms are not computed; without negatives IGC and TGC cannot be, and the teacher is then only
    # needed for distillation.
    off = DeGLAObjective(DeGLAConfig(lambda_igc=0.0, lambda_tgc=0.2, lambda_distill=0.0))
    assert set(off(x).terms) == {"loss_base", "loss_tgc"}
    assert set(off(inputs(v, t, s=2.0)).terms) == {"loss_base"}
    assert off.needs_teacher(has_negatives=True) and not off.needs_teacher(has_negatives=False)
