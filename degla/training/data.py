"""From a loaded negatives dataset (`formats.py`) to model inputs: K negative slots, image checks, collation.

The schema is `degla.schema`'s: `caption`, an image reference (`image` or `image_path`) and negatives, as one
column per rule (`neg_<rule>`, our generation), an ordered list (`slot_negatives`, the authors' DeGLA.json:
negative i fills slot i) or an unordered pool (`negative_pool`, NegCLIP's TSV).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset
from PIL import Image

from ..families import FAMILIES, Family
from ..schema import (CAPTION, IMAGE, IMAGE_PATH, LIST_COLUMNS, NEGATIVE_COLUMNS, NEGATIVE_POOL, RULES, SLOT_NEGATIVES,
                      neg_column)
from .formats import TrainDataError

logger = logging.getLogger(__name__)

# K = 4 slots from the five rules: the two swap rules share a slot (the paper merges two subtypes without saying
# which). Each slot takes one valid negative of one of its rules, chosen at random (seeded) when several exist.
DEFAULT_NEGATIVE_SLOTS = "reshuffle;swap_nouns,swap_adjectives;replace_adjectives;replace_nouns"
FILL_POLICIES = ("fill", "drop")
NEGATIVES = "negatives"  # the K chosen negatives of a row (added by `assign_negative_slots`)
INDEX = "index"  # the row's position in the training set (seeds its image augmentation)
COLLATOR_COLUMNS = (CAPTION, IMAGE, IMAGE_PATH, NEGATIVES, INDEX)  # what `DeGLACollator` reads from a row


def parse_negative_slots(spec: str) -> tuple[tuple[str, ...], ...]:
    """`"reshuffle;swap_nouns,swap_adjectives;..."` → one tuple of rules per slot (`;` separates slots)."""
    slots = tuple(tuple(r.strip() for r in slot.split(",") if r.strip()) for slot in spec.split(";"))
    unknown = sorted({r for slot in slots for r in slot} - set(RULES))
    if unknown or not all(slots):
        raise ValueError(f"negative slot spec {spec!r}: unknown rules {unknown} or an empty slot; "
                         f"use ';'-separated slots of ','-separated rules from {RULES}")
    return slots


@dataclass
class NegativeStats:
    """How the K negatives of every caption were obtained (nothing is dropped or ignored silently)."""

    rows: int = 0
    rows_dropped: int = 0
    sources: Counter = field(default_factory=Counter)  # "rule" | "other_rule" | "other_caption" → slot count
    ignored: int = 0  # released negatives beyond the K slots (DeGLA.json records with more than K)

    def summary(self) -> str:
        total = sum(self.sources.values()) or 1
        parts = ", ".join(f"{k}={v} ({100 * v / total:.1f}%)" for k, v in sorted(self.sources.items())) or "none"
        extra = f"; {self.ignored} released negatives beyond K ignored" if self.ignored else ""
        return f"{self.rows} captions, {self.rows_dropped} dropped; negative slots: {parts}{extra}"


def _valid(text) -> bool:
    return isinstance(text, str) and bool(text.strip())


def _own_negatives(row: dict, slots, k: int, rng: np.random.Generator) -> tuple[list[str], list[str], list[str]]:
    """(chosen, their sources, the row's other valid negatives) from the row's own columns."""
    if NEGATIVE_POOL in row:  # NegCLIP: one untyped pool per caption
        own = [n for n in row[NEGATIVE_POOL] if _valid(n)]
        rng.shuffle(own)
        return own[:k], ["rule"] * min(k, len(own)), own[k:]
    chosen, sources = [], []
    if SLOT_NEGATIVES in row:  # the authors' release: negative i is slot i
        for negative in row[SLOT_NEGATIVES][:k]:
            if _valid(negative):
                chosen.append(negative)
                sources.append("rule")
        return chosen, sources, []
    for slot in slots[:k]:
        candidates = [row[neg_column(r)] for r in slot if _valid(row.get(neg_column(r)))]
        if candidates:
            chosen.append(candidates[rng.integers(len(candidates))])
            sources.append("rule")
    others = [row[c] for c in NEGATIVE_COLUMNS if _valid(row.get(c)) and row[c] not in chosen]
    rng.shuffle(others)
    return chosen, sources, others


def _pick_negatives(row: dict, slots, k: int, rng: np.random.Generator, pool: list[str]):
    """K negatives for one caption and where each came from: its slots, then its other rules, then other captions
    (`pool` is empty under the drop policy)."""
    chosen, sources, others = _own_negatives(row, slots, k, rng)
    for negative in others[: k - len(chosen)]:
        chosen.append(negative)
        sources.append("other_rule")
    if pool:
        own_texts = {row[CAPTION], *others, *chosen}
        for _ in range(16 * k):  # other captions' negatives; re-draw the (rare) ones that are this caption's own
            if len(chosen) == k:
                break
            negative = pool[rng.integers(len(pool))]
            if negative not in own_texts:
                chosen.append(negative)
                sources.append("other_caption")
    return chosen, sources


def _negative_columns(dataset: Dataset) -> list[str]:
    return [c for c in (*NEGATIVE_COLUMNS, *LIST_COLUMNS) if c in dataset.column_names]


def assign_negative_slots(dataset: Dataset, num_negatives: int, slots: str = DEFAULT_NEGATIVE_SLOTS,
                          policy: str = "fill", seed: int = 0) -> tuple[Dataset, NegativeStats]:
    """Add a `negatives` column of exactly K strings per caption (and the row `index`).

    With rule columns, slot i takes a valid negative of one of its rules (K below the number of slots: the first
    K slots). With the authors' ordered list, slot i takes its i-th negative (those beyond K are counted as
    ignored). A slot left empty is filled (`policy="fill"`) first from the caption's unused negatives of other
    rules, then from a random negative of another caption of the same 1,000-row block; `policy="drop"` drops
    captions that cannot fill all K slots from their own negatives. K = 0 trains without negatives.
    Deterministic for a given seed; returns the counts of every source.
    """
    if policy not in FILL_POLICIES:
        raise ValueError(f"missing-negative policy must be one of {FILL_POLICIES}, got {policy!r}")
    slot_rules = parse_negative_slots(slots)
    columns = _negative_columns(dataset)
    stats = NegativeStats(rows=len(dataset))
    if num_negatives == 0:
        return dataset.add_column(NEGATIVES, [[]] * len(dataset)).add_column(INDEX, np.arange(len(dataset))), stats
    if num_negatives > len(slot_rules) and not set(columns) & {SLOT_NEGATIVES, NEGATIVE_POOL}:
        logger.warning("num_negatives=%d > %d slots: extra negatives come from other rules/captions",
                       num_negatives, len(slot_rules))

    def pick(batch: dict, indices: list[int]) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        pool = [n for row in rows for c in columns
                for n in (row[c] if isinstance(row[c], list) else [row[c]]) if _valid(n)]
        negatives, sources, ignored = [], [], []
        for row, index in zip(rows, indices):
            rng = np.random.default_rng([seed, index])
            chosen, src = _pick_negatives(row, slot_rules, num_negatives, rng, [] if policy == "drop" else pool)
            negatives.append(chosen)
            sources.append(src)
            ignored.append(max(0, len(row.get(SLOT_NEGATIVES) or []) - num_negatives))
        return {NEGATIVES: negatives, "negative_sources": sources, "ignored": ignored}

    picked = dataset.select_columns([CAPTION, *columns]).map(
        pick, batched=True, batch_size=1000, with_indices=True, remove_columns=[CAPTION, *columns],
        desc="Assigning negative slots")
    for src in picked["negative_sources"]:
        stats.sources.update(src)
    stats.ignored = int(np.sum(picked["ignored"]))
    complete = np.array([len(n) == num_negatives for n in picked[NEGATIVES]])
    if not stats.sources:
        raise TrainDataError(f"no negative captions at all in the training data (every one of {columns} is empty): "
                             "generate negatives (scripts/generate_negatives.py) or train without them "
                             "(--num_negatives 0)")
    dataset = dataset.add_column(NEGATIVES, picked[NEGATIVES])
    if not complete.all():
        stats.rows_dropped = int((~complete).sum())
        dataset = dataset.select(np.flatnonzero(complete))
    if len(dataset) == 0:
        raise TrainDataError(f"every caption was dropped ({stats.summary()}): with --missing_negative_policy drop "
                             "a caption needs K valid negatives of its own; use fill, or a smaller --num_negatives")
    return dataset.add_column(INDEX, np.arange(len(dataset))), stats


# -- images ----------------------------------------------------------------------------------------------------
def open_image(row: dict, image_root: str | None) -> Image.Image:
    """The row's image, fully decoded (a truncated file fails here, not halfway through a batch)."""
    image = row.get(IMAGE)
    if image is None:
        image = Image.open(os.path.join(image_root or "", row[IMAGE_PATH]))
    image.load()
    return image


def describe_image(row: dict, index: int, image_root: str | None) -> str:
    if row.get(IMAGE_PATH) is not None and row.get(IMAGE) is None:
        return f"row {index}: image {os.path.join(image_root or '', row[IMAGE_PATH])!r}"
    return f"row {index}: embedded image"


def _image_error(dataset: Dataset, index: int, image_root: str | None) -> str | None:
    """None if the row's image decodes in full, else a message naming the row and the file."""
    try:
        open_image(dataset[int(index)], image_root).close()
        return None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        if IMAGE in dataset.column_names:
            where = f"row {index}: embedded image"
        else:
            where = describe_image(dataset.select_columns([IMAGE_PATH])[int(index)], index, image_root)
        return f"{where} is missing, truncated or unreadable ({err.__class__.__name__}: {err})"


def check_images(dataset: Dataset, image_root: str | None, skip_bad_images: bool = False,
                 indices: list[int] | None = None, num_threads: int | None = None) -> tuple[list[int], list[str]]:
    """Decode every image (of `indices`, default all rows) in full, in threads; returns (bad rows, messages).

    Rows sharing an image file are checked once. Raises on the first bad row unless `skip_bad_images`.
    """
    indices = range(len(dataset)) if indices is None else indices
    if IMAGE_PATH in dataset.column_names and IMAGE not in dataset.column_names:
        paths = dataset.select_columns([IMAGE_PATH])[list(indices)][IMAGE_PATH]
        first_of: dict[str, int] = {}
        for index, path in zip(indices, paths):
            first_of.setdefault(path, index)
        to_check = list(first_of.values())
    else:
        paths, to_check = None, list(indices)
    with ThreadPoolExecutor(num_threads or min(16, (os.cpu_count() or 1) + 2)) as pool:
        errors = dict(zip(to_check, pool.map(lambda i: _image_error(dataset, i, image_root), to_check)))
    if paths is not None:  # every row of a bad file is bad
        bad_files = {path for path, i in first_of.items() if errors[i]}
        bad = [i for i, path in zip(indices, paths) if path in bad_files]
        messages = {i: errors[first_of[path]] for i, path in zip(indices, paths) if path in bad_files}
    else:
        bad = [i for i in to_check if errors[i]]
        messages = {i: errors[i] for i in bad}
    if bad and not skip_bad_images:
        raise bad_images_error([messages[i] for i in bad])
    return bad, [messages[i] for i in bad]


def bad_images_error(messages: list[str]) -> TrainDataError:
    """The error for rows with bad images (`messages` in row order): the first one, the fix and the count."""
    return TrainDataError(f"{messages[0]}; check --image_root, or pass --skip_bad_images to skip and count such rows "
                          f"({len(messages)} bad rows)")


# -- collation -------------------------------------------------------------------------------------------------
class DeGLACollator:
    """Batches rows into model inputs: images through the training image transform (the same pixels for the
    student and its teacher), all texts tokenised in one call, as the student's family prepares them
    (`degla.families`, the recipe the evaluation uses).

    CLIP: texts cleaned as open_clip's tokenizer cleans them (`degla.text.clean_text`: ftfy, HTML entities,
    whitespace) before CLIP's BPE; captions and their K negatives padded together to the batch's longest text
    (≤ `max_length`), with the attention mask. SigLIP, SigLIP 2: lower-cased, padded to `max_length` (the text
    tower's length), no attention mask.
    `image_transform(images, indices)` defaults to the processor's deterministic transform; a transform with an
    `image_inputs` method (`TrainImageTransform`) gives every image input (NaFlex's masks and shapes too).
    """

    def __init__(self, processor, num_negatives: int, image_root: str | None = None, max_length: int = 77,
                 image_transform=None, family: Family | None = None):
        self.processor = processor
        self.num_negatives = num_negatives
        self.image_root = image_root or ""
        self.max_length = max_length
        self.image_transform = image_transform
        self.family = family or FAMILIES["clip"]

    def _images(self, rows: list[dict]) -> list[Image.Image]:
        images = []
        for position, row in enumerate(rows):
            try:
                images.append(open_image(row, self.image_root))
            except (OSError, ValueError, SyntaxError) as err:
                where = describe_image(row, row.get(INDEX, position), self.image_root)
                raise TrainDataError(f"{where} cannot be read ({err.__class__.__name__}: {err}); the image check "
                                     "before training passed it, so the file changed during the run") from err
        return images

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        b, k = len(rows), self.num_negatives
        texts = [self.family.prepare_text(t) for t in [row[CAPTION] for row in rows]
                 + [n for row in rows for n in row[NEGATIVES][:k]]]
        tokens = self.family.tokenize(self.processor.tokenizer, texts, self.max_length)
        images = self._images(rows)
        indices = [row.get(INDEX, i) for i, row in enumerate(rows)]
        if self.image_transform is None:
            outputs = self.processor.image_processor([i.convert("RGB") for i in images], return_tensors="pt")
            batch = {name: v for name, v in outputs.items() if isinstance(v, torch.Tensor)}
        elif hasattr(self.image_transform, "image_inputs"):
            batch = dict(self.image_transform.image_inputs(images, indices))
        else:
            batch = {"pixel_values": self.image_transform(images, indices)}
        for name in ("input_ids", "attention_mask"):  # the mask only where the family uses one
            if name not in tokens:
                continue
            values = tokens[name]
            batch[name] = values[:b]
            if k:
                batch[f"negative_{name}"] = values[b:].view(b, k, -1)
        return batch
