"""Caption readers: COCO captions JSON, a `datasets` dataset saved to disk, a NegCLIP-style
TSV/CSV, or a .txt file with one caption per line. All give a :class:`datasets.Dataset`
with a ``caption`` column and the image reference the input has (``image_id`` and/or
``image_path``)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from datasets import Dataset, DatasetDict, load_from_disk

from ..errors import InputError
from ..schema import CAPTION, IMAGE_ID, IMAGE_PATH

DEFAULT_CAPTIONS = Path(__file__).parent / "data" / "negclip_valid_excerpt.tsv"
"""48 real COCO captions (NegCLIP's validation TSV, MIT): the embedded default input."""

CAPTION_COLUMNS = ("caption", "title", "text", "sentence")
IMAGE_PATH_COLUMNS = ("image_path", "filepath", "file_name", "filename")


class CaptionInputError(InputError):
    """An input file that cannot be read as captions; the message names the file, the row and the fix."""


def read_captions(
    path: str | os.PathLike,
    caption_column: str | None = None,
    split: str | None = None,
    max_caption_words: int = 64,
) -> Dataset:
    """Read captions from ``path``.

    Args:
        path: a COCO captions ``.json`` (``annotations`` with ``image_id`` and ``caption``; the
            ``images`` list adds ``image_path``), a folder written by ``save_to_disk``, a
            ``.tsv``/``.csv`` with a header (NegCLIP's ``title``/``filepath`` columns work), or a
            ``.txt`` file (one caption per line).
        caption_column: the column holding captions (default: the first of caption, title, text,
            sentence).
        split: the split of a saved ``DatasetDict`` (default: ``train`` when there is one).
        max_caption_words: captions longer than this are an error (they are not captions).

    Returns:
        A dataset with ``caption`` and, where the input has them, ``image_id`` / ``image_path``.
    """
    path = Path(path)
    if not path.exists():
        raise CaptionInputError(f"{path}: no such file or folder")
    if path.is_dir():
        rows = _read_saved_dataset(path, caption_column, split)
    elif path.suffix == ".json":
        rows = _read_coco(path)
    elif path.suffix in (".tsv", ".csv"):
        rows = _read_table(path, caption_column)
    elif path.suffix == ".txt":
        rows = _read_txt(path)
    else:
        raise CaptionInputError(
            f"{path}: unknown caption format {path.suffix!r}; give a COCO captions .json, a .tsv/.csv with a "
            "header, a .txt file (one caption per line) or a folder written by Dataset.save_to_disk"
        )
    _check_captions(path, rows[CAPTION], rows.pop("_row_names"), max_caption_words)
    if not rows[CAPTION]:
        raise CaptionInputError(f"{path}: no captions found")
    return Dataset.from_dict(rows)


def _check_captions(path, captions, row_names, max_words):
    for i, (caption, where) in enumerate(zip(captions, row_names)):
        if not isinstance(caption, str):
            raise CaptionInputError(f"{path}, {where}: the caption is {type(caption).__name__}, not text")
        if not caption.strip():
            raise CaptionInputError(f"{path}, {where}: empty caption; remove the row or fill in its caption")
        n_words = len(caption.split())
        if n_words > max_words:
            raise CaptionInputError(
                f"{path}, {where}: caption of {n_words} words (limit {max_words}): {caption[:80]!r}...; "
                "fix the row, or raise --max_caption_words if such long captions are intended"
            )
        captions[i] = " ".join(caption.split())


def _pick_caption_column(path, columns, caption_column):
    if caption_column is not None:
        if caption_column not in columns:
            raise CaptionInputError(
                f"{path}: no column {caption_column!r}; the columns are {list(columns)}; pass --caption_column NAME"
            )
        return caption_column
    for name in CAPTION_COLUMNS:
        if name in columns:
            return name
    raise CaptionInputError(
        f"{path}: no caption column (looked for {', '.join(CAPTION_COLUMNS)}); the columns are {list(columns)}; "
        "pass --caption_column NAME"
    )


def _read_coco(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CaptionInputError(
            f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}; expected COCO captions "
            "({'images': [...], 'annotations': [{'image_id': ..., 'caption': ...}]})"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise CaptionInputError(
            f"{path}: not a COCO captions file: expected a top-level object with an 'annotations' list of "
            "{'image_id': ..., 'caption': ...}"
        )
    files = {img.get("id"): img.get("file_name") for img in data.get("images", []) if isinstance(img, dict)}
    rows = {CAPTION: [], IMAGE_ID: [], "_row_names": []}
    if files:
        rows[IMAGE_PATH] = []
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "caption" not in ann or "image_id" not in ann:
            raise CaptionInputError(f"{path}, annotations[{i}]: needs 'image_id' and 'caption', got {ann!r:.120}")
        rows[CAPTION].append(ann["caption"])
        rows[IMAGE_ID].append(ann["image_id"])
        rows["_row_names"].append(f"annotations[{i}] (id {ann.get('id')})")
        if files:
            rows[IMAGE_PATH].append(files.get(ann["image_id"]))
    return rows


def _read_table(path: Path, caption_column: str | None) -> dict:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise CaptionInputError(f"{path}: empty file; expected a header row and one caption per row") from None
        column = _pick_caption_column(path, header, caption_column)
        image_path_col = next((c for c in IMAGE_PATH_COLUMNS if c in header), None)
        rows = {CAPTION: [], "_row_names": []}
        if "image_id" in header:
            rows[IMAGE_ID] = []
        if image_path_col:
            rows[IMAGE_PATH] = []
        for line_no, values in enumerate(reader, 2):
            if not values:
                continue  # a blank line (e.g. at the end of the file)
            if len(values) != len(header):
                raise CaptionInputError(
                    f"{path}, line {line_no}: {len(values)} fields, the header has {len(header)}; "
                    f"check the {'tabs' if delimiter == chr(9) else 'commas'} and quoting of that row"
                )
            row = dict(zip(header, values))
            rows[CAPTION].append(row[column])
            rows["_row_names"].append(f"line {line_no}")
            if IMAGE_ID in rows:
                rows[IMAGE_ID].append(row["image_id"])
            if image_path_col:
                rows[IMAGE_PATH].append(row[image_path_col])
    return rows


def _read_txt(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines
    return {CAPTION: lines, "_row_names": [f"line {i}" for i in range(1, len(lines) + 1)]}


def _read_saved_dataset(path: Path, caption_column: str | None, split: str | None) -> dict:
    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError as e:
        raise CaptionInputError(
            f"{path}: not a dataset saved with save_to_disk ({e}); give the folder written by save_to_disk"
        ) from None
    if isinstance(ds, DatasetDict):
        if split is None:
            if "train" not in ds:
                raise CaptionInputError(f"{path}: a DatasetDict with splits {list(ds)}; pass --split NAME")
            split = "train"
        if split not in ds:
            raise CaptionInputError(f"{path}: no split {split!r}; the splits are {list(ds)}")
        ds = ds[split]
    column = _pick_caption_column(path, ds.column_names, caption_column)
    rows = {CAPTION: list(ds[column]), "_row_names": [f"row {i}" for i in range(len(ds))]}
    if "image_id" in ds.column_names:
        rows[IMAGE_ID] = list(ds["image_id"])
    image_path_col = next((c for c in IMAGE_PATH_COLUMNS if c in ds.column_names), None)
    if image_path_col:
        rows[IMAGE_PATH] = list(ds[image_path_col])
    return rows
