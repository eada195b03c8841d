"""benchmarks/bench_training_step.py compares like with like, and runs end to end at a tiny size on the CPU."""

import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import bench_data_path  # noqa: E402
import bench_training_step as bench  # noqa: E402

from degla.conversion import convert_openclip_checkpoint  # noqa: E402

TINY = bench.ARCHITECTURES["tiny"]


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = bench.build_reference("openai_clip", TINY).train()
    with torch.no_grad():  # away from the trivial initial layer norms, so a wrong mapping shows
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("size", ["tiny", "vit-b-32"])
def test_reference_and_ours_have_the_same_architecture(size):
    """Same parameter count, and the same tensor shapes once the reference's names are mapped to ours."""
    from transformers import CLIPModel

    arch = bench.ARCHITECTURES[size]
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        ref = bench.build_reference("openai_clip", arch)
        ours = CLIPModel(bench.hf_clip_config(arch))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ref) == count(ours)
    if size == "vit-b-32":
        assert count(ours) == 151_277_313  # ViT-B/32
    degla = bench.build_ours(TINY, "degla") if size == "tiny" else None
    if degla is not None:  # the DeGLA row trains the same student and holds a same-size teacher
        assert count(degla.student) == count(ours) == count(degla.teacher)
        assert count(bench.build_ours(TINY, "negclip").teacher) == 0


def test_our_negclip_loss_equals_the_reference_loss_on_the_same_weights(reference):
    """The negclip and reference rows compute the same objective: the reference's weights converted to HF CLIP
    give our DeGLAForContrastive (all λ = 0) the reference's loss on the benchmark's inputs, and the same
    gradients on the logit scale and the patch embedding."""
    from degla import DeGLAForContrastive

    b, k = 3, 4
    pixel_values, texts, mask = bench.make_inputs(TINY, b, k, seed=1)
    ref_loss = bench.reference_negclip_loss(reference, pixel_values, texts, b)
    ref_loss.backward()
    clip = convert_openclip_checkpoint({n: t.detach().clone() for n, t in reference.state_dict().items()})
    ours = DeGLAForContrastive.from_clip(clip, lambda_igc=0, lambda_tgc=0, lambda_distill=0).train()
    loss = ours(**bench.ours_inputs(pixel_values, texts, mask, b, k), return_loss=True).loss
    loss.backward()
    torch.testing.assert_close(loss, ref_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.logit_scale.grad, reference.logit_scale.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.student.vision_model.embeddings.patch_embedding.weight.grad,
                               reference.visual.conv1.weight.grad, atol=1e-6, rtol=1e-4)


def test_inputs_are_77_token_texts_with_one_eot_and_padding_after_it():
    pixel_values, texts, mask = bench.make_inputs(TINY, 2, 4)
    assert texts.shape == mask.shape == (10, 77) and pixel_values.shape == (2, 3, 32, 32)
    eot = texts.argmax(-1)  # OpenAI pools at the highest id; ours at the first eot
    assert ((texts == bench.EOT).sum(-1) == 1).all() and (texts[torch.arange(10), eot] == bench.EOT).all()
    assert torch.equal(mask.sum(-1), eot + 1) and (texts[mask == 0] == 0).all()


def test_optimizer_groups_follow_the_authors_decay_rule(reference):
    optimizer = bench.make_optimizer(reference, "cpu")
    decayed, plain = ({id(p) for p in group["params"]} for group in optimizer.param_groups)
    assert optimizer.param_groups[0]["weight_decay"] == 0.1 and optimizer.param_groups[1]["weight_decay"] == 0
    assert id(reference.logit_scale) in plain and id(reference.visual.class_embedding) in plain
    assert id(reference.visual.conv1.weight) in decayed and id(reference.text_projection) in decayed
    assert id(reference.ln_final.weight) in plain
    assert id(reference.visual.transformer.resblocks[0].attn.in_proj_bias) in plain
    assert len(decayed) + len(plain) == len(list(reference.parameters()))
    assert optimizer.defaults["betas"] == (0.9, 0.98) and optimizer.defaults["eps"] == 1e-6


@pytest.mark.slow
def test_benchmark_runs_end_to_end_and_writes_every_row_and_ratio(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_training_step.py"), "--model_size",
                    "tiny", "--batch_size", "2", "--steps", "2", "--warmup", "1", "--threads", "1",
                    "--output_json", str(out)], check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    for key in ("reference", "ratio_degla_over_negclip_time", "ratio_negclip_over_reference_time",
                "ratio_degla_over_negclip_peak_memory", "ema_share_of_degla_step_time",
                "ratio_negclip_over_reference_cpu_time", "ratio_degla_over_negclip_cpu_time"):
        assert key in result, key
    assert result["reference"] == ("open_clip" if bench.open_clip_available() else "openai_clip")
    rows = result["rows"]
    assert set(rows) == {"negclip", "degla", "reference"}
    assert rows["negclip"]["parameters"] == rows["reference"]["parameters"] == rows["degla"]["parameters"]
    for name, row in rows.items():
        assert len(row["all_steps"]) == 2 and row["step_s"] > 0 and row["peak_memory_bytes"] > 0, name
        assert row["step_s"] == pytest.approx(row["forward_backward_s"] + row["optimizer_s"] + row["ema_s"])
        assert row["step_cpu_s"] > 0
    assert rows["degla"]["ema_s"] > 0 and rows["negclip"]["ema_s"] == 0
    assert result["ratio_degla_over_negclip_time"] == pytest.approx(rows["degla"]["step_s"]
                                                                    / rows["negclip"]["step_s"])


def test_training_transform_gives_the_per_image_numpy_pixels_bit_for_bit():
    """The batched transform (channels first on bytes, normalised in place) equals the per-image float32 numpy
    computation it replaced, for RGB, greyscale, RGBA and palette images, and leaves its inputs as they were."""
    import numpy as np
    from PIL import Image

    from degla.training.transforms import TrainImageTransform

    processor = bench_data_path.processor_224()
    transform = TrainImageTransform(processor.image_processor, "random_resized_crop", (0.9, 1.0), seed=5)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    images = [rgb, rgb.convert("L"), rgb.convert("RGBA"), rgb.convert("P"),
              Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))]
    before = [np.asarray(image).copy() for image in images]
    pixels = transform(images, [3, 4, 5, 6, 7])
    crops = np.stack([np.asarray(transform.crop(image.convert("RGB"), i), dtype=np.float32)
                      for image, i in zip(images, [3, 4, 5, 6, 7])])
    expected = torch.from_numpy(np.ascontiguousarray(((crops / 255.0 - transform.mean) / transform.std)
                                                     .transpose(0, 3, 1, 2)))
    assert pixels.dtype == torch.float32 and pixels.shape == (5, 3, 224, 224) and pixels.is_contiguous()
    assert torch.equal(pixels, expected)
    assert all(np.array_equal(np.asarray(image), b) for image, b in zip(images, before))


def test_data_path_benchmark_measures_every_stage_on_real_jpegs(tmp_path):
    out = tmp_path / "data.json"
    result = bench_data_path.main(["--seconds", "0.05", "--batch_size", "2", "--gpu_images_per_s", "500",
                                   "--output_json", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["jpeg_size"] == [640, 480] and len(result["photos"]) == 6
    rates = result["rates"]
    assert set(rates) == {"decode", "augment", "tokenize", "collate"}
    assert all(r["samples_per_s_per_core"] > 0 for r in rates.values())
    per_core = rates["collate"]["samples_per_s_per_core"]
    assert result["workers_needed"] == {"500.0": -(-500 // per_core)} and result["gpu_images_per_s_measured"]
