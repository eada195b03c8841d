"""DeGLATrainer end to end on a tiny CLIP: updates, EMA teacher, checkpoints, resume, distributed, LoRA, export."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPModel, CLIPProcessor

from degla import DeGLAForContrastive
from degla.testing_utils import tiny_clip_config

from training_helpers import assert_two_processes_update_like_one, load_wrapper_weights, run_in_process, train_args


def test_training_changes_every_student_weight_and_the_teacher_only_through_ema(tiny_model_dir, tiny_dataset_dir,
                                                                                tmp_path):
    before = DeGLAForContrastive.from_clip(tiny_model_dir).state_dict()
    # ema_decay=1: the teacher must not move at all; every student parameter must.
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "a", "--max_steps", "2",
                              "--per_device_train_batch_size", "4", "--ema_decay", "1.0"))
    after = load_wrapper_weights(tmp_path / "a")
    for name, value in before.items():
        if name.startswith("teacher."):
            assert torch.equal(after[name], value), name
        elif "position_ids" not in name:
            assert not torch.equal(after[name], value), f"{name} did not train"
    # ema_decay=0: the teacher is a copy of the student after each step.
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "b", "--max_steps", "2",
                              "--per_device_train_batch_size", "4", "--ema_decay", "0.0"))
    after = load_wrapper_weights(tmp_path / "b")
    for name in after:
        if name.startswith("student."):
            torch.testing.assert_close(after["teacher." + name[len("student."):]], after[name])


def test_export_model_card_and_logged_terms(tiny_model_dir, tiny_dataset_dir, tmp_path):
    export = run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path, "--max_steps", "3",
                                       "--per_device_train_batch_size", "4"))
    clip, info = CLIPModel.from_pretrained(export, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert CLIPProcessor.from_pretrained(export).tokenizer("a cat")["input_ids"] == [49406, 320, 2368, 49407]
    card = open(os.path.join(export, "README.md")).read()
    assert "lambda_distill" in card and "dropped" in card
    student = load_wrapper_weights(tmp_path)
    torch.testing.assert_close(clip.state_dict()["logit_scale"], student["student.logit_scale"])
    history = json.load(open(os.path.join(tmp_path, "trainer_state.json")))["log_history"]
    logged = [h for h in history if "loss_base" in h]
    assert len(logged) == 3
    assert {"loss_igc", "loss_tgc", "loss_distill", "logit_scale"} <= set(logged[0])


def test_checkpoint_holds_teacher_optimizer_scheduler_rng_and_resume_is_exact(tiny_model_dir, tiny_dataset_dir,
                                                                              tmp_path):
    common = ["--max_steps", "4", "--per_device_train_batch_size", "4", "--save_strategy", "steps",
              "--save_steps", "2"]
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "full", *common))
    checkpoint = tmp_path / "full" / "checkpoint-2"
    files = set(os.listdir(checkpoint))
    assert {"model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"} <= files
    assert any(f.startswith("rng_state") for f in files)
    saved = load_file(checkpoint / "model.safetensors")
    assert any(k.startswith("teacher.") for k in saved) and any(k.startswith("student.") for k in saved)
    optimizer = torch.load(checkpoint / "optimizer.pt", weights_only=False)
    n_trainable = sum(1 for k in saved if k.startswith("student.") and "position_ids" not in k)
    assert sum(len(g["params"]) for g in optimizer["param_groups"]) == n_trainable  # no teacher parameter

    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path / "resumed", *common,
                              "--resume_from_checkpoint", str(checkpoint)))
    full, resumed = load_wrapper_weights(tmp_path / "full"), load_wrapper_weights(tmp_path / "resumed")
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], atol=1e-6, rtol=0, msg=name)


@pytest.mark.slow
def test_two_processes_update_like_one_process_with_twice_the_batch(tiny_model_dir, tiny_dataset_dir, tmp_path):
    """Plain SGD (not Adam, which is invariant to a uniform gradient scale): every weight's *change* after three
    steps of 2 processes × 2 equals that of 1 process × 4, so the gradient's size is right too."""
    assert_two_processes_update_like_one(tiny_model_dir, tiny_dataset_dir, tmp_path, 29561)


def test_lora_trains_adapters_and_exports_a_plain_clip(tiny_model_dir, tiny_dataset_dir, tmp_path):
    export = run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path, "--max_steps", "2",
                                       "--per_device_train_batch_size", "4", "--use_lora", "--lora_r", "4"))
    wrapper = load_wrapper_weights(tmp_path)
    assert any("lora_A" in k for k in wrapper)
    base = CLIPModel.from_pretrained(tiny_model_dir).state_dict()
    clip, info = CLIPModel.from_pretrained(export, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    merged = clip.state_dict()
    assert not any("lora" in k for k in merged)
    changed = [k for k in base if not torch.equal(base[k], merged[k])]
    assert any("q_proj.weight" in k for k in changed)  # adapters were merged into the projections
    assert not any("layer_norm" in k for k in changed)  # frozen weights stayed


class FakeHfApi:
    """Test double for the Hub (unreachable here): records what would be created and uploaded."""

    calls = []

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id))

    def upload_folder(self, folder_path, repo_id, **kwargs):
        self.calls.append(("upload_folder", repo_id, sorted(os.listdir(folder_path))))
        return f"https://huggingface.co/{repo_id}"


def test_push_to_hub_uploads_the_clip_export_not_the_wrapper(tiny_model_dir, tiny_dataset_dir, tmp_path, monkeypatch):
    import degla.hub

    monkeypatch.setattr(degla.hub, "HfApi", FakeHfApi)
    FakeHfApi.calls.clear()
    run_in_process(train_args(tiny_model_dir, tiny_dataset_dir, tmp_path, "--max_steps", "1",
                              "--per_device_train_batch_size", "4", "--gradient_checkpointing",
                              "--push_to_hub", "--hub_model_id", "org/degla-tiny", "--save_strategy", "steps",
                              "--save_steps", "1"))
    assert FakeHfApi.calls[0] == ("create_repo", "org/degla-tiny")
    (_, repo, files), = [c for c in FakeHfApi.calls if c[0] == "upload_folder"]
    assert repo == "org/degla-tiny"
    assert {"model.safetensors", "config.json", "README.md", "tokenizer_config.json"} <= set(files)
    assert json.load(open(tmp_path / "clip" / "config.json"))["model_type"] == "clip"


def test_push_without_a_repo_name_is_refused():
    from degla.training import DeGLATrainingArguments

    with pytest.raises(ValueError, match="--hub_model_id"):
        DeGLATrainingArguments(output_dir="x", push_to_hub=True)


def test_a_low_precision_teacher_that_could_not_move_is_refused():
    from degla.training import EMATeacherCallback

    torch.manual_seed(0)
    model = DeGLAForContrastive.from_clip(CLIPModel(tiny_clip_config())).to(torch.bfloat16)
    with pytest.raises(ValueError, match="teacher would never move"):
        EMATeacherCallback().on_train_begin(None, None, None, model=model)
    model.config.ema_decay = 0.9  # a step of 0.1 is representable in bf16
    EMATeacherCallback().on_train_begin(None, None, None, model=model)
