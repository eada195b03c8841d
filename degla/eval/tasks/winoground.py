"""Winoground (Thrush et al., CVPR 2022): two images and two captions with the same words in a different order.

With s(c, i) the image-caption score of caption c and image i, per example (the official definitions: the
Winoground paper, section 3, and the `text_correct` / `image_correct` / `group_correct` of the evaluation notebook
linked from the dataset card):
- text score:  s(c0, i0) > s(c1, i0) and s(c1, i1) > s(c0, i1)  (each image picks its caption);
- image score: s(c0, i0) > s(c0, i1) and s(c1, i1) > s(c1, i0)  (each caption picks its image);
- group score: both.
Each is the percent of the 400 examples (chance: 25, 25 and 16.67). Comparisons are strict (a tie is wrong). The
notebook compares `logits_per_image` (the cosine times CLIP's logit scale, a positive constant); the harness
compares the cosines, the same decisions.

Data: the Hub dataset `facebook/winoground` (gated: accept its licence and log in) through `datasets`
(`--winoground_hub_id`), or a local copy (`--winoground_dir`): a `save_to_disk` folder, a folder of parquet files
with the Hub dataset's columns, or the original release layout `examples.jsonl` + `images/<name>.png` (the folder
or its `data/` subfolder). Per-tag scores (collapsed tag Object / Relation / Both, number of main predicates 1 / 2,
visual secondary tags), as in the paper's tables 4-5, go to run_info.json (`details.by_tag`).
"""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import DatasetImageRef, ImageRef
from . import hub_layout
from .common import EvalDataError, EvalTask, Table, TaskResult, check_path, percent
from .hub_layout import has_local_copy, image_refs, load_local_copy, require_columns

COLUMNS = ("id", "image_0", "image_1", "caption_0", "caption_1", "tag", "secondary_tag", "num_main_preds",
           "collapsed_tag")
SCORE_ORDER = ("c0_i0", "c1_i0", "c0_i1", "c1_i1")  # columns of the per-example score matrix
TAG_FIELDS = ("collapsed_tag", "num_main_preds", "secondary_tag")


def _release_folder(path: str) -> str | None:
    """The folder holding `examples.jsonl` of the original release (the folder itself or its `data/`)."""
    for folder in (path, os.path.join(path, "data")):
        if os.path.isfile(os.path.join(folder, "examples.jsonl")):
            return folder
    return None


def _image_file(images_dir: str, name: str) -> str:
    """`examples.jsonl` names an image without its extension (`ex_0_img_0`); the release stores `<name>.png`."""
    if os.path.splitext(name)[1]:
        return os.path.join(images_dir, name)
    for ext in (".png", ".jpg", ".jpeg"):
        candidate = os.path.join(images_dir, name + ext)
        if os.path.isfile(candidate):
            return candidate
    return os.path.join(images_dir, name + ".png")


def load_release(folder: str) -> tuple[list[dict], list[ImageRef], list[ImageRef]]:
    """The original layout: one JSON object per line, images in `images/`."""
    records = []
    path = os.path.join(folder, "examples.jsonl")
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {n} is not JSON: {err}") from err
            missing = [c for c in COLUMNS if c not in rec]
            if missing:
                raise ValueError(f"{path}: line {n} lacks field(s) {missing} (expected {list(COLUMNS)})")
            records.append(rec)
    images = os.path.join(folder, "images")
    refs = [[ImageRef(_image_file(images, r[f"image_{k}"])) for r in records] for k in (0, 1)]
    return records, refs[0], refs[1]


def load_dataset_rows(ds, source: str) -> tuple[list[dict], list[DatasetImageRef], list[DatasetImageRef]]:
    """A `datasets.Dataset` with the Hub dataset's columns (images decoded only when encoded)."""
    require_columns(ds, COLUMNS, source, "facebook/winoground")
    records = ds.remove_columns(["image_0", "image_1"]).to_list()
    return records, image_refs(ds, source, "image_0"), image_refs(ds, source, "image_1")


def load_local(path: str):
    """`--winoground_dir`: the release layout, a `save_to_disk` folder or parquet files, in that order."""
    folder = _release_folder(path)
    if folder is not None:
        return load_release(folder)
    copy = load_local_copy(path, ("image_0", "image_1"))
    if copy is not None:
        return load_dataset_rows(*copy)
    raise EvalDataError(f"--winoground_dir {path} holds no Winoground data: expected examples.jsonl + images/ (the "
                        "release layout, or under data/), a datasets save_to_disk folder, or parquet files with "
                        f"the columns {', '.join(COLUMNS)}")


def load_hub(hub_id: str):
    return load_dataset_rows(*hub_layout.load_hub(hub_id))


def check(data: EvalDataConfig) -> bool:
    if data.winoground_dir and data.winoground_hub_id:
        raise EvalDataError("pass one of --winoground_dir and --winoground_hub_id, not both")
    if data.winoground_hub_id:
        return True
    if not check_path(data.winoground_dir, "winoground_dir"):
        return False
    if not (_release_folder(data.winoground_dir) or has_local_copy(data.winoground_dir)):
        raise EvalDataError(f"--winoground_dir {data.winoground_dir} holds no Winoground data: expected "
                            "examples.jsonl + images/, a datasets save_to_disk folder, or parquet files")
    return True


def example_scores(encoder, refs0: list, refs1: list, captions0: list[str], captions1: list[str],
                   task: str = "winoground") -> torch.Tensor:
    """[N, 4] cosine similarities in `SCORE_ORDER` (c0_i0, c1_i0, c0_i1, c1_i1); every image and caption encoded
    once (de-duplicated and cached by the encoder)."""
    n = len(refs0)
    img = encoder.encode_images(list(refs0) + list(refs1), task=task)
    txt = encoder.encode_texts(list(captions0) + list(captions1), task=task)
    i0, i1, c0, c1 = img[:n], img[n:], txt[:n], txt[n:]
    return torch.stack([(c0 * i0).sum(-1), (c1 * i0).sum(-1), (c0 * i1).sum(-1), (c1 * i1).sum(-1)], dim=1)


def decisions(scores: torch.Tensor) -> dict[str, np.ndarray]:
    """The official text / image / group decisions from [N, 4] scores in `SCORE_ORDER` (strict comparisons)."""
    s = scores.numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    c0_i0, c1_i0, c0_i1, c1_i1 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    text = (c0_i0 > c1_i0) & (c1_i1 > c0_i1)
    image = (c0_i0 > c0_i1) & (c1_i1 > c1_i0)
    return {"text": text, "image": image, "group": text & image}


def _tag_values(field: str, value) -> list[str]:
    """The tags of one example in `field`: `secondary_tag` may hold several (comma-separated) or none."""
    if field == "secondary_tag":
        return [t.strip() for t in str(value or "").split(",") if t.strip()]
    return [str(value)]


def by_tag(records: list[dict], correct: dict[str, np.ndarray], fields: tuple[str, ...] = TAG_FIELDS) -> dict:
    """{field: {tag: {"count", "text", "image", "group"}}} over the examples carrying each tag."""
    out = {}
    for field in fields:
        groups: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            for tag in _tag_values(field, rec.get(field)):
                groups.setdefault(tag, []).append(i)
        out[field] = {tag: {"count": len(idx), **{k: percent(float(v[idx].mean())) for k, v in correct.items()}}
                      for tag, idx in sorted(groups.items())}
    return out


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    records, refs0, refs1 = load_hub(data.winoground_hub_id) if data.winoground_hub_id else load_local(
        data.winoground_dir)
    if not records:
        result.skipped["winoground"] = "no example in the data"
        return result
    scores = example_scores(encoder, refs0, refs1, [r["caption_0"] for r in records],
                            [r["caption_1"] for r in records])
    correct = decisions(scores)
    for key in ("text", "image", "group"):
        result.scores[key] = percent(float(correct[key].mean()))
    result.count("winoground", len(records))
    result.items["winoground"] = {"scores": scores, "ids": [r["id"] for r in records],
                                  **{k: v.tolist() for k, v in correct.items()}}
    result.details["by_tag"] = by_tag(records, correct)
    result.details["collapsed_tag_counts"] = dict(Counter(str(r["collapsed_tag"]) for r in records))
    return result


TASK = EvalTask(
    name="winoground", data_options=("winoground_dir", "winoground_hub_id"),
    order=7, run=run, check=check,
    description="Winoground: text, image and group scores over two images and two captions (beyond the paper)",
    suite=(("Winoground text", "text"), ("Winoground image", "image"), ("Winoground group", "group")),
    table=Table("Winoground (beyond the paper)", (("Text", "text"), ("Image", "image"), ("Group", "group"))),
)
