"""SugarCrepe (Hsieh et al., 2023): image-to-text, correct iff score(image, positive) > score(image, negative).

Quirks kept from the official evaluation: ties count as wrong (strict `>`); the 7 subsets are scored
separately and the paper's REPLACE / SWAP / ADD columns are the unweighted means of their subsets (table 3).
`avg` (not in the paper's table) is the mean of the three group means, used for the compositional average.
"""

from __future__ import annotations

import os

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import (EvalDataError, EvalTask, Table, TaskResult, add_means, check_annotation_folder, check_path,
                     load_subset_files, pairwise_accuracies, read_json, require_keys)

SUBSETS = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
GROUPS = {"replace": ("replace_obj", "replace_att", "replace_rel"), "swap": ("swap_obj", "swap_att"),
          "add": ("add_obj", "add_att")}


def load_subset(annotation_path: str, image_dir: str) -> tuple[list[ImageRef], list[str], list[str]]:
    """Read one SugarCrepe file ({id: {filename, caption, negative_caption}}) into parallel lists."""
    data = read_json(annotation_path, "SugarCrepe annotations")
    if not isinstance(data, dict):
        raise ValueError(f"{annotation_path}: expected an object {{id: {{filename, caption, negative_caption}}}}")
    refs, pos, neg = [], [], []
    for rid, rec in data.items():
        require_keys(rec, ("filename", "caption", "negative_caption"), annotation_path, rid)
        refs.append(ImageRef(os.path.join(image_dir, rec["filename"])))
        pos.append(rec["caption"])
        neg.append(rec["negative_caption"])
    return refs, pos, neg


def check(data: EvalDataConfig) -> bool:
    if not check_annotation_folder(data.sugarcrepe_dir, "sugarcrepe_dir", SUBSETS, "SugarCrepe"):
        return False
    if not check_path(data.coco_val2017_dir, "coco_val2017_dir"):
        raise EvalDataError("SugarCrepe needs its images: pass --coco_val2017_dir (COCO val2017 folder)")
    return True


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    loaded = load_subset_files(data.sugarcrepe_dir, SUBSETS, load_subset, result, data.coco_val2017_dir)
    pairwise_accuracies(encoder, "sugarcrepe", loaded, result)
    for name, (refs, _, _) in loaded.items():
        result.count(name, len(refs))
    add_means(result.scores, GROUPS)
    return result


TASK = EvalTask(
    name="sugarcrepe", data_options=("sugarcrepe_dir", "coco_val2017_dir"),
    order=2, run=run, check=check,
    description="SugarCrepe: image-to-text, the caption against its hard negative (7 subsets, replace/swap/add)",
    suite=(("SugarCrepe", "avg"),),
    table=Table("Table 3: SugarCrepe", (
        ("Replace Object", "replace_obj"), ("Replace Attribute", "replace_att"), ("Replace Relation", "replace_rel"),
        ("REPLACE Avg.", "replace"), ("Swap Object", "swap_obj"), ("Swap Attribute", "swap_att"),
        ("SWAP Avg.", "swap"), ("Add Object", "add_obj"), ("Add Attribute", "add_att"), ("ADD Avg.", "add"),
        ("Avg.", "avg"))),
)
