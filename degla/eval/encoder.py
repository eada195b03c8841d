"""Batched, de-duplicated, disk-cached CLIP feature extraction shared by every evaluation task.

Every task asks for the features of a list of images and a list of texts. `CLIPFeatureEncoder` encodes each
*unique* image and text once, in batches, L2-normalises them, and caches them on disk in a safetensors file
keyed by a fingerprint of the model (weights + preprocessing) and of the data (the image references with the
size and modification time of each file, or the texts), so that re-running a report is instant.

Inputs are prepared as OpenAI's CLIP and open_clip prepare them, the preprocessing behind every published
number: images through `OpenCLIPImageProcessor` (the checkpoint's processor settings with torchvision's centre
crop) and texts through `degla.text.clean_text` (ftfy, HTML unescaping, whitespace) before the tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import CLIPModel, CLIPProcessor

from ..atomic_io import write_file_atomic
from ..text import clean_text
from .image_processing import as_openclip_image_processor


@dataclass(frozen=True)
class ImageRef:
    """One image to encode: a file, optionally cropped to `box = (left, upper, right, lower)` in pixels."""

    path: str
    box: tuple[float, float, float, float] | None = None

    def key(self) -> str:
        return self.path if self.box is None else f"{self.path}|{','.join(f'{b:g}' for b in self.box)}"

    def load(self) -> Image.Image:
        try:
            image = Image.open(self.path).convert("RGB")
        except FileNotFoundError as err:
            raise FileNotFoundError(f"image not found: {self.path}") from err
        except OSError as err:
            raise OSError(f"cannot read image {self.path}: {err}") from err
        return image if self.box is None else image.crop(self.box)

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def stamp(self) -> list:
        """What the cache key records about the file: size and modification time."""
        st = os.stat(self.path)
        return [st.st_size, st.st_mtime_ns]


@dataclass(frozen=True, eq=False)
class DatasetImageRef(ImageRef):
    """An image held in a `datasets.Dataset` (hub source): `path` is a stable key such as `hf://id/split/17`."""

    dataset: object = None
    index: int = 0
    column: str = "image"
    fingerprint: str = ""

    def load(self) -> Image.Image:
        return self.dataset[self.index][self.column].convert("RGB")

    def exists(self) -> bool:
        return True

    def stamp(self) -> list:
        return [self.fingerprint]


@dataclass
class EncodingStats:
    """Counts for one task (over all its encoding calls).

    `images_unique` counts distinct images over the whole task; `images_encoded` those run through the model now;
    `images_from_cache` those read from the feature cache. `encoded_per_unique_image` =
    (encoded + from cache) / unique: 1.0 means each unique image went through the vision tower exactly once, in
    this run or in the run that filled the cache; above 1.0 would mean duplicate work.
    """

    images_requested: int = 0
    images_unique: int = 0
    images_encoded: int = 0
    images_from_cache: int = 0
    texts_requested: int = 0
    texts_unique: int = 0
    texts_encoded: int = 0
    texts_from_cache: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    _image_keys: set = field(default_factory=set, repr=False)
    _text_keys: set = field(default_factory=set, repr=False)

    def add(self, kind: str, requested: int, unique_keys: list[str], encoded: bool, cached: bool | None):
        keys = self._image_keys if kind == "images" else self._text_keys
        keys.update(unique_keys)
        setattr(self, f"{kind}_requested", getattr(self, f"{kind}_requested") + requested)
        setattr(self, f"{kind}_unique", len(keys))
        done = f"{kind}_encoded" if encoded else f"{kind}_from_cache"
        setattr(self, done, getattr(self, done) + len(unique_keys))
        if cached is not None:
            self.cache_hits += int(cached)
            self.cache_misses += int(not cached)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        done = self.images_encoded + self.images_from_cache
        d["encoded_per_unique_image"] = round(done / self.images_unique, 4) if self.images_unique else None
        return d


def _sha(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def model_fingerprint(model: torch.nn.Module, image_processor, tokenizer) -> str:
    """Hash of every parameter and buffer plus the preprocessing: changes whenever features could change."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    h.update(type(image_processor).__name__.encode())
    h.update(image_processor.to_json_string().encode())
    h.update(str(len(tokenizer)).encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()


@dataclass
class CLIPFeatureEncoder:
    """Wraps a `CLIPModel` and its `CLIPProcessor`; returns L2-normalised features as float32 CPU tensors.

    Args:
        model (`CLIPModel`): any CLIP checkpoint (put in eval mode here).
        processor (`CLIPProcessor`): its image processor + tokenizer. A CLIP image processor is used with
            torchvision's centre crop (`OpenCLIPImageProcessor`, the pixels of OpenAI's CLIP and open_clip);
            texts go through `degla.text.clean_text` before the tokenizer, as in open_clip.
        batch_size (`int`, default 64): images/texts per forward pass.
        cache_dir (`str`, optional): where features are cached; `None` disables the cache.
        num_workers (`int`, default 4): threads decoding/cropping images while the model runs.
        show_progress (`bool`, default True): tqdm bars.
    """

    model: CLIPModel
    processor: CLIPProcessor
    batch_size: int = 64
    cache_dir: str | None = None
    num_workers: int = 4
    show_progress: bool = True
    stats: dict[str, EncodingStats] = field(default_factory=dict)

    def __post_init__(self):
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.image_processor = as_openclip_image_processor(self.processor.image_processor)
        self.tokenizer = self.processor.tokenizer
        self._fingerprint = None

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, device: str | None = None, dtype=None, **kwargs):
        """Load any `CLIPModel` checkpoint (hub id or local folder) with its `CLIPProcessor` (safetensors only)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = CLIPModel.from_pretrained(model_name_or_path, use_safetensors=True, dtype=dtype)
        processor = CLIPProcessor.from_pretrained(model_name_or_path)
        return cls(model=model.to(device), processor=processor, **kwargs)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.image_processor, self.tokenizer)
        return self._fingerprint

    def _stats(self, task: str) -> EncodingStats:
        return self.stats.setdefault(task, EncodingStats())

    # ------------------------------------------------------------------ caching
    def _cached(self, kind: str, keys: list[str], data_id: str, compute) -> tuple[torch.Tensor, bool]:
        """(features of the unique `keys`, whether they came from the cache file for (model, kind, data))."""
        if self.cache_dir is None:
            return compute(), False
        path = os.path.join(self.cache_dir, self.fingerprint[:16], f"{kind}-{_sha(data_id)[:24]}.safetensors")
        if os.path.exists(path):
            feats = load_file(path)["features"]
            if feats.shape[0] == len(keys):
                return feats, True
        feats = compute()
        write_file_atomic(path, lambda tmp: save_file({"features": feats.contiguous()}, tmp,
                                                      metadata={"kind": kind, "count": str(len(keys))}))
        return feats, False

    # ------------------------------------------------------------------ public API
    def encode_images(self, refs: Sequence[ImageRef], task: str = "default") -> torch.Tensor:
        """Features [len(refs), D] in the order of `refs`; each unique reference is encoded at most once."""
        unique, index = _dedup([r.key() for r in refs])
        by_key = {r.key(): r for r in refs}
        unique_refs = [by_key[k] for k in unique]
        for r in unique_refs:  # fail early, naming the file, before any model work
            if not r.exists():
                raise FileNotFoundError(f"[{task}] image not found: {r.path} (check the image folder option of this "
                                        "task, see scripts/evaluate.py --help)")
        data_id = json.dumps([[r.key(), *r.stamp()] for r in unique_refs])
        feats, from_cache = self._cached(
            "images", unique, data_id, lambda: self._encode_image_batches(unique_refs, desc=f"{task}: images"))
        self._stats(task).add("images", len(refs), unique, encoded=not from_cache,
                              cached=from_cache if self.cache_dir else None)
        return feats[torch.as_tensor(index, dtype=torch.long)] if len(refs) else feats

    def encode_texts(self, texts: Sequence[str], task: str = "default") -> torch.Tensor:
        """Features [len(texts), D] in the order of `texts`; each unique text (after `clean_text`) is encoded at
        most once, so identical texts get identical features."""
        unique, index = _dedup([clean_text(t) for t in texts])
        feats, from_cache = self._cached(
            "texts", unique, json.dumps(unique), lambda: self._encode_text_batches(unique, desc=f"{task}: texts"))
        self._stats(task).add("texts", len(texts), unique, encoded=not from_cache,
                              cached=from_cache if self.cache_dir else None)
        return feats[torch.as_tensor(index, dtype=torch.long)] if len(texts) else feats

    # ------------------------------------------------------------------ model calls
    @torch.no_grad()
    def _encode_image_batches(self, refs: list[ImageRef], desc: str) -> torch.Tensor:
        out = []
        batches = [refs[i : i + self.batch_size] for i in range(0, len(refs), self.batch_size)]
        # `loader` decodes/crops the images of a batch in parallel; `prefetch` prepares batch i+1 during batch i
        with ThreadPoolExecutor(max(1, self.num_workers)) as loader, ThreadPoolExecutor(1) as prefetch:
            load_batch = lambda batch: list(loader.map(lambda ref: ref.load(), batch))  # noqa: E731
            pending = prefetch.submit(load_batch, batches[0]) if batches else None
            for i in tqdm(range(len(batches)), desc=desc, disable=not self.show_progress, unit="batch"):
                images = pending.result()
                if i + 1 < len(batches):
                    pending = prefetch.submit(load_batch, batches[i + 1])
                pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
                pixels = pixels.to(self.device, dtype=self.model.dtype)
                out.append(_normalise(self.model.get_image_features(pixel_values=pixels)))
        return torch.cat(out) if out else torch.zeros(0, self.model.config.projection_dim)

    @torch.no_grad()
    def _encode_text_batches(self, texts: list[str], desc: str) -> torch.Tensor:
        out = []
        max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        for i in tqdm(range(0, len(texts), self.batch_size), desc=desc, disable=not self.show_progress, unit="batch"):
            batch = self.tokenizer(  # `texts` are already cleaned (encode_texts)
                texts[i : i + self.batch_size], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
            ).to(self.device)
            out.append(_normalise(self.model.get_text_features(**batch)))
        return torch.cat(out) if out else torch.zeros(0, self.model.config.projection_dim)


def _normalise(output) -> torch.Tensor:
    """transformers 5 returns an output object (embeddings in `.pooler_output`); 4.x returns the tensor."""
    feats = output if isinstance(output, torch.Tensor) else output.pooler_output
    return F.normalize(feats.float(), dim=-1).cpu()


def _dedup(keys: list[str]) -> tuple[list[str], list[int]]:
    """Unique keys in first-seen order, and for every input key its position among them."""
    position: dict[str, int] = {}
    index = [position.setdefault(k, len(position)) for k in keys]
    return list(position), index
