"""The OpenAI/open_clip → CLIPModel converter against OpenAI's reference model code (clip-anytorch)."""

import importlib.util
import subprocess
import sys

import pytest
import torch
from transformers import CLIPModel, CLIPProcessor

from degla.conversion import convert_openclip_checkpoint


def openai_clip_module():
    spec = importlib.util.find_spec("clip")
    if spec is None:
        pytest.skip("needs `pip install --no-deps clip-anytorch`")
    # Import model.py by path: clip/__init__ needs torchvision and pkg_resources.
    file_spec = importlib.util.spec_from_file_location("openai_clip_model",
                                                       spec.submodule_search_locations[0] + "/model.py")
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    ref = openai_clip_module().CLIP(embed_dim=32, image_resolution=32, vision_layers=2, vision_width=128,
                                    vision_patch_size=8, context_length=16, vocab_size=100, transformer_width=128,
                                    transformer_heads=2, transformer_layers=2).float().eval()
    with torch.no_grad():  # move layer norms etc. away from their trivial initial values
        for p in ref.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return ref


def test_converted_features_match_openai_reference(reference):
    hf = convert_openclip_checkpoint(reference.state_dict()).eval()
    assert hf.config.vision_config.image_size == 32 and hf.config.text_config.num_hidden_layers == 2
    images = torch.randn(3, 3, 32, 32)
    texts = torch.randint(1, 98, (3, 16))
    texts[:, 7], texts[:, 8:] = 99, 0  # eot (highest id, as OpenAI pools at argmax) then padding
    with torch.no_grad():
        torch.testing.assert_close(hf.get_image_features(pixel_values=images).pooler_output,
                                   reference.encode_image(images), atol=1e-4, rtol=0)
        torch.testing.assert_close(hf.get_text_features(input_ids=texts).pooler_output,
                                   reference.encode_text(texts), atol=1e-4, rtol=0)
        torch.testing.assert_close(hf.logit_scale, reference.logit_scale)


def test_cli_converts_a_ddp_wrapped_checkpoint(reference, tmp_path):
    ckpt = tmp_path / "epoch_5.pt"
    torch.save({"epoch": 5, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, ckpt)
    out = tmp_path / "hf"
    subprocess.run([sys.executable, "scripts/convert_openclip_to_hf.py", "--checkpoint", str(ckpt),
                    "--output_dir", str(out)], check=True)
    model, info = CLIPModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert CLIPProcessor.from_pretrained(out).tokenizer("a photo of a cat")["input_ids"] == [
        49406, 320, 1125, 539, 320, 2368, 49407]
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.get_image_features(pixel_values=images).pooler_output,
                                   reference.encode_image(images), atol=1e-4, rtol=0)


def test_unknown_keys_are_reported(reference):
    sd = dict(reference.state_dict())
    sd["visual.extra_head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unused source keys.*extra_head"):
        convert_openclip_checkpoint(sd)


def test_resnet_checkpoints_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="ResNet"):
        convert_openclip_checkpoint({"visual.layer1.0.conv1.weight": torch.zeros(1)})
