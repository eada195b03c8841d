"""SugarCrepe (Hsieh et al., 2023): image-to-text, correct iff score(image, positive) > score(image, negative).

Quirks kept from the official evaluation: ties count as wrong (strict `>`); the 7 subsets are scored
separately and the paper's REPLACE / SWAP / ADD columns are the unweighted means of their subsets (table 3).
`avg` (not in the paper's table) is the mean of the three group means, used for the compositional average.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import TaskResult, load_metric, paired_scores, percent, read_json, require_keys

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


def run(encoder, data: EvalDataConfig) -> TaskResult:
    result = TaskResult()
    if not data.sugarcrepe_dir:
        result.skipped["all"] = "no --sugarcrepe_dir"
        return result
    if not data.coco_val2017_dir:
        raise ValueError("SugarCrepe needs its images: pass --coco_val2017_dir (COCO val2017 folder)")
    loaded = {}
    for name in SUBSETS:
        path = os.path.join(data.sugarcrepe_dir, f"{name}.json")
        if os.path.exists(path):
            loaded[name] = load_subset(path, data.coco_val2017_dir)
        else:
            result.skipped[name] = f"{path} not found"
    if not loaded:
        return result
    # one encoding pass over the images and texts of all subsets: shared images are encoded once
    refs = [r for v in loaded.values() for r in v[0]]
    texts = [t for v in loaded.values() for t in v[1] + v[2]]
    img = encoder.encode_images(refs, task="sugarcrepe")
    txt = encoder.encode_texts(texts, task="sugarcrepe")  # per subset: positives then negatives
    metric = load_metric("multiple_choice_accuracy")
    i_off = t_off = 0
    for name, (r, pos, neg) in loaded.items():
        n = len(r)
        feats = img[i_off : i_off + n]
        s_pos = paired_scores(feats, txt[t_off : t_off + n])
        s_neg = paired_scores(feats, txt[t_off + n : t_off + 2 * n])
        i_off, t_off = i_off + n, t_off + 2 * n
        out = metric.compute(scores=torch.stack([s_pos, s_neg], 1).tolist(), labels=[0] * n, tie_break="strict")
        result.scores[name] = percent(out["accuracy"])
        result.count(name, n)
    for group, members in GROUPS.items():
        if all(m in result.scores for m in members):
            result.scores[group] = round(float(np.mean([result.scores[m] for m in members])), 2)
    if all(g in result.scores for g in GROUPS):
        result.scores["avg"] = round(float(np.mean([result.scores[g] for g in GROUPS])), 2)
    return result
