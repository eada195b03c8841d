"""SugarCrepe++ (Dumpala et al., NeurIPS 2024 Datasets and Benchmarks): per COCO image two positive captions
(`caption`, `caption2`, lexically different, same meaning) and one hard negative (`negative_caption`).

Scored as the official evaluation scripts (Sri-Harsha/scpp, `VLMs/test_*.py`, e.g. `test_Variants_CLIP.py`) score
it, with cosine similarities of L2-normalised embeddings and strict comparisons (a tie is wrong):
- ITT (image-to-text, the paper's main task): s(image, P1) > s(image, N) and s(image, P2) > s(image, N);
- TOT (text-only): s(P1, P2) > s(P1, N) and s(P1, P2) > s(P2, N);
- also the script's "Image-P1-Neg" and "Image-P2-Neg" accuracies (run_info.json, `details`).
Subsets: the 5 official files (replace_att, replace_obj, replace_rel, swap_att, swap_obj), each a JSON list of
{id, filename, caption, caption2, negative_caption}; images from COCO val2017 (`--coco_val2017_dir`, as
SugarCrepe). Not in the official scripts: `itt_replace` / `itt_swap` (and `tot_*`) are the unweighted means of
their subsets and `itt_avg` / `tot_avg` the mean of those two, as our SugarCrepe averages.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import (EvalDataError, EvalTask, Table, TaskResult, check_annotation_folder, check_path, load_subset_files,
                     percent, read_json)

SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
GROUPS = {"replace": ("replace_obj", "replace_att", "replace_rel"), "swap": ("swap_obj", "swap_att")}
FIELDS = ("filename", "caption", "caption2", "negative_caption")


def load_subset(path: str, image_dir: str) -> tuple[list[ImageRef], list[str], list[str], list[str]]:
    """One SugarCrepe++ file (a list of records) as parallel lists: images, P1, P2, negatives."""
    data = read_json(path, "SugarCrepe++ annotations")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{id, filename, caption, caption2, negative_caption}}")
    refs, p1, p2, neg = [], [], [], []
    for n, rec in enumerate(data):
        if not isinstance(rec, dict) or any(k not in rec for k in FIELDS):
            raise ValueError(f"{path}: record {n} should be an object with {list(FIELDS)}, got {rec!r:.200}")
        refs.append(ImageRef(os.path.join(image_dir, rec["filename"])))
        p1.append(rec["caption"])
        p2.append(rec["caption2"])
        neg.append(rec["negative_caption"])
    return refs, p1, p2, neg


def check(data: EvalDataConfig) -> bool:
    if not check_annotation_folder(data.sugarcrepe_pp_dir, "sugarcrepe_pp_dir", SUBSETS, "SugarCrepe++"):
        return False
    if not check_path(data.coco_val2017_dir, "coco_val2017_dir"):
        raise EvalDataError("SugarCrepe++ needs its images: pass --coco_val2017_dir (COCO val2017 folder)")
    return True


def subset_decisions(img: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, neg: torch.Tensor) -> dict:
    """Per example, from L2-normalised [N, D] features: the six cosines and the official decisions."""
    s = {"img_p1": (img * p1).sum(-1), "img_p2": (img * p2).sum(-1), "img_neg": (img * neg).sum(-1),
         "p1_p2": (p1 * p2).sum(-1), "p1_neg": (p1 * neg).sum(-1), "p2_neg": (p2 * neg).sum(-1)}
    correct = {"itt": (s["img_p1"] > s["img_neg"]) & (s["img_p2"] > s["img_neg"]),
               "tot": (s["p1_p2"] > s["p1_neg"]) & (s["p1_p2"] > s["p2_neg"]),
               "img_p1": s["img_p1"] > s["img_neg"], "img_p2": s["img_p2"] > s["img_neg"]}
    return {"scores": torch.stack(list(s.values()), dim=1), "score_names": list(s),
            **{k: v.tolist() for k, v in correct.items()}}


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    loaded = load_subset_files(data.sugarcrepe_pp_dir, SUBSETS, load_subset, result, data.coco_val2017_dir)
    # every image and caption of all subsets in one pass (shared images and texts encoded once)
    img = encoder.encode_images([r for v in loaded.values() for r in v[0]], task="sugarcrepe_pp")
    txt = encoder.encode_texts([t for v in loaded.values() for part in v[1:] for t in part], task="sugarcrepe_pp")
    i_off = t_off = 0
    for name, (refs, p1, p2, neg) in loaded.items():
        n = len(refs)
        feats = [txt[t_off + k * n : t_off + (k + 1) * n] for k in range(3)]
        items = subset_decisions(img[i_off : i_off + n], *feats)
        i_off, t_off = i_off + n, t_off + 3 * n
        result.items[name] = items
        result.count(name, n)
        result.scores[f"{name}_itt"] = percent(float(np.mean(items["itt"]))) if n else 0.0
        result.scores[f"{name}_tot"] = percent(float(np.mean(items["tot"]))) if n else 0.0
        result.details[name] = {"image_p1_neg": percent(float(np.mean(items["img_p1"]))) if n else 0.0,
                                "image_p2_neg": percent(float(np.mean(items["img_p2"]))) if n else 0.0,
                                "positive_equals_negative": sum(a == c for a, c in zip(p1, neg))}
    for kind in ("itt", "tot"):
        means = {}
        for group, members in GROUPS.items():
            if all(f"{m}_{kind}" in result.scores for m in members):
                means[group] = float(np.mean([result.scores[f"{m}_{kind}"] for m in members]))
                result.scores[f"{kind}_{group}"] = round(means[group], 2)
        if len(means) == len(GROUPS):
            result.scores[f"{kind}_avg"] = round(float(np.mean(list(means.values()))), 2)
    return result


def _columns(kind: str) -> tuple[tuple[str, str], ...]:
    label = kind.upper()
    return tuple((f"{label} {name.replace('_', ' ')}", f"{name}_{kind}") for name in SUBSETS) + (
        (f"{label} Replace", f"{kind}_replace"), (f"{label} Swap", f"{kind}_swap"), (f"{label} Avg.", f"{kind}_avg"))


TASK = EvalTask(
    name="sugarcrepe_pp", data_options=("sugarcrepe_pp_dir", "coco_val2017_dir"),
    order=8, run=run, check=check,
    description="SugarCrepe++: two positive captions against one negative, image-to-text (ITT) and text-only (TOT), "
                "5 subsets (beyond the paper)",
    suite=(("SugarCrepe++ ITT", "itt_avg"),),
    table=Table("SugarCrepe++ (beyond the paper)", _columns("itt") + _columns("tot")),
)
