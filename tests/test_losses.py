"""Each DeGLA loss term against a hand computation on small tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from degla.losses import base_loss, distill_loss, gather_features, igc_loss, tgc_loss


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def _ce(logits_row, target):
    return -logits_row[target] + torch.logsumexp(logits_row, dim=0)


B, K, D = 3, 2, 5


@pytest.fixture
def embeds():
    return _unit(B, D, seed=1), _unit(B, D, seed=2), _unit(B, K, D, seed=3), _unit(B, D, seed=4)


def test_base_loss_puts_every_negative_of_the_batch_in_every_image_denominator(embeds):
    v, t, tn, _ = embeds
    s = torch.tensor(7.0)
    out = base_loss(v, t, s, gather_features(v, t, tn))
    i2t, t2i = 0.0, 0.0
    for i in range(B):
        candidates = [s * v[i] @ t[j] for j in range(B)] + [s * v[i] @ tn[j, k] for j in range(B) for k in range(K)]
        i2t += _ce(torch.stack(candidates), i)
        t2i += _ce(torch.stack([s * t[i] @ v[j] for j in range(B)]), i)
    expected = (i2t / B + t2i / B) / 2
    assert out["logits_per_image"].shape == (B, B + B * K)
    assert out["logits_per_text"].shape == (B, B)
    torch.testing.assert_close(out["loss_base"], expected)


def test_igc_uses_each_images_own_negatives_and_the_logit_scale(embeds):
    v, t, tn, _ = embeds
    s = torch.tensor(3.0)
    expected = sum(_ce(torch.stack([s * v[i] @ t[i]] + [s * v[i] @ tn[i, k] for k in range(K)]), 0) for i in range(B)) / B
    torch.testing.assert_close(igc_loss(v, t, tn, s)["loss_igc"], expected)


def test_tgc_contrasts_teacher_caption_against_own_negatives_not_other_captions(embeds):
    v, t, tn, t_teacher = embeds
    tau = 0.1
    expected = sum(_ce(torch.stack([t[i] @ t_teacher[i]] + [t[i] @ tn[i, k] for k in range(K)]) / tau, 0)
                   for i in range(B)) / B
    torch.testing.assert_close(tgc_loss(t, t_teacher, tn, tau)["loss_tgc"], expected)
    # The authors' mask bug picks other captions' negatives: moving another caption's negatives must not matter.
    moved = tn.clone()
    moved[1:] = _unit(B - 1, K, D, seed=9)
    row0 = _ce(torch.stack([t[0] @ t_teacher[0]] + [t[0] @ moved[0, k] for k in range(K)]) / tau, 0)
    per_row_changed = tgc_loss(t[:1], t_teacher[:1], moved[:1], tau)["loss_tgc"]
    torch.testing.assert_close(per_row_changed, row0)


def test_tgc_gradient_does_not_reach_the_teacher(embeds):
    _, t, tn, t_teacher = embeds
    t_teacher = t_teacher.clone().requires_grad_(True)
    tgc_loss(t.clone().requires_grad_(True), t_teacher, tn, 0.1)["loss_tgc"].backward()
    assert t_teacher.grad is None


def test_distill_sum_and_mean(embeds):
    v, t, tn, _ = embeds
    vs, ts, tns = _unit(B, D, seed=5), _unit(B, D, seed=6), _unit(B, K, D, seed=7)
    expected = sum(((v[i] - vs[i]) ** 2).sum() + ((t[i] - ts[i]) ** 2).sum()
                   + sum(((tn[i, k] - tns[i, k]) ** 2).sum() for k in range(K)) for i in range(B))
    total = distill_loss((v, t, tn), (vs, ts, tns), "sum")["loss_distill"]
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(distill_loss((v, t, tn), (vs, ts, tns), "mean")["loss_distill"], expected / B)
    # Under DDP averaging over W processes, the local sum is scaled by W to give the global-sum gradient.
    torch.testing.assert_close(distill_loss((v, t, tn), (vs, ts, tns), "sum", num_shards=4)["loss_distill"], 4 * expected)
    with pytest.raises(ValueError, match="reduction"):
        distill_loss((v,), (vs,), "max")


def test_base_loss_without_negatives_is_the_clip_loss(embeds):
    v, t, _, _ = embeds
    s = torch.tensor(math.e)
    logits = s * t @ v.t()
    clip = (F.cross_entropy(logits, torch.arange(B)) + F.cross_entropy(logits.t(), torch.arange(B))) / 2
    torch.testing.assert_close(base_loss(v, t, s, gather_features(v, t))["loss_base"], clip)
