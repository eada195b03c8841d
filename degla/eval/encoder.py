"""Batched, de-duplicated, disk-cached feature extraction for any dual encoder, shared by every evaluation task.

Every task asks for the features of a list of images and a list of texts. `FeatureEncoder` encodes each
*unique* image and text once, in batches, L2-normalises them, and caches them on disk in a safetensors file
keyed by a fingerprint of the model (weights, family and preprocessing) and of the data (the image references
with the size and modification time of each file, or the texts), so that re-running a report is instant.

Any model with `get_image_features` and `get_text_features` loads through `AutoModel` / `AutoProcessor`
(`CLIPModel`, `SiglipModel`, `Siglip2Model`, `AlignModel`, ...). Inputs are prepared as each family's authors
prepare them (`degla.families`): a CLIP checkpoint's images through `OpenCLIPImageProcessor` (torchvision's
centre crop, the pixels behind every published CLIP number) and its texts through `degla.text.clean_text` (ftfy,
HTML unescaping, whitespace); SigLIP's texts lower-cased, padded to 64 tokens and encoded without an attention
mask as big_vision does; every other family's images through the checkpoint's own image processor, all of whose
outputs (e.g. SigLIP 2 NaFlex's `pixel_attention_mask` and `spatial_shapes`) reach `get_image_features`.
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
from transformers import AutoConfig, AutoModel, AutoProcessor

from ..atomic_io import write_file_atomic
from ..errors import InputError
from ..families import Family, family_of
from .image_processing import as_openclip_image_processor

DUAL_ENCODER_INTERFACE = ("get_image_features", "get_text_features")
KNOWN_DUAL_ENCODERS = "CLIPModel, SiglipModel, Siglip2Model, AlignModel"


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
    `images_from_cache` those read from the feature cache; `images_shared` those an earlier task of the same run
    (the same encoder) had already encoded or read, taken from memory. `encoded_per_unique_image` =
    (encoded + from cache + shared) / unique: 1.0 means each unique image went through the vision tower exactly
    once, in this run or in the run that filled the cache; above 1.0 would mean duplicate work.
    """

    images_requested: int = 0
    images_unique: int = 0
    images_encoded: int = 0
    images_from_cache: int = 0
    images_shared: int = 0
    texts_requested: int = 0
    texts_unique: int = 0
    texts_encoded: int = 0
    texts_from_cache: int = 0
    texts_shared: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    _image_keys: set = field(default_factory=set, repr=False)
    _text_keys: set = field(default_factory=set, repr=False)

    def add(self, kind: str, requested: int, unique_keys: list[str], encoded: bool, cached: bool | None,
            shared_keys: list[str] = ()):
        """`unique_keys` of one call, of which `shared_keys` came from memory (an earlier call of this encoder);
        the others were encoded now (`encoded`) or read from the cache file."""
        keys = self._image_keys if kind == "images" else self._text_keys
        shared = set(shared_keys)
        new_shared = len(shared - keys)  # a key this task already counted is not counted again
        keys.update(unique_keys)
        setattr(self, f"{kind}_requested", getattr(self, f"{kind}_requested") + requested)
        setattr(self, f"{kind}_unique", len(keys))
        done = f"{kind}_encoded" if encoded else f"{kind}_from_cache"
        setattr(self, done, getattr(self, done) + len(unique_keys) - len(shared))
        setattr(self, f"{kind}_shared", getattr(self, f"{kind}_shared") + new_shared)
        if cached is not None:
            self.cache_hits += int(cached)
            self.cache_misses += int(not cached)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        done = self.images_encoded + self.images_from_cache + self.images_shared
        d["encoded_per_unique_image"] = round(done / self.images_unique, 4) if self.images_unique else None
        return d


def _sha(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def model_fingerprint(model: torch.nn.Module, image_processor, tokenizer, family: Family | None = None) -> str:
    """Hash of the model class, every parameter and buffer, and the preprocessing (image processor settings,
    tokenizer, the family's text recipe): changes whenever features could change, so two families (or one model
    under two preprocessings) never share cached features."""
    h = hashlib.sha256()
    h.update(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    h.update(type(image_processor).__name__.encode())
    h.update(image_processor.to_json_string().encode())
    h.update(str(len(tokenizer)).encode())
    h.update(type(tokenizer).__name__.encode())
    h.update(json.dumps({"do_lower_case": getattr(tokenizer, "do_lower_case", None),
                         "padding_side": getattr(tokenizer, "padding_side", None),
                         "family": (family or family_of(model)).describe()}, sort_keys=True).encode())
    return h.hexdigest()


@dataclass
class FeatureEncoder:
    """Wraps a dual encoder and its processor; returns L2-normalised features as float32 CPU tensors.

    Args:
        model: any model with `get_image_features` and `get_text_features` (`CLIPModel`, `SiglipModel`,
            `Siglip2Model`, `AlignModel`, ...; put in eval mode here).
        processor: its processor (an object with `.image_processor` and `.tokenizer`, as `AutoProcessor` loads).
            Inputs are prepared as the model family's authors prepare them (`degla.families`): a CLIP image
            processor with torchvision's centre crop (`OpenCLIPImageProcessor`) and open_clip's text cleaning for
            CLIP; lower-cased texts padded to the text tower's length without an attention mask for SigLIP and
            SigLIP 2; the checkpoint's own image processor for every other family.
        batch_size (`int`, default 64): images/texts per forward pass.
        cache_dir (`str`, optional): where features are cached; `None` disables the cache.
        num_workers (`int`, default 4): threads decoding/cropping images while the model runs.
        show_progress (`bool`, default True): tqdm bars.
    """

    model: torch.nn.Module
    processor: object
    batch_size: int = 64
    cache_dir: str | None = None
    num_workers: int = 4
    show_progress: bool = True
    stats: dict[str, EncodingStats] = field(default_factory=dict)

    def __post_init__(self):
        check_dual_encoder(type(self.model), getattr(self.model, "name_or_path", "") or type(self.model).__name__)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.family = family_of(self.model)
        image_processor = getattr(self.processor, "image_processor", None)
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if image_processor is None or self.tokenizer is None:
            missing = " and ".join(n for n, v in (("image processor", image_processor),
                                                   ("tokenizer", self.tokenizer)) if v is None)
            raise InputError(f"the processor of {getattr(self.model, 'name_or_path', '') or 'the model'} lacks its "
                             f"{missing}: save the checkpoint with its processor (processor.save_pretrained)")
        self.image_processor = (as_openclip_image_processor(image_processor) if self.family.image == "openclip"
                                else image_processor)
        self._fingerprint = None
        self._memo: dict[str, dict] = {}  # kind -> {image key with its file's stamp, or text: feature}

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, device: str | None = None, dtype=None,
                        trust_remote_code: bool = False, **kwargs):
        """Load any dual encoder (hub id or local folder) through `AutoModel` with its `AutoProcessor`
        (safetensors only). A model without `get_image_features` / `get_text_features` is an `InputError` naming
        it, raised before its weights are read. `trust_remote_code` stays off unless asked for."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:  # an OSError (offline, a mistyped id) is left to the caller (degla.hub.model_loading names the option)
            config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
        except ValueError as err:
            raise InputError(f"--model_name_or_path {model_name_or_path}: cannot load a model config "
                             f"({' '.join(str(err).split())})") from err
        model_class = _auto_model_class(config)
        if model_class is not None:  # known before loading: refuse early
            check_dual_encoder(model_class, model_name_or_path)
        model = AutoModel.from_pretrained(model_name_or_path, use_safetensors=True, dtype=dtype,
                                          trust_remote_code=trust_remote_code)
        check_dual_encoder(type(model), model_name_or_path)
        try:
            processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
        except (ImportError, OSError, ValueError) as err:  # e.g. SiglipTokenizer without sentencepiece / protobuf
            reason = " ".join(str(err).split())
            hint = ("; a SigLIP tokenizer needs `pip install 'degla[siglip]'` (sentencepiece, protobuf)"
                    if isinstance(err, ImportError) or "sentencepiece" in reason.lower() or "protobuf" in reason.lower()
                    else "; save the checkpoint with its processor (processor.save_pretrained)")
            raise InputError(f"--model_name_or_path {model_name_or_path}: cannot load its processor ({reason})"
                             + hint) from err
        return cls(model=model.to(device), processor=processor, **kwargs)

    def describe(self) -> dict:
        """The family and preprocessing this encoder applies (run_info.json, report)."""
        return {**self.family.describe(), "model_class": type(self.model).__name__,
                "image_processor": type(self.image_processor).__name__, "tokenizer": type(self.tokenizer).__name__,
                "text_max_length": self._text_max_length()}

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.image_processor, self.tokenizer, self.family)
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
    def _features(self, kind: str, task: str, requested: int, unique: list[str], memo_keys: list, data_id: str,
                  compute) -> torch.Tensor:
        """Features of the `unique` keys: from the disk cache file of this list (`data_id`) when there is one, else
        those an earlier call of this encoder already holds (`memo_keys`; e.g. another task of the suite sharing
        COCO or VG images) from memory and the others through `compute(missing positions)`; all kept in memory."""
        memo = self._memo.setdefault(kind, {})
        missing = [i for i, k in enumerate(memo_keys) if k not in memo]

        def assemble() -> torch.Tensor:
            new = compute(missing) if missing or not unique else None
            for i, f in zip(missing, new if new is not None else []):
                memo[memo_keys[i]] = f
            return torch.stack([memo[k] for k in memo_keys]) if unique else new

        feats, from_cache = self._cached(kind, unique, data_id, assemble)
        for k, f in zip(memo_keys, feats):
            memo.setdefault(k, f)
        shared = [] if from_cache else [unique[i] for i in sorted(set(range(len(unique))) - set(missing))]
        self._stats(task).add(kind, requested, unique, encoded=not from_cache,
                              cached=from_cache if self.cache_dir else None, shared_keys=shared)
        return feats

    def encode_images(self, refs: Sequence[ImageRef], task: str = "default") -> torch.Tensor:
        """Features [len(refs), D] in the order of `refs`; each unique reference is encoded at most once, in this
        call or in an earlier call of this encoder (for the same file size and modification time)."""
        unique, index = _dedup([r.key() for r in refs])
        by_key = {r.key(): r for r in refs}
        unique_refs = [by_key[k] for k in unique]
        for r in unique_refs:  # fail early, naming the file, before any model work
            if not r.exists():
                raise FileNotFoundError(f"[{task}] image not found: {r.path} (check the image folder option of this "
                                        "task, see scripts/evaluate.py --help)")
        stamps = [[r.key(), *r.stamp()] for r in unique_refs]
        feats = self._features(
            "images", task, len(refs), unique, [json.dumps(s) for s in stamps], json.dumps(stamps),
            lambda missing: self._encode_image_batches([unique_refs[i] for i in missing], desc=f"{task}: images"))
        return feats[torch.as_tensor(index, dtype=torch.long)] if len(refs) else feats

    def prepare_text(self, text: str) -> str:
        """The text as the family's tokenizer receives it (`clean_text` for CLIP, lower-cased for SigLIP)."""
        return self.family.prepare_text(text)

    def encode_texts(self, texts: Sequence[str], task: str = "default") -> torch.Tensor:
        """Features [len(texts), D] in the order of `texts`; each unique text (after `prepare_text`) is encoded at
        most once (in this call or an earlier one of this encoder), so identical texts get identical features."""
        unique, index = _dedup([self.prepare_text(t) for t in texts])
        feats = self._features(
            "texts", task, len(texts), unique, unique, json.dumps(unique),
            lambda missing: self._encode_text_batches([unique[i] for i in missing], desc=f"{task}: texts"))
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
                out.append(_normalise(self.model.get_image_features(**self.image_inputs(images))))
        return torch.cat(out) if out else torch.zeros(0, self._feature_dim())

    def image_inputs(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        """`get_image_features` inputs for PIL images: every output of the image processor (pixel values, and
        e.g. NaFlex's `pixel_attention_mask` / `spatial_shapes`) on the model's device, floats in its dtype."""
        batch = self.image_processor(images=images, return_tensors="pt")
        return {k: v.to(self.device, dtype=self.model.dtype) if v.is_floating_point() else v.to(self.device)
                for k, v in batch.items() if isinstance(v, torch.Tensor)}

    def text_inputs(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """`get_text_features` inputs for texts already through `prepare_text`, per the family's `TextRecipe`."""
        batch = self.family.tokenize(self.tokenizer, texts, self._text_max_length())
        return {k: v.to(self.device) for k, v in batch.items()}

    def _text_max_length(self) -> int:
        """The family's token limit, or the text tower's position count (77 for CLIP, 64 for SigLIP)."""
        return self.family.text_max_length(self.model.config, self.tokenizer)

    def _feature_dim(self) -> int:
        config = self.model.config
        text_config = getattr(config, "text_config", config)
        for value in (getattr(config, "projection_dim", None), getattr(text_config, "projection_size", None),
                      getattr(text_config, "hidden_size", None)):
            if value:
                return int(value)
        return 0

    @torch.no_grad()
    def _encode_text_batches(self, texts: list[str], desc: str) -> torch.Tensor:
        out = []
        for i in tqdm(range(0, len(texts), self.batch_size), desc=desc, disable=not self.show_progress, unit="batch"):
            # `texts` are already prepared (encode_texts)
            out.append(_normalise(self.model.get_text_features(**self.text_inputs(texts[i : i + self.batch_size]))))
        return torch.cat(out) if out else torch.zeros(0, self._feature_dim())


# The former name, from when only CLIPModel loaded.
CLIPFeatureEncoder = FeatureEncoder


def _auto_model_class(config):
    """The class `AutoModel` would build for `config`, or `None` when that needs the model itself (remote code)."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        return MODEL_MAPPING[type(config)]
    except (KeyError, ValueError):
        return None


def check_dual_encoder(model_class: type, name: str):
    """`InputError` naming the model unless its class has `get_image_features` and `get_text_features`."""
    missing = [m for m in DUAL_ENCODER_INTERFACE if not callable(getattr(model_class, m, None))]
    if missing:
        raise InputError(f"--model_name_or_path {name}: {model_class.__name__} is not a dual encoder (no "
                         f"{' / '.join(missing)}); the evaluation needs a model with get_image_features and "
                         f"get_text_features, such as {KNOWN_DUAL_ENCODERS}")


def _normalise(output) -> torch.Tensor:
    """The one place a model's feature output is read: transformers 5 returns an output object whose
    `.pooler_output` holds the projected embedding for CLIP, SigLIP, SigLIP 2 and ALIGN (image and text); 4.x
    returns the tensor itself."""
    if isinstance(output, torch.Tensor):
        feats = output
    elif getattr(output, "pooler_output", None) is not None:
        feats = output.pooler_output
    else:
        raise TypeError(f"get_*_features returned {type(output).__name__} without a pooler_output tensor")
    return F.normalize(feats.float(), dim=-1).cpu()


def _dedup(keys: list[str]) -> tuple[list[str], list[int]]:
    """Unique keys in first-seen order, and for every input key its position among them."""
    position: dict[str, int] = {}
    index = [position.setdefault(k, len(position)) for k in keys]
    return list(position), index
