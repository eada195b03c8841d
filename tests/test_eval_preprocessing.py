"""The evaluation encoder prepares inputs as OpenAI's CLIP / open_clip do: pixels against torchvision's transform
(written out in eval_helpers; benchmarks/parity/run_parity.py checks it against the real torchvision) on real photos of
every shape, and texts against OpenAI's reference tokenizer."""

import json
import os

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessorPil
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from degla.conversion import openai_clip_processor
from degla.eval import CLIPFeatureEncoder, OpenCLIPImageProcessor
from degla.text import clean_text

from eval_helpers import openai_simple_tokenizer, real_photos, save_tiny_clip, torchvision_clip_pixels

SIZE = 224
TOLERANCE = 1 / 255  # issue 12: equal to open_clip's pixels within 1/255 (measured: bit-equal)


@pytest.fixture(scope="module")
def photos():
    pytest.importorskip("skimage", reason="the real photos come from scikit-image (pip install -e '.[dev]')")
    return real_photos()


def _intensity_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference in [0, 1] intensity units between two normalised [3, H, W] images."""
    std = np.asarray(OPENAI_CLIP_STD, dtype=np.float64)[:, None, None]
    return float((np.abs(a.astype(np.float64) - b.astype(np.float64)) * std).max())


def test_photos_cover_every_shape(photos):
    shapes = {name: image.size for name, image in photos.items()}
    assert len(shapes) >= 10
    assert any(w > h for w, h in shapes.values()) and any(w < h for w, h in shapes.values())
    assert any(w == h for w, h in shapes.values()) and any(min(w, h) < SIZE for w, h in shapes.values())
    assert shapes["rocket"] == (640, 427) and any(image.mode == "L" for image in photos.values())


def test_exported_processor_pixels_equal_openai_transform(photos):
    """What the harness feeds the model for a converted checkpoint: the saved processor config read by
    `OpenCLIPImageProcessor`, on every photo."""
    processor = OpenCLIPImageProcessor.from_dict(openai_clip_processor(SIZE).image_processor.to_dict())
    for name, image in photos.items():
        ours = processor(images=image.convert("RGB"), return_tensors="np")["pixel_values"][0]
        reference = torchvision_clip_pixels(image, SIZE, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)
        assert ours.shape == reference.shape == (3, SIZE, SIZE)
        assert _intensity_diff(ours, reference) <= TOLERANCE, name
        np.testing.assert_array_equal(ours, reference, err_msg=name)  # in fact bit-equal


def test_stock_transformers_crop_is_one_pixel_off(photos):
    """Why `OpenCLIPImageProcessor` exists: transformers' crop starts at (335 - 224) // 2 = 55 where torchvision's
    starts at round(55.5) = 56 for the 427x640 photo; photos whose margin is even agree."""
    stock = CLIPImageProcessorPil(**openai_clip_processor(SIZE).image_processor.to_dict())
    pixels = {name: stock(images=photos[name].convert("RGB"), return_tensors="np")["pixel_values"][0]
              for name in ("rocket", "astronaut")}
    reference = {n: torchvision_clip_pixels(photos[n], SIZE, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD) for n in pixels}
    assert _intensity_diff(pixels["rocket"], reference["rocket"]) > 0.1
    assert _intensity_diff(pixels["astronaut"], reference["astronaut"]) == 0


def test_crop_larger_than_image_pads_like_torchvision():
    """A crop larger than the resized image (a processor whose `size` is below its `crop_size`) is zero-padded,
    the odd pixel after the image, as torchvision pads."""
    processor = OpenCLIPImageProcessor(size={"height": 3, "width": 4}, crop_size={"height": 6, "width": 5},
                                       do_normalize=False, do_rescale=False, do_resize=False)
    image = np.arange(1, 13, dtype=np.float32).reshape(1, 3, 4)
    out = processor.center_crop(image, processor.crop_size)
    expected = np.zeros((1, 6, 5), dtype=np.float32)
    expected[:, 1:4, 0:4] = image  # torchvision: top (6 - 3) // 2 = 1, left (5 - 4) // 2 = 0, then crop at 0
    np.testing.assert_array_equal(out, expected)


def test_saved_config_stays_a_plain_clip_image_processor(tmp_path):
    OpenCLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "CLIPImageProcessor"


# ---------------------------------------------------------------------------------------------- texts
EDGE_CASES = [
    "“A dog” on a ‘red’ sofa", "a dog&amp;a cat", "fish &amp;amp; chips", "a caf&eacute; in Paris", "CafÃ© crème",
    "ﬁsh in a ﬂask", "ＣＬＩＰ  model", "a\tman\n riding   a horse ", "\u00a0two\u2003cats\u200a", "don’t stop",
    "Crème brûlée, naïve façade", "a 10\u00bd year old child", "the man’s hat", "&lt;b&gt;bold&lt;/b&gt; text",
]


def _benchmark_texts(sugarcrepe_dir, valse_dir) -> list[str]:
    texts = []
    for folder, fields in ((sugarcrepe_dir, ("caption", "negative_caption")), (valse_dir, ("caption", "foil"))):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".json"):
                for record in json.load(open(os.path.join(folder, name))).values():
                    texts += [record[f] for f in fields if isinstance(record[f], str)]
    return texts


def test_clean_text_then_clip_tokenizer_equals_openai_tokenizer(sugarcrepe_dir, valse_dir):
    reference = openai_simple_tokenizer()
    tokenizer = openai_clip_processor(SIZE).tokenizer
    texts = _benchmark_texts(sugarcrepe_dir, valse_dir) + EDGE_CASES
    assert len(texts) > 15_000
    ours = tokenizer([clean_text(t) for t in texts], add_special_tokens=False)["input_ids"]
    raw = tokenizer(texts, add_special_tokens=False)["input_ids"]
    expected = [reference.encode(t) for t in texts]
    mismatches = [t for t, a, b in zip(texts, ours, expected) if a != b]
    assert not mismatches, mismatches[:5]
    # without the cleaning the tokenizer disagrees with OpenAI's on the edge cases (and on a few benchmark texts)
    raw_mismatches = {t for t, a, b in zip(texts, raw, expected) if a != b}
    assert len(raw_mismatches & set(EDGE_CASES)) >= 8


def test_encoder_cleans_texts_before_tokenizing_and_deduplicating(tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    path = save_tiny_clip(str(tmp_path / "tiny"))
    encoder = CLIPFeatureEncoder(CLIPModel.from_pretrained(path), CLIPProcessor.from_pretrained(path),
                                 show_progress=False)
    feats = encoder.encode_texts(["“a dog”  on a sofa", '"a dog" on a sofa', "a caf&eacute;", "a café"], task="t")
    assert torch.equal(feats[0], feats[1]) and torch.equal(feats[2], feats[3])
    assert encoder.stats["t"].texts_encoded == 2
