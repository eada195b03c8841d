"""DeGLAForContrastive around SigLIP and SigLIP 2 students (tiny random models built here): the sigmoid base term
against transformers' `SiglipModel` loss and against a hand computation with negatives, the family's logits, clamp,
EMA, LoRA and the drop-in export."""

import math

import pytest
import torch
from transformers import AutoModel, Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

from degla import DeGLAConfig, DeGLAForContrastive

B, K, L, V = 3, 2, 8, 50
TINY = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4)


def tiny_siglip(seed=0):
    torch.manual_seed(seed)
    model = SiglipModel(SiglipConfig(
        text_config=dict(vocab_size=V, max_position_embeddings=L, pad_token_id=1, eos_token_id=1, **TINY),
        vision_config=dict(image_size=20, patch_size=5, **TINY)))
    with torch.no_grad():  # away from the zero init, so that a missing scale or bias would show
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-2.5)
    return model


def tiny_siglip2(seed=0):
    torch.manual_seed(seed)
    model = Siglip2Model(Siglip2Config(
        text_config=dict(vocab_size=V, max_position_embeddings=L, pad_token_id=0, eos_token_id=1, **TINY),
        vision_config=dict(num_patches=16, patch_size=4, **TINY)))
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-2.5)
    return model


def make_inputs(family, seed=0, b=B, k=K):
    """SigLIP's inputs as its collator builds them: texts padded to the tower's length, no attention mask."""
    g = torch.Generator().manual_seed(seed)
    inputs = dict(input_ids=torch.randint(2, V, (b, L), generator=g),
                  negative_input_ids=torch.randint(2, V, (b, k, L), generator=g))
    if family == "siglip":
        inputs["pixel_values"] = torch.randn(b, 3, 20, 20, generator=g)
    else:  # NaFlex: 16 patches of 4×4×3 values, the last 4 of the second image padding
        inputs["pixel_values"] = torch.randn(b, 16, 48, generator=g)
        mask = torch.ones(b, 16, dtype=torch.long)
        mask[1, 12:] = 0
        inputs["pixel_attention_mask"] = mask
        inputs["spatial_shapes"] = torch.tensor([[4, 4], [3, 4], [4, 4]])[:b]
    return inputs


def image_kwargs(inputs):
    return {k: inputs[k] for k in ("pixel_values", "pixel_attention_mask", "spatial_shapes") if k in inputs}


FAMILIES = {"siglip": (tiny_siglip, SiglipModel), "siglip2": (tiny_siglip2, Siglip2Model)}


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return request.param


@pytest.fixture
def model(family):
    return DeGLAForContrastive.from_student(FAMILIES[family][0]())


def test_the_config_records_the_family_and_round_trips(model, family, tmp_path):
    assert model.config.student_config.model_type == family and model.config.family.base_loss == "sigmoid"
    assert model.config.clip_config is model.config.student_config  # the former name reads the same field
    with torch.no_grad():
        model.student.logit_bias.add_(1.0)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded.student, FAMILIES[family][1]) and isinstance(loaded.teacher, FAMILIES[family][1])
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert not any(p.requires_grad for p in loaded.teacher.parameters())


def test_k0_and_every_lambda_zero_is_siglips_own_loss(model, family):
    model.config.lambda_igc = model.config.lambda_tgc = model.config.lambda_distill = 0.0
    inputs = make_inputs(family)
    inputs.pop("negative_input_ids")
    out = model(**inputs, return_loss=True)
    reference = model.student(input_ids=inputs["input_ids"], **image_kwargs(inputs), return_loss=True)
    torch.testing.assert_close(out.loss, reference.loss)
    torch.testing.assert_close(out.logits_per_image, reference.logits_per_image)  # s·cos + b
    assert out.teacher_image_embeds is None


def test_base_term_with_negatives_is_the_hand_computed_sigmoid_matrix(model, family):
    out = model(**make_inputs(family), return_loss=True)
    s, b = model.student.logit_scale.exp().squeeze(), model.student.logit_bias.squeeze()  # shape (1,) in SigLIP
    v, t, tn = out.image_embeds, out.text_embeds, out.negative_text_embeds
    columns = [t[j] for j in range(B)] + [tn[j, k] for j in range(B) for k in range(K)]
    total = 0.0
    for i in range(B):
        for c, column in enumerate(columns):
            label = 1.0 if c == i else -1.0  # every negative of the batch is a -1 column for every image
            total = total - torch.log(torch.sigmoid(label * (s * (v[i] @ column) + b)))
    torch.testing.assert_close(out.loss_base, total / B)
    assert out.logits_per_image.shape == (B, B + B * K)
    cfg = model.config
    torch.testing.assert_close(out.loss, out.loss_base + cfg.lambda_igc * out.loss_igc
                               + cfg.lambda_tgc * out.loss_tgc + cfg.lambda_distill * out.loss_distill)


def test_igc_keeps_the_scale_and_drops_the_bias(model, family):
    out = model(**make_inputs(family), return_loss=True)
    s = model.student.logit_scale.exp().squeeze()
    v, t, tn = out.image_embeds, out.text_embeds, out.negative_text_embeds
    logits = torch.cat([(v * t).sum(-1, keepdim=True), torch.einsum("bd,bkd->bk", v, tn)], 1) * s
    target = torch.zeros(B, dtype=torch.long)
    torch.testing.assert_close(out.loss_igc, torch.nn.functional.cross_entropy(logits, target))


def test_the_logit_scale_is_not_clamped_and_the_bias_follows_the_ema(model):
    with torch.no_grad():
        model.student.logit_scale.fill_(7.0)
        model.student.logit_bias.fill_(3.0)
    model.clamp_logit_scale()
    assert model.student.logit_scale.item() == 7.0  # big_vision does not clamp SigLIP's temperature
    before = model.teacher.logit_bias.clone()
    model.update_teacher(0.75)
    torch.testing.assert_close(model.teacher.logit_bias, 0.75 * before + 0.25 * model.student.logit_bias)


def test_gradients_reach_the_bias_and_not_the_teacher(model, family):
    model.train()
    model(**make_inputs(family), return_loss=True).loss.backward()
    assert model.student.logit_bias.grad is not None and model.student.logit_bias.grad.abs() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_export_loads_as_the_students_class_with_equal_features(model, family, tmp_path):
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.export_student(tmp_path)
    exported, info = FAMILIES[family][1].from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    inputs = make_inputs(family)
    with torch.no_grad():
        for name in ("get_image_features", "get_text_features"):
            kwargs = image_kwargs(inputs) if name == "get_image_features" else {"input_ids": inputs["input_ids"]}
            torch.testing.assert_close(getattr(exported, name)(**kwargs).pooler_output,
                                       getattr(model.student, name)(**kwargs).pooler_output)


def test_lora_trains_scale_and_bias_and_the_merged_export_computes_what_the_student_did(family, tmp_path):
    model = DeGLAForContrastive.from_student(FAMILIES[family][0](), lora_config=dict(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]))
    # `out_proj` also names SigLIP's pooling head's nn.MultiheadAttention projection, which an adapter cannot act on
    assert not any("head.attention.out_proj.lora" in name for name, _ in model.student.named_parameters())
    assert model.student_model.logit_bias.requires_grad and model.student_model.logit_scale.requires_grad
    with torch.no_grad():
        for name, p in model.student.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    exported = model.export_student(tmp_path)
    inputs = make_inputs(family)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(exported.get_image_features(**image_kwargs(inputs)).pooler_output,
                                   model.student.get_image_features(**image_kwargs(inputs)).pooler_output)


def test_an_untrainable_family_is_refused_by_name():
    from transformers import AlignConfig

    with pytest.raises(ValueError, match="'align'"):
        DeGLAConfig(student_config=AlignConfig())
