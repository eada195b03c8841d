"""scripts/train.py's code on tiny SigLIP and SigLIP 2 checkpoints (built in code, saved with their processors):
the family's preprocessing, the drop-in export, resume and 2 processes = 1 process."""

import json
import os

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from PIL import Image
from transformers import AutoProcessor, Siglip2Model, SiglipModel

from degla.families import FAMILIES
from degla.training import DeGLACollator, TrainImageTransform, assign_negative_slots

from dual_encoder_helpers import save_tiny_siglip, save_tiny_siglip2
from training_helpers import assert_two_processes_update_like_one, load_wrapper_weights, run_in_process, train_args


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory):
    return save_tiny_siglip(str(tmp_path_factory.mktemp("tiny_siglip")))


@pytest.fixture(scope="module")
def siglip2_dir(tmp_path_factory):
    return save_tiny_siglip2(str(tmp_path_factory.mktemp("tiny_siglip2")))


def _rows(dataset_dir, n=3):
    dataset, _ = assign_negative_slots(load_from_disk(dataset_dir), num_negatives=2)
    rows = [dataset[i] for i in range(n)]
    rows[0]["caption"] = "A Red DOG next to a Tree"
    return rows


def test_siglip_texts_are_lower_cased_padded_to_the_tower_and_unmasked(siglip_dir, tiny_dataset_dir):
    processor = AutoProcessor.from_pretrained(siglip_dir)
    collator = DeGLACollator(processor, 2, max_length=64, family=FAMILIES["siglip"])
    rows = _rows(tiny_dataset_dir)
    batch = collator(rows)
    assert "attention_mask" not in batch and "negative_attention_mask" not in batch
    assert batch["input_ids"].shape == (3, 64) and batch["negative_input_ids"].shape == (3, 2, 64)
    expected = processor.tokenizer([r["caption"].lower() for r in rows], padding="max_length", max_length=64,
                                   truncation=True, return_tensors="pt")["input_ids"]
    assert torch.equal(batch["input_ids"], expected)
    assert torch.equal(batch["negative_input_ids"][1, 0], processor.tokenizer(
        rows[1]["negatives"][0].lower(), padding="max_length", max_length=64, return_tensors="pt")["input_ids"][0])
    pixels = processor.image_processor([r["image"].convert("RGB") for r in rows], return_tensors="pt")["pixel_values"]
    assert torch.equal(batch["pixel_values"], pixels)  # no transform: the checkpoint's processor as saved


def test_siglip_crop_is_the_authors_box_then_the_checkpoints_processor(siglip_dir, siglip2_dir):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8))
    for path, family in ((siglip_dir, "siglip"), (siglip2_dir, "siglip2")):
        processor = AutoProcessor.from_pretrained(path).image_processor
        transform = TrainImageTransform(processor, "random_resized_crop", (0.5, 0.6), seed=3, family=FAMILIES[family])
        transform.epoch = 2
        box = transform.crop_box(image, 7)
        assert (box[2] - box[0]) * (box[3] - box[1]) <= 0.6 * 48 * 40 + 48  # a crop, not the whole image
        inputs = transform.image_inputs([image], [7])
        expected = processor([image.crop(box)], return_tensors="pt")
        assert set(inputs) == {k for k, v in expected.items() if isinstance(v, torch.Tensor)}
        for name, value in inputs.items():
            assert torch.equal(value, expected[name]), (family, name)
    assert {"pixel_attention_mask", "spatial_shapes"} <= set(inputs)  # SigLIP 2 NaFlex


@pytest.mark.parametrize("family,model_class", [("siglip", SiglipModel), ("siglip2", Siglip2Model)])
def test_training_exports_a_drop_in_model_of_the_students_class(family, model_class, siglip_dir, siglip2_dir,
                                                                tiny_dataset_dir, tmp_path):
    path = siglip_dir if family == "siglip" else siglip2_dir
    export = run_in_process(train_args(path, tiny_dataset_dir, tmp_path, "--max_steps", "2",
                                       "--per_device_train_batch_size", "4", "--num_negatives", "2"))
    assert os.path.basename(export) == family
    exported, info = model_class.from_pretrained(export, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(AutoProcessor.from_pretrained(export)).__name__ == type(AutoProcessor.from_pretrained(path)).__name__
    wrapper = load_wrapper_weights(tmp_path)
    start = model_class.from_pretrained(path).state_dict()
    for name, value in exported.state_dict().items():
        assert torch.equal(value, wrapper["student." + name]), name
    assert not torch.equal(exported.logit_bias, start["logit_bias"])  # the bias trains
    assert f"{model_class.__name__}.from_pretrained" in open(os.path.join(export, "README.md")).read()
    history = json.load(open(tmp_path / "trainer_state.json"))["log_history"]
    assert {"loss_base", "loss_igc", "loss_tgc", "loss_distill", "logit_scale", "logit_bias"} <= set(history[0])


def test_siglip_resume_is_exact(siglip_dir, tiny_dataset_dir, tmp_path):
    common = ["--max_steps", "4", "--per_device_train_batch_size", "4", "--save_strategy", "steps", "--save_steps",
              "2", "--num_negatives", "2"]
    run_in_process(train_args(siglip_dir, tiny_dataset_dir, tmp_path / "full", *common))
    run_in_process(train_args(siglip_dir, tiny_dataset_dir, tmp_path / "resumed", *common,
                              "--resume_from_checkpoint", str(tmp_path / "full" / "checkpoint-2")))
    full, resumed = load_wrapper_weights(tmp_path / "full"), load_wrapper_weights(tmp_path / "resumed")
    assert any(name.startswith("teacher.") and "logit_bias" in name for name in full)
    for name in full:
        assert torch.equal(resumed[name], full[name]), name


@pytest.mark.slow
def test_siglip_two_processes_update_like_one_process_with_twice_the_batch(siglip_dir, tiny_dataset_dir, tmp_path):
    """As for CLIP (tests/test_training.py), with SGD: the sigmoid base term's gathered columns and local rows make
    2 processes × 2 step exactly as 1 process × 4."""
    runs = assert_two_processes_update_like_one(siglip_dir, tiny_dataset_dir, tmp_path, 29563, "--num_negatives", "2")
    one, start = runs["one"], runs["start"]
    assert (one["student.logit_bias"] - start["student.logit_bias"]).abs().item() > 1e-3
