"""Helpers shared by the tests/test_eval_*.py files: a tiny CLIP checkpoint on disk, placeholder images, and
an encoder whose similarities the test controls."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
import torch
from PIL import Image

from degla.eval.encoder import EncodingStats


def placeholder_image(path: str, seed: int = 0, size: tuple[int, int] = (48, 40)) -> str:
    """A small random RGB PNG/JPEG at `path` (folders created)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


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
