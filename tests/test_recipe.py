"""The recipe a default run actually gets (docs/recipe.md), read from the built objects: the optimizer's param
groups, the scheduler, the data loader, the collator's transform and the model's config; and the ways the
objective could change silently (DataParallel, a resume with other values) refused."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from degla import DeGLAConfig, DeGLAForContrastive
from degla.cli import parse_stage_arguments
from degla.training import TRAINING, TrainImageTransform
from degla.training.run import build_trainer
from degla.training.transforms import random_resized_crop_box

from training_helpers import load_wrapper_weights, run_in_process, train_args


def default_trainer(model_dir, data_dir, out, *extra):
    """A trainer built as `scripts/train.py` builds it, with every recipe option left at its default."""
    argv = ["--model_name_or_path", model_dir, "--train_file", data_dir, "--output_dir", str(out),
            "--report_to", "none", "--per_device_train_batch_size", "4", *extra]
    trainer, _ = build_trainer(*parse_stage_arguments(TRAINING, argv))
    return trainer


def test_optimizer_is_the_papers_adamw_with_the_authors_weight_decay_rule(tiny_model_dir, tiny_dataset_dir, tmp_path):
    trainer = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path)
    optimizer = trainer.create_optimizer()
    assert isinstance(optimizer, torch.optim.AdamW)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = {g["weight_decay"]: {names[id(p)] for p in g["params"]} for g in optimizer.param_groups}
    assert set(groups) == {0.1, 0.0}
    for group in optimizer.param_groups:
        assert (group["lr"], group["betas"], group["eps"]) == (1e-6, (0.9, 0.98), 1e-6)
    decayed, not_decayed = groups[0.1], groups[0.0]
    # hand-picked names of transformers' CLIP, each sorted by the authors' rule (ndim >= 2 and no bn/ln/bias/
    # logit_scale in the name): position and token embeddings are decayed, the class embedding is not
    for name in ("student.text_model.embeddings.token_embedding.weight",
                 "student.text_model.embeddings.position_embedding.weight",
                 "student.vision_model.embeddings.position_embedding.weight",
                 "student.vision_model.embeddings.patch_embedding.weight",
                 "student.text_model.encoder.layers.0.self_attn.q_proj.weight",
                 "student.vision_model.encoder.layers.1.mlp.fc2.weight",
                 "student.text_projection.weight", "student.visual_projection.weight"):
        assert name in decayed, name
    for name in ("student.logit_scale", "student.vision_model.embeddings.class_embedding",
                 "student.vision_model.pre_layrnorm.weight", "student.vision_model.post_layernorm.bias",
                 "student.text_model.final_layer_norm.weight",
                 "student.text_model.encoder.layers.0.layer_norm1.weight",
                 "student.text_model.encoder.layers.0.self_attn.q_proj.bias",
                 "student.vision_model.encoder.layers.1.mlp.fc1.bias"):
        assert name in not_decayed, name
    student = {n for n, p in trainer.model.named_parameters() if n.startswith("student.")}
    assert decayed | not_decayed == student and not decayed & not_decayed  # no teacher parameter, none twice
    assert all(p.dim() >= 2 for n, p in trainer.model.named_parameters() if n in decayed)


def test_schedule_warms_up_as_open_clip_then_cosine(tiny_model_dir, tiny_dataset_dir, tmp_path):
    trainer = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path, "--learning_rate", "1e-3",
                              "--warmup_steps", "4", "--max_steps", "10")
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    # open_clip's cosine_lr: step s < 4 uses lr·(s+1)/4, then 0.5·(1+cos(π·(s−4)/6))·lr
    expected = [1e-3 * (s + 1) / 4 for s in range(4)] + [0.5 * (1 + math.cos(math.pi * e / 6)) * 1e-3 for e in range(6)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    hf = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path / "hf", "--learning_rate", "1e-3",
                         "--warmup_steps", "4", "--no_open_clip_warmup")
    hf.create_optimizer_and_scheduler(num_training_steps=10)
    assert hf.optimizer.param_groups[0]["lr"] == 0.0  # transformers' warm-up: the first step has lr 0


def test_data_loader_drops_the_last_partial_batch(tiny_model_dir, tiny_dataset_dir, tmp_path):
    trainer = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path, "--per_device_train_batch_size", "5")
    loader = trainer.get_train_dataloader()
    sizes = [batch["input_ids"].shape[0] for batch in loader]
    assert sizes == [5, 5, 5]  # 16 captions: the 16th is dropped, not a batch of 1
    assert trainer.args.max_grad_norm == 0  # and no clipping: see test_no_gradient_clipping_by_default


def test_no_gradient_clipping_by_default(tiny_model_dir, tiny_dataset_dir, tmp_path):
    """One plain SGD step moves every weight by exactly −lr·gradient, however large the gradient's norm."""
    from degla.training.run import build_trainer

    argv = ["--model_name_or_path", tiny_model_dir, "--train_file", tiny_dataset_dir, "--output_dir",
            str(tmp_path), "--report_to", "none", "--per_device_train_batch_size", "16", "--optim", "sgd",
            "--learning_rate", "1.0", "--weight_decay", "0", "--lr_scheduler_type", "constant", "--warmup_steps",
            "0", "--max_steps", "1", "--train_augmentation", "none", "--ema_decay", "1.0", "--save_strategy", "no"]
    trainer, _ = build_trainer(*parse_stage_arguments(TRAINING, argv))
    batch = next(iter(trainer.get_train_dataloader()))
    reference = DeGLAForContrastive.from_clip(tiny_model_dir)
    reference.train()
    reference(**batch, return_loss=True).loss.backward()
    grads = {n: p.grad.clone() for n, p in reference.named_parameters() if p.grad is not None}
    assert torch.cat([g.flatten() for g in grads.values()]).norm() > 1.0  # clipping at 1.0 would have acted
    trainer.train()
    after = dict(trainer.model.named_parameters())
    start = dict(DeGLAForContrastive.from_clip(tiny_model_dir).named_parameters())
    for name, grad in grads.items():
        if name == "student.logit_scale":  # clamped to ln(100) after the step
            continue
        torch.testing.assert_close(after[name].detach(), start[name].detach() - grad, atol=2e-5, rtol=1e-4,
                                   msg=name)


def test_training_transform_is_the_authors_random_resized_crop(tiny_model_dir, tiny_dataset_dir, tmp_path):
    trainer = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path)
    transform = trainer.data_collator.image_transform
    assert isinstance(transform, TrainImageTransform)
    assert (transform.augmentation, transform.scale, transform.size) == ("random_resized_crop", (0.9, 1.0), (30, 30))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8))
    # the box: area within the scale range (up to rounding), aspect ratio within [3/4, 4/3]
    for index in range(200):
        left, top, w, h = random_resized_crop_box(40, 48, (0.9, 1.0), np.random.default_rng([7, 0, index]))
        assert 0 <= left <= 40 - w and 0 <= top <= 48 - h
        assert 0.9 * 40 * 48 * 0.93 <= w * h <= 40 * 48
        assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    # the pixels: PIL's bicubic resize of that crop, then CLIP's normalisation, computed here by hand
    transform.epoch = 3
    left, top, w, h = random_resized_crop_box(40, 48, (0.9, 1.0), np.random.default_rng([transform.seed, 3, 11]))
    crop = np.asarray(image.crop((left, top, left + w, top + h)).resize((30, 30), Image.Resampling.BICUBIC),
                      dtype=np.float32) / 255.0
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    expected = torch.tensor(((crop - mean) / std).transpose(2, 0, 1), dtype=torch.float32)
    torch.testing.assert_close(transform([image], [11])[0], expected)
    # seeded by (seed, epoch, sample): the same again, another crop in another epoch
    assert torch.equal(transform([image], [11]), transform([image], [11]))
    transform.epoch = 4
    assert not torch.equal(transform([image], [11])[0], expected)
    # switched off: the checkpoint's deterministic evaluation transform
    plain = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path / "plain", "--train_augmentation", "none")
    pixels = plain.data_collator.image_transform([image], [0])
    torch.testing.assert_close(pixels,
                               plain.processing_class.image_processor([image], return_tensors="pt")["pixel_values"])


def test_model_config_holds_the_papers_objective(tiny_model_dir, tiny_dataset_dir, tmp_path):
    config = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path).model.config
    assert config.objective() == {"ema_decay": 0.9996, "lambda_igc": 0.1, "lambda_tgc": 0.1, "lambda_distill": 0.005,
                                  "tgc_temperature": 0.1, "distill_reduction": "sum", "num_negatives": 4}


def test_several_gpus_in_one_process_are_refused(tiny_model_dir, tiny_dataset_dir, tmp_path, monkeypatch):
    from degla.training import DeGLATrainingArguments

    monkeypatch.setattr(DeGLATrainingArguments, "n_gpu", property(lambda self: 4))
    with pytest.raises(ValueError, match="nn.DataParallel.*accelerate launch --multi_gpu --num_processes 4"):
        default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path)


def test_resume_with_another_objective_is_refused_naming_each_field(tiny_model_dir, tiny_dataset_dir, tmp_path):
    common = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--save_strategy", "steps", "--save_steps", "1"]
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "run", *common))
    checkpoint = str(tmp_path / "run" / "checkpoint-1")
    other = ["--resume_from_checkpoint", checkpoint, "--lambda_distill", "0.02", "--ema_decay", "0.9"]
    with pytest.raises(ValueError, match=r"ema_decay: checkpoint 0.5, now 0.9; lambda_distill: checkpoint 0.005, "
                                         r"now 0.02.*--allow_objective_change"):
        run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "run", *common, *other))
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "run", *common, *other,
                              "--allow_objective_change"))
    assert DeGLAConfig.from_pretrained(tmp_path / "run").lambda_distill == 0.02


def test_bf16_on_cpu_autocasts_over_fp32_weights_and_the_teacher_moves(tiny_model_dir, tiny_dataset_dir, tmp_path):
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path, "--max_steps", "2",
                              "--per_device_train_batch_size", "4", "--bf16", "--use_cpu"))
    after = load_wrapper_weights(tmp_path)
    start = DeGLAForContrastive.from_clip(tiny_model_dir).state_dict()
    teacher = [name for name in after if name.startswith("teacher.") and "position_ids" not in name]
    assert all(after[name].dtype == torch.float32 for name in teacher)
    assert sum(not torch.equal(after[name], start[name]) for name in teacher) > len(teacher) // 2


def test_gradient_accumulation_matches_its_documented_reference(tiny_model_dir, tiny_dataset_dir, tmp_path):
    """G = 2 micro-batches of b = 4 in one SGD step equal the documented reference, computed here term by term:
    the mean terms (base, IGC, TGC) are averaged over the micro-batches, each contrasting within its own
    micro-batch, and the distillation is the exact sum over all 2b samples."""
    argv = ["--model_name_or_path", tiny_model_dir, "--train_file", tiny_dataset_dir, "--output_dir", str(tmp_path),
            "--report_to", "none", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2",
            "--optim", "sgd", "--learning_rate", "0.5", "--weight_decay", "0", "--lr_scheduler_type", "constant",
            "--warmup_steps", "0", "--max_steps", "1", "--train_augmentation", "none", "--ema_decay", "1.0",
            "--train_sampling_strategy", "sequential", "--save_strategy", "no", "--lambda_distill", "0.05"]
    trainer, _ = build_trainer(*parse_stage_arguments(TRAINING, argv))
    first, second = [batch for _, batch in zip(range(2), trainer.get_train_dataloader())]
    reference = DeGLAForContrastive.from_clip(tiny_model_dir, lambda_distill=0.05)
    # the teacher must differ from the student for the distillation to have a gradient: train both from a
    # student moved off the teacher
    with torch.no_grad():
        for p in reference.student.parameters():
            p.add_(0.01 * torch.randn_like(p, generator=None))
    trainer.model.load_state_dict(reference.state_dict())
    start = {n: p.detach().clone() for n, p in reference.named_parameters()}
    reference.train()
    total = 0
    for batch in (first, second):
        out = reference(**batch, return_loss=True)
        terms = out.loss_terms
        means = terms["loss_base"] + 0.1 * terms["loss_igc"] + 0.1 * terms["loss_tgc"]
        total = total + means / 2 + 0.05 * terms["loss_distill"]  # distillation: a sum over both micro-batches
    total.backward()
    trainer.train()
    after = dict(trainer.model.named_parameters())
    for name, p in reference.named_parameters():
        if p.grad is None or name == "student.logit_scale":
            continue
        torch.testing.assert_close(after[name].detach(), start[name] - 0.5 * p.grad, atol=2e-6, rtol=1e-4, msg=name)


def test_teacher_update_and_clamp_run_once_per_optimizer_step_not_per_micro_batch(tiny_model_dir, tiny_dataset_dir,
                                                                                    tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(DeGLAForContrastive, "update_teacher", lambda self, decay=None: calls.append("ema"))
    monkeypatch.setattr(DeGLAForContrastive, "clamp_logit_scale", lambda self, max_value=0: calls.append("clamp"))
    trainer = default_trainer(tiny_model_dir, tiny_dataset_dir, tmp_path, "--per_device_train_batch_size", "2",
                              "--gradient_accumulation_steps", "2", "--max_steps", "3", "--save_strategy", "no")
    assert trainer.accelerator.mixed_precision == "no"  # fp32 unless --bf16/--fp16 (docs/recipe.md)
    trainer.train()
    assert calls == ["ema", "clamp"] * 3  # 3 optimizer steps of 2 micro-batches each
