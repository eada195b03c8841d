"""The negatives dataset: one row per caption, written by `degla.generation` and `degla.world`, read by training.

Columns (every name is defined here once):

| column | type | meaning |
|---|---|---|
| `caption` | string | the positive caption |
| `image` | `datasets.Image` | the image, embedded (or instead:) |
| `image_path` | string | the image file, relative to `--image_root` |
| `image_id` | int64, optional | the source dataset's image id (COCO) |
| `neg_<rule>` | string or null | the rule's hard negative (null: the rule produced nothing valid) |
| `source_<rule>` | string or null | who wrote it: `"llm"` or `"rule_based"` |

The five rules are the paper's subtypes 1-5 (section 3.2, table 1), in its order. Training reads two more list
columns, made by its loaders from released files: `slot_negatives` (the authors' `DeGLA.json`: negative `i` fills
slot `i`) and `negative_pool` (NegCLIP's TSV: an unordered pool of negatives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:  # imported where used: the scripts' --help reads RULES without loading datasets
    import datasets

RULES = ("reshuffle", "swap_nouns", "swap_adjectives", "replace_adjectives", "replace_nouns")
"""Rule names, in the paper's subtype order (1-5)."""

CAPTION = "caption"
IMAGE = "image"
IMAGE_PATH = "image_path"
IMAGE_ID = "image_id"
SLOT_NEGATIVES = "slot_negatives"
NEGATIVE_POOL = "negative_pool"
NEGATIVE_SOURCES = ("llm", "rule_based")


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    return rule


def neg_column(rule: str) -> str:
    """Column holding the negatives of `rule`: `neg_<rule>`."""
    return f"neg_{check_rule(rule)}"


def source_column(rule: str) -> str:
    """Provenance column of `rule`: `source_<rule>` = "llm", "rule_based" or null."""
    return f"source_{check_rule(rule)}"


NEGATIVE_COLUMNS = tuple(neg_column(rule) for rule in RULES)
LIST_COLUMNS = (SLOT_NEGATIVES, NEGATIVE_POOL)


def negatives_features(rules=RULES, image: str = IMAGE_PATH, with_sources: bool = True,
                       with_image_id: bool = False) -> datasets.Features:
    """The `datasets.Features` of a negatives dataset with these rules and this image reference."""
    import datasets

    if image not in (IMAGE, IMAGE_PATH):
        raise ValueError(f"image reference must be {IMAGE!r} or {IMAGE_PATH!r}, got {image!r}")
    features = {CAPTION: datasets.Value("string"),
                image: datasets.Image() if image == IMAGE else datasets.Value("string")}
    if with_image_id:
        features[IMAGE_ID] = datasets.Value("int64")
    features.update({neg_column(rule): datasets.Value("string") for rule in rules})
    if with_sources:
        features.update({source_column(rule): datasets.Value("string") for rule in rules})
    return datasets.Features(features)


def check_negatives_dataset(dataset: datasets.Dataset, source: str) -> None:
    """Raise a clear error (naming the source, the column or the row, and the fix) for a malformed dataset."""
    columns = set(dataset.column_names)
    if len(dataset) == 0:
        raise InputError(f"{source}: the dataset has no rows")
    if CAPTION not in columns:
        raise InputError(f"{source}: no {CAPTION!r} column (columns: {sorted(columns)}); rename the caption column "
                         f"to {CAPTION!r} (dataset.rename_column)")
    if not columns & {IMAGE, IMAGE_PATH}:
        raise InputError(f"{source}: no image reference; add an {IMAGE!r} (datasets.Image) or {IMAGE_PATH!r} "
                         "column")
    if not columns & {*NEGATIVE_COLUMNS, *LIST_COLUMNS}:
        raise InputError(f"{source}: no negative columns; expected some of {NEGATIVE_COLUMNS} "
                         "(run scripts/generate_negatives.py)")
    for column in columns & set(NEGATIVE_COLUMNS):
        if dataset.features[column].dtype not in ("string", "large_string", "null"):
            raise InputError(f"{source}: column {column!r} must hold strings (or nulls), "
                             f"has {dataset.features[column]}")
    captions = dataset.select_columns([CAPTION])  # not the other columns (images are decoded on access)
    for start in range(0, len(dataset), 100_000):
        for offset, caption in enumerate(captions[start:start + 100_000][CAPTION]):
            if not isinstance(caption, str) or not caption.strip():
                raise InputError(f"{source}: row {start + offset}: empty or non-string caption {caption!r}; remove "
                                 "or fix the row")
