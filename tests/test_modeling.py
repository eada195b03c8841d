"""DeGLAForContrastive: shapes, objective, teacher handling, EMA, export and save/load round trips."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import AutoModel, CLIPModel, CLIPProcessor

from degla import DeGLAConfig, DeGLAForContrastive
from degla.testing_utils import tiny_clip_config

B, K, L, V = 3, 4, 7, 99


def make_inputs(seed=0, b=B, k=K):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V - 2, (b, L), generator=g)
    ids[:, 0], ids[:, -1] = V - 2, V - 1
    neg = torch.randint(1, V - 2, (b, k, L), generator=g)
    neg[..., 0], neg[..., -1] = V - 2, V - 1
    return dict(input_ids=ids, pixel_values=torch.randn(b, 3, 30, 30, generator=g), negative_input_ids=neg)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DeGLAForContrastive.from_clip(CLIPModel(tiny_clip_config()))


def test_output_shapes_and_normalised_embeddings(model):
    out = model(**make_inputs(), return_loss=True)
    assert out.logits_per_image.shape == (B, B + B * K)
    assert out.logits_per_text.shape == (B, B)
    assert out.image_embeds.shape == out.text_embeds.shape == out.teacher_text_embeds.shape == (B, 16)
    assert out.negative_text_embeds.shape == out.teacher_negative_text_embeds.shape == (B, K, 16)
    for e in (out.image_embeds, out.text_embeds, out.negative_text_embeds, out.teacher_image_embeds):
        torch.testing.assert_close(e.norm(dim=-1), torch.ones(e.shape[:-1]))
    for name in ("loss", "loss_base", "loss_igc", "loss_tgc", "loss_distill"):
        assert getattr(out, name).shape == ()
    cfg = model.config
    torch.testing.assert_close(out.loss, out.loss_base + cfg.lambda_igc * out.loss_igc
                               + cfg.lambda_tgc * out.loss_tgc + cfg.lambda_distill * out.loss_distill)


def test_inference_logits_are_clips_and_the_training_logits(model):
    inputs = make_inputs()
    model.eval()
    with torch.no_grad():
        plain = model(**inputs)
        trained = model(**inputs, return_loss=True)
        clip = model.student(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"])
    assert plain.loss is None and plain.logits_per_image.shape == (B, B + B * K)
    torch.testing.assert_close(plain.logits_per_text, clip.logits_per_text)  # CLIP's own, for the captions
    torch.testing.assert_close(plain.logits_per_image[:, :B], clip.logits_per_image)
    torch.testing.assert_close(plain.logits_per_image, trained.logits_per_image)
    torch.testing.assert_close(plain.logits_per_text, trained.logits_per_text)


def test_all_lambdas_zero_without_negatives_equals_clip_loss(model):
    model.config.lambda_igc = model.config.lambda_tgc = model.config.lambda_distill = 0.0
    inputs = make_inputs()
    inputs.pop("negative_input_ids")
    out = model(**inputs, return_loss=True)
    ref = model.student(**inputs, return_loss=True)
    torch.testing.assert_close(out.loss, ref.loss)
    assert out.teacher_image_embeds is None  # no teacher forward when no term needs it


def test_student_and_teacher_start_identical_and_the_teacher_is_frozen(model):
    for (n, s), t in zip(model.student.named_parameters(), model.teacher.parameters()):
        assert torch.equal(s, t), n
        assert not t.requires_grad
    model.train()
    assert model.student.training and not model.teacher.training
    out = model(**make_inputs(), return_loss=True)
    out.loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(p.grad is not None for p in model.student.parameters())
    # the teacher's embedding of the same caption equals the student's before any update
    torch.testing.assert_close(out.teacher_text_embeds, out.text_embeds.detach())
    torch.testing.assert_close(out.loss_distill, torch.tensor(0.0))


def test_update_teacher_is_the_ema_formula(model):
    before = {n: p.clone() for n, p in model.teacher.named_parameters()}
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn_like(p))
    model.update_teacher()
    a = model.config.ema_decay
    for n, p in model.student.named_parameters():
        torch.testing.assert_close(dict(model.teacher.named_parameters())[n], a * before[n] + (1 - a) * p)


def test_update_teacher_tracks_only_trainable_parameters(model):
    model.student.vision_model.requires_grad_(False)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    model.update_teacher(0.0)
    assert torch.equal(model.teacher.text_model.final_layer_norm.weight,
                       model.student.text_model.final_layer_norm.weight)
    assert not torch.equal(model.teacher.vision_model.post_layernorm.weight,
                           model.student.vision_model.post_layernorm.weight)


def test_logit_scale_clamp(model):
    with torch.no_grad():
        model.student.logit_scale.fill_(7.0)
    model.clamp_logit_scale()
    assert model.student.logit_scale.item() == pytest.approx(torch.log(torch.tensor(100.0)).item())


def test_negative_texts_of_a_different_length_are_padded(model):
    inputs = make_inputs()
    short = model(**inputs, return_loss=True)
    pad = torch.zeros(B, K, 3, dtype=torch.long)
    inputs["negative_attention_mask"] = torch.cat([torch.ones(B, K, L, dtype=torch.long), pad], -1)
    inputs["negative_input_ids"] = torch.cat([inputs["negative_input_ids"], pad], -1)
    torch.testing.assert_close(model(**inputs, return_loss=True).loss, short.loss)


def test_bad_negative_shape_is_named(model):
    inputs = make_inputs()
    inputs["negative_input_ids"] = inputs["negative_input_ids"][:, 0]
    with pytest.raises(ValueError, match="negative_input_ids must have shape"):
        model(**inputs)


def test_export_clip_loads_as_plain_clip_with_identical_embeddings(model, tmp_path):
    from transformers import CLIPImageProcessorPil

    from degla.testing_utils import clip_bpe_tokenizer

    processor = CLIPProcessor(image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30},
                                                                 crop_size={"height": 30, "width": 30}),
                              tokenizer=clip_bpe_tokenizer())
    model.export_clip(tmp_path, processor=processor)
    clip, info = CLIPModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert clip.config.model_type == "clip"
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    inputs = make_inputs()
    with torch.no_grad():
        a = model.student.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
        b = clip.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
    torch.testing.assert_close(a, b)
    assert CLIPProcessor.from_pretrained(tmp_path).tokenizer("a cat")["input_ids"] == [49406, 320, 2368, 49407]


def test_save_pretrained_round_trips_student_and_teacher(model, tmp_path):
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(0.5)
    model.update_teacher(0.9)
    assert not torch.equal(model.student.logit_scale, model.teacher.logit_scale)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, DeGLAForContrastive)
    for a, b in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert a[0] == b[0] and torch.equal(a[1], b[1]), a[0]
    assert not any(p.requires_grad for p in loaded.teacher.parameters())
    assert loaded.config.ema_decay == model.config.ema_decay


@pytest.mark.parametrize("field,value,match", [
    ("ema_decay", 1.5, "ema_decay"), ("lambda_igc", -0.1, "lambda_igc"), ("tgc_temperature", 0, "tgc_temperature"),
    ("distill_reduction", "max", "distill_reduction"), ("num_negatives", -1, "num_negatives"),
])
def test_bad_config_values_raise_clear_errors(field, value, match):
    with pytest.raises(StrictDataclassFieldValidationError, match=match):
        DeGLAConfig(clip_config=tiny_clip_config(), **{field: value})


def test_config_defaults_are_the_papers():
    c = DeGLAConfig(clip_config=tiny_clip_config())
    assert (c.ema_decay, c.lambda_igc, c.lambda_tgc, c.lambda_distill, c.tgc_temperature, c.distill_reduction,
            c.num_negatives) == (0.9996, 0.1, 0.1, 0.005, 0.1, "sum", 4)
