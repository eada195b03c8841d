"""The shipped base CLIP of the world and its pretraining recipe."""

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from degla.world import pretrain
from degla.world.benchmarks import ZEROSHOT_TEMPLATES, seen_combinations, single_object_classes
from degla.world.clip import BASE_MODEL_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def base():
    model = CLIPModel.from_pretrained(BASE_MODEL_DIR, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(BASE_MODEL_DIR, local_files_only=True)
    return model, processor


def test_checkpoint_is_small_safetensors(base):
    model, processor = base
    files = os.listdir(BASE_MODEL_DIR)
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert os.path.getsize(os.path.join(BASE_MODEL_DIR, "model.safetensors")) < 20e6
    assert sum(p.numel() for p in model.parameters()) < 5e6
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert model.config.text_config.eos_token_id == processor.tokenizer.eos_token_id


@torch.no_grad()
def test_base_model_recognises_single_objects_through_the_processor(base):
    """Zero-shot colour x shape through the user's code path (PIL images, CLIPProcessor, prompt ensemble)."""
    model, processor = base
    combos = seen_combinations()[::4]  # 14 classes
    images, labels = single_object_classes(combos, 3, seed=77)
    prompts = [t.format(f"{c} {s}") for c, s in combos for t in ZEROSHOT_TEMPLATES]
    inputs = processor(text=prompts, images=[Image.fromarray(i) for i in images], return_tensors="pt", padding=True,
                       truncation=True)
    out = model(**inputs)
    text = torch.nn.functional.normalize(out.text_embeds.view(len(combos), len(ZEROSHOT_TEMPLATES), -1).mean(1), dim=-1)
    accuracy = float(((out.image_embeds @ text.T).argmax(-1).numpy() == labels).mean())
    assert accuracy > 0.5, accuracy  # chance is 1/14


def test_base_model_is_a_bag_of_words(base):
    """The property the world was tuned for: recognition high, binding (swaps, relations) near chance."""
    model, processor = base
    results = pretrain.quick_eval(model, processor.tokenizer, n_scenes=120, n_per_class=4)
    assert results["zeroshot_seen"] > 70 and results["replace_att"] > 85 and results["replace_obj"] > 75, results
    assert results["swap_att"] < 65 and results["swap_obj"] < 65 and results["replace_rel"] < 65, results


def test_pretraining_recipe_runs_and_saves(tmp_path):
    script = pretrain
    args = script.PretrainArguments(output_dir=str(tmp_path), max_steps=2, batch_size=8, warmup_steps=1,
                                    eval_scenes=12, eval_per_class=1, num_threads=1)
    results = script.run_pretraining(args)
    assert {"zeroshot_seen", "zeroshot_heldout", "swap_att", "replace_rel"} <= set(results)
    model = CLIPModel.from_pretrained(tmp_path)
    processor = CLIPProcessor.from_pretrained(tmp_path)
    assert (model.config.vision_config.image_size == 64
            and processor.tokenizer("a red star").input_ids[-1] == processor.tokenizer.eos_token_id)
    assert os.path.isfile(tmp_path / "pretraining.json")


def test_siglip_pretraining_recipe_runs_and_saves_a_siglip_the_family_prepares(tmp_path):
    from transformers import AutoProcessor, SiglipModel

    args = pretrain.PretrainArguments(output_dir=str(tmp_path), family="siglip", max_steps=2, batch_size=8,
                                      warmup_steps=1, eval_scenes=12, eval_per_class=1, num_threads=1)
    results = pretrain.run_pretraining(args)
    assert {"zeroshot_seen", "swap_att"} <= set(results)
    model = SiglipModel.from_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(processor).__name__ == "SiglipProcessor" and model.config.text_config.max_position_embeddings == 32
    # the initial bias -log(batch size) (--logit_bias_init's default), moved <= 2 lr by two AdamW steps
    assert abs(model.logit_bias.item() + math.log(8)) < 2e-3
    inputs = pretrain.text_inputs(model, processor.tokenizer, ["A Red Star"])
    assert set(inputs) == {"input_ids"} and inputs["input_ids"].shape == (1, 32)  # padded to the tower, no mask
    image = (np.random.default_rng(0).random((1, 64, 64, 3)) * 255).astype(np.uint8)
    expected = processor.image_processor([Image.fromarray(image[0])], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pretrain.image_inputs(model, image), expected)


def test_the_shipped_base_siglip_is_a_small_siglip_with_its_processor():
    from transformers import AutoProcessor, SiglipModel

    from degla.families import family_of
    from degla.world.clip import BASE_SIGLIP_DIR

    model = SiglipModel.from_pretrained(BASE_SIGLIP_DIR, local_files_only=True)
    processor = AutoProcessor.from_pretrained(BASE_SIGLIP_DIR, local_files_only=True)
    assert family_of(model).name == "SigLIP" and type(processor).__name__ == "SiglipProcessor"
    assert sum(p.numel() for p in model.parameters()) < 5e6
    assert os.path.getsize(os.path.join(BASE_SIGLIP_DIR, "model.safetensors")) < 20e6
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
