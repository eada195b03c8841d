"""The negatives dataset: loading (generation output, Hub ids, NegCLIP TSV), K negative slots, images, collation.

Schema (shared with `degla.generation`): one row per caption with `caption`, an image reference (`image`, a
`datasets.Image` column, or `image_path` relative to `--image_root`) and one string column per rewrite rule,
`neg_<rule>` (null where the rule produced nothing valid). NegCLIP's TSV (`title`, `filepath`, `neg_caption`)
is read as `caption`, `image_path` and a list column `neg_captions`.
"""

from __future__ import annotations

import ast
import logging
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset, load_dataset, load_from_disk
from PIL import Image

from ..generation import RULES

logger = logging.getLogger(__name__)

NEGATIVE_COLUMNS = tuple(f"neg_{rule}" for rule in RULES)
NEGCLIP_LIST_COLUMN = "neg_captions"
# K = 4 slots from the five rules: the two swap rules share a slot (the paper merges two subtypes without saying
# which). Each slot takes one valid negative of one of its rules, chosen at random (seeded) when several exist.
DEFAULT_NEGATIVE_SLOTS = "reshuffle;swap_nouns,swap_adjectives;replace_adjectives;replace_nouns"
FILL_POLICIES = ("fill", "drop")
COLLATOR_COLUMNS = ("caption", "image", "image_path", "negatives")  # what `DeGLACollator` reads from a row


def parse_negative_slots(spec: str) -> tuple[tuple[str, ...], ...]:
    """`"reshuffle;swap_nouns,swap_adjectives;..."` → one tuple of rules per slot (`;` separates slots)."""
    slots = tuple(tuple(r.strip() for r in slot.split(",") if r.strip()) for slot in spec.split(";"))
    unknown = sorted({r for slot in slots for r in slot} - set(RULES))
    if unknown or not all(slots):
        raise ValueError(f"negative slot spec {spec!r}: unknown rules {unknown} or an empty slot; "
                         f"use ';'-separated slots of ','-separated rules from {RULES}")
    return slots


def read_negclip_tsv(path: str) -> Dataset:
    """NegCLIP's training TSV (`title`, `filepath`, `neg_caption` = a Python list literal) as our schema."""
    import pandas as pd

    frame = pd.read_csv(path, sep="\t")
    missing = {"title", "filepath", "neg_caption"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a NegCLIP TSV, missing columns {sorted(missing)}")
    negatives = []
    for row, text in enumerate(frame["neg_caption"]):
        try:
            value = ast.literal_eval(text) if isinstance(text, str) else []
        except (ValueError, SyntaxError) as err:
            raise ValueError(f"{path}: row {row}: neg_caption is not a list literal ({err}): {text!r:.80}") from None
        negatives.append([v for v in value if isinstance(v, str) and v.strip()])
    return Dataset.from_dict({"caption": frame["title"].tolist(), "image_path": frame["filepath"].tolist(),
                              NEGCLIP_LIST_COLUMN: negatives})


def load_negatives_dataset(source: str, split: str = "train") -> Dataset:
    """Load a negatives dataset from a NegCLIP `.tsv`, a `save_to_disk` folder, a parquet folder or a Hub id."""
    if source.endswith((".tsv", ".csv")):
        dataset = read_negclip_tsv(source)
    elif os.path.isdir(source) and os.path.exists(os.path.join(source, "dataset_info.json")) and \
            os.path.exists(os.path.join(source, "state.json")):
        dataset = load_from_disk(source)
    else:
        dataset = load_dataset(source, split=split)
    check_schema(dataset, source)
    return dataset


def check_schema(dataset: Dataset, source: str) -> None:
    """Raise a clear error (naming the source, the column or the row, and the fix) for a malformed dataset."""
    columns = set(dataset.column_names)
    if "caption" not in columns:
        raise ValueError(f"{source}: no 'caption' column (columns: {sorted(columns)}); rename the caption column "
                         "to 'caption' (dataset.rename_column)")
    if not columns & {"image", "image_path"}:
        raise ValueError(f"{source}: no image reference; add an 'image' (datasets.Image) or 'image_path' column")
    if not columns & (set(NEGATIVE_COLUMNS) | {NEGCLIP_LIST_COLUMN}):
        raise ValueError(f"{source}: no negative columns; expected some of {NEGATIVE_COLUMNS} "
                         "(run scripts/generate_negatives.py) or NegCLIP's list column")
    captions = dataset["caption"]
    for row, caption in enumerate(captions):
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f"{source}: row {row}: empty or non-string caption {caption!r}; remove or fix the row")
    for column in columns & set(NEGATIVE_COLUMNS):
        if dataset.features[column].dtype not in ("string", "large_string", "null"):
            raise ValueError(f"{source}: column {column!r} must hold strings (or nulls), "
                             f"has {dataset.features[column]}")


@dataclass
class NegativeStats:
    """How the K negatives of every caption were obtained (nothing is dropped silently)."""

    rows: int = 0
    rows_dropped: int = 0
    sources: Counter = field(default_factory=Counter)  # "rule" | "other_rule" | "other_caption" → slot count

    def summary(self) -> str:
        total = sum(self.sources.values()) or 1
        parts = ", ".join(f"{k}={v} ({100 * v / total:.1f}%)" for k, v in sorted(self.sources.items()))
        return f"{self.rows} captions, {self.rows_dropped} dropped; negative slots: {parts}"


def _valid(text) -> bool:
    return isinstance(text, str) and bool(text.strip())


def _pick_negatives(row: dict, slots, k: int, rng: np.random.Generator, pool: list[str]):
    """K negatives for one caption and where each came from."""
    if NEGCLIP_LIST_COLUMN in row:  # NegCLIP: one untyped list per caption
        own = [n for n in row[NEGCLIP_LIST_COLUMN] if _valid(n)]
        rng.shuffle(own)
        chosen, sources = own[:k], ["rule"] * min(k, len(own))
    else:
        chosen, sources = [], []
        for slot in slots:
            candidates = [row[f"neg_{r}"] for r in slot if _valid(row.get(f"neg_{r}"))]
            if candidates:
                chosen.append(candidates[rng.integers(len(candidates))])
                sources.append("rule")
        own = [row[c] for c in NEGATIVE_COLUMNS if _valid(row.get(c)) and row[c] not in chosen]
        rng.shuffle(own)
        for negative in own[: k - len(chosen)]:
            chosen.append(negative)
            sources.append("other_rule")
    if pool:
        own_texts = {row["caption"], *own, *chosen}
        for _ in range(16 * k):  # other captions' negatives; re-draw the (rare) ones that are this caption's own
            if len(chosen) == k:
                break
            negative = pool[rng.integers(len(pool))]
            if negative not in own_texts:
                chosen.append(negative)
                sources.append("other_caption")
    return chosen, sources


def assign_negative_slots(dataset: Dataset, num_negatives: int, slots: str = DEFAULT_NEGATIVE_SLOTS,
                          policy: str = "fill", seed: int = 0) -> tuple[Dataset, NegativeStats]:
    """Add a `negatives` column of exactly K strings per caption.

    Slot i takes a valid negative of one of its rules. A slot left empty is filled (`policy="fill"`) first from
    the caption's unused negatives of other rules, then from a random negative of another caption of the same
    1,000-row block; `policy="drop"` drops captions that cannot fill all K slots from their own negatives.
    Deterministic for a given seed; returns the counts of every source.
    """
    if policy not in FILL_POLICIES:
        raise ValueError(f"missing-negative policy must be one of {FILL_POLICIES}, got {policy!r}")
    slot_rules = parse_negative_slots(slots)
    if num_negatives > len(slot_rules) and NEGCLIP_LIST_COLUMN not in dataset.column_names:
        logger.warning("num_negatives=%d > %d slots: extra negatives come from other rules/captions",
                       num_negatives, len(slot_rules))

    def pick(batch: dict, indices: list[int]) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        pool = [n for row in rows for c in (*NEGATIVE_COLUMNS, NEGCLIP_LIST_COLUMN) if c in row
                for n in (row[c] if isinstance(row[c], list) else [row[c]]) if _valid(n)]
        negatives, sources = [], []
        for row, index in zip(rows, indices):
            rng = np.random.default_rng([seed, index])
            chosen, src = _pick_negatives(row, slot_rules, num_negatives, rng, [] if policy == "drop" else pool)
            negatives.append(chosen)
            sources.append(src)
        return {"negatives": negatives, "negative_sources": sources}

    columns = [c for c in dataset.column_names if c in (*NEGATIVE_COLUMNS, NEGCLIP_LIST_COLUMN, "caption")]
    picked = dataset.select_columns(columns).map(pick, batched=True, batch_size=1000, with_indices=True,
                                                 desc="Assigning negative slots")
    stats = NegativeStats(rows=len(dataset))
    for src in picked["negative_sources"]:
        stats.sources.update(src)
    complete = np.array([len(n) == num_negatives for n in picked["negatives"]])
    dataset = dataset.add_column("negatives", picked["negatives"])
    if not complete.all():
        stats.rows_dropped = int((~complete).sum())
        dataset = dataset.select(np.flatnonzero(complete))
    return dataset, stats


def check_images(dataset: Dataset, image_root: str | None, skip_bad_images: bool = False) -> tuple[Dataset, int]:
    """Make sure every `image_path` exists and opens; raise naming the first bad row, or skip and count them."""
    if "image" in dataset.column_names:
        return dataset, 0
    root = image_root or ""
    bad = []
    for row, path in enumerate(dataset["image_path"]):
        full = os.path.join(root, path)
        try:
            with Image.open(full):
                pass
        except (OSError, ValueError) as err:
            if not skip_bad_images:
                raise ValueError(f"row {row}: image {full!r} is missing or unreadable ({err.__class__.__name__}); "
                                 "check --image_root, or pass --skip_bad_images to skip and count such rows") from None
            bad.append(row)
    if bad:
        keep = np.setdiff1d(np.arange(len(dataset)), bad)
        dataset = dataset.select(keep)
    return dataset, len(bad)


class DeGLACollator:
    """Batches rows into model inputs: images through the CLIP image processor, all texts tokenised in one call.

    Captions and their K negatives are padded together to the batch's longest text (≤ `max_length`).
    """

    def __init__(self, processor, num_negatives: int, image_root: str | None = None, max_length: int = 77):
        self.processor = processor
        self.num_negatives = num_negatives
        self.image_root = image_root or ""
        self.max_length = max_length

    def _image(self, row: dict) -> Image.Image:
        if row.get("image") is not None:
            image = row["image"]
        else:
            image = Image.open(os.path.join(self.image_root, row["image_path"]))
        return image.convert("RGB")

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        b, k = len(rows), self.num_negatives
        texts = [row["caption"] for row in rows] + [n for row in rows for n in row["negatives"][:k]]
        tokens = self.processor.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                          return_tensors="pt")
        pixel_values = self.processor.image_processor([self._image(row) for row in rows],
                                                      return_tensors="pt")["pixel_values"]
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        batch = {"input_ids": ids[:b], "attention_mask": mask[:b], "pixel_values": pixel_values}
        if k:
            batch["negative_input_ids"] = ids[b:].view(b, k, -1)
            batch["negative_attention_mask"] = mask[b:].view(b, k, -1)
        return batch
