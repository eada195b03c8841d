"""ARO (Yuksekgonul et al., 2023): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

Protocol, as in the ARO authors' code (`mertyg/vision-language-models-are-bows`):
- VG-Relation / VG-Attribution: the image is cropped to the annotated box (`bbox_x, bbox_y, bbox_w, bbox_h`);
  candidates are `[false_caption, true_caption]` and the prediction is `np.argmax` (a tie picks the false
  caption: the "strict" tie rule). The reported number is the **macro accuracy**: VG-Relation averages the
  per-relation accuracy over relations not in ARO's list of symmetric/unsuitable relations (shipped in
  data/aro_protocol.json); VG-Attribution averages the per-attribute-pair accuracy over pairs with at least 25
  examples.
- COCO-Order / Flickr30k-Order: every Karpathy-test caption gives one example with 5 candidates (the caption
  and its 4 perturbations, see `order_perturbations`); precision@1 with `np.argmax(scores) == 0`, the true
  caption first, so in exact arithmetic a tie with a perturbation counts as correct (the "lenient" tie rule).
  Ties are common: a perturbation that changes nothing (a caption with one noun and no adjective, a trigram
  shuffle that draws the identity) is the true caption again. ARO's loop encodes each candidate position in
  its own batch and scores with an `einsum`, so whether such an exact tie survives depends on float noise
  (batch size, tensor width, hardware). Here every distinct (image, caption) pair is scored once
  (`candidate_scores`), so identical candidates tie exactly and the rule decides, whatever the batch size or
  the order of the candidates.
- `avg`: mean of the four numbers (table 4), reported only when all four ran.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import (EvalDataError, EvalTask, Table, TaskResult, candidate_scores, check_path, load_metric, percent,
                     read_json, require_keys)
from .karpathy import check_karpathy, load_karpathy
from .order_perturbations import check_tagger, make_tagger, order_candidates

_PROTOCOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "aro_protocol.json")
VG_KEYS = ("image_path", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", "false_caption")


@functools.lru_cache(maxsize=1)
def aro_protocol() -> dict:
    with open(_PROTOCOL, encoding="utf-8") as f:
        return json.load(f)


def load_vg(path: str, image_dir: str, group_key: str):
    """VG-Relation (`group_key="relation"`) or VG-Attribution (`"attribution"`) records."""
    data = read_json(path, "ARO annotations")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of ARO records")
    refs, false_caps, true_caps, groups = [], [], [], []
    for i, rec in enumerate(data):
        require_keys(rec, VG_KEYS + (("relation_name",) if group_key == "relation" else ("attributes",)), path, i)
        x, y, w, h = (float(rec[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
        refs.append(ImageRef(os.path.join(image_dir, rec["image_path"]), (x, y, x + w, y + h)))
        false_caps.append(rec["false_caption"])
        true_caps.append(rec["true_caption"])
        groups.append(rec["relation_name"] if group_key == "relation"
                      else f"{rec['attributes'][0]}_{rec['attributes'][1]}")
    return refs, false_caps, true_caps, groups


def _score_vg(encoder, result: TaskResult, name: str, path: str, image_dir: str, group_key: str):
    refs, false_caps, true_caps, groups = load_vg(path, image_dir, group_key)
    scores = candidate_scores(encoder, f"aro_{name}", refs, [[f, t] for f, t in zip(false_caps, true_caps)])
    n = len(refs)
    proto = aro_protocol()
    kwargs = ({"exclude_groups": proto["excluded_relations"]} if group_key == "relation"
              else {"min_group_size": proto["vg_attribution_min_group_size"]})
    out = load_metric("multiple_choice_accuracy").compute(
        scores=scores.tolist(), labels=[1] * n, groups=groups, tie_break="strict", return_correct=True, **kwargs)
    result.items[name] = {"scores": scores, "labels": [1] * n, "correct": out["correct"], "groups": groups}
    result.details[name] = {"micro_accuracy": percent(out["accuracy"]), "groups_in_macro": out["macro_groups"],
                            "groups_total": len(out["group_count"])}
    excluded = set(proto["excluded_relations"]) if group_key == "relation" else set()
    outside = sum(c for g, c in out["group_count"].items()
                  if g in excluded or c < kwargs.get("min_group_size", 1))
    reason = ("relation excluded by ARO (symmetric)" if group_key == "relation"
              else f"attribute pair with < {proto['vg_attribution_min_group_size']} examples")
    result.count(name, n - outside, {f"scored but outside the macro mean: {reason}": outside})
    if out["macro_groups"] == 0:
        result.skipped[name] = f"no group left for the macro mean (every example: {reason})"
    else:
        result.scores[name] = percent(out["macro_accuracy"])


def _score_order(encoder, result: TaskResult, name: str, json_path: str, image_root: str, tagger, seed: int):
    refs, captions = load_karpathy(json_path, image_root)
    img_refs = [r for r, caps in zip(refs, captions) for _ in caps]  # one example per caption
    flat = [c for caps in captions for c in caps]
    candidates = order_candidates(flat, tagger, seed=seed)
    scores = candidate_scores(encoder, f"aro_{name}", img_refs, candidates)
    out = load_metric("multiple_choice_accuracy").compute(
        scores=scores.tolist(), labels=[0] * len(flat), tie_break="lenient", return_correct=True)
    result.scores[name] = percent(out["accuracy"])
    result.items[name] = {"scores": scores, "labels": [0] * len(flat), "correct": out["correct"],
                          "candidates": candidates}
    exact_ties = sum(cands[0] in cands[1:] for cands in candidates)
    result.details[name] = {"pos_tagger": tagger.name, "seed": seed,
                            "examples_with_a_perturbation_equal_to_the_caption": exact_ties}
    result.count(name, len(flat))


VG_PARTS = (("vg_relation", "visual_genome_relation.json", "relation"),
            ("vg_attribution", "visual_genome_attribution.json", "attribution"))


def _order_parts(data: EvalDataConfig):
    return (("coco_order", data.coco_karpathy_test_json, data.coco_image_root, "coco_karpathy_test_json",
             "coco_image_root"),
            ("flickr30k_order", data.flickr30k_test_json, data.flickr30k_image_root, "flickr30k_test_json",
             "flickr30k_image_root"))


def check(data: EvalDataConfig) -> bool:
    has_vg = check_path(data.aro_dir, "aro_dir")
    if has_vg and not any(os.path.exists(os.path.join(data.aro_dir, f)) for _, f, _ in VG_PARTS):
        if not (data.coco_karpathy_test_json or data.flickr30k_test_json):
            raise EvalDataError(f"--aro_dir {data.aro_dir} holds neither {VG_PARTS[0][1]} nor {VG_PARTS[1][1]}")
    if has_vg:
        check_path(data.aro_image_dir, "aro_image_dir")
    has_order = False
    for _, json_path, root, json_opt, root_opt in _order_parts(data):
        has_order |= check_karpathy(json_path, root, json_opt, root_opt)
    if has_order:
        check_tagger(data.order_pos_lexicon)
    return has_vg or has_order


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    for name, fname, key in VG_PARTS:
        path = os.path.join(data.aro_dir, fname) if data.aro_dir else None
        if path is None:
            result.skipped[name] = "no --aro_dir"
        elif not os.path.exists(path):
            result.skipped[name] = f"{path} not found"
        else:
            _score_vg(encoder, result, name, path, data.aro_image_dir, key)
    tagger = None
    for name, json_path, root, opt, _ in _order_parts(data):
        if not json_path:
            result.skipped[name] = f"no --{opt}"
            continue
        tagger = tagger or make_tagger(data.order_pos_lexicon)
        _score_order(encoder, result, name, json_path, root, tagger, seed)
    parts = ("vg_relation", "vg_attribution", "coco_order", "flickr30k_order")
    if all(p in result.scores for p in parts):
        result.scores["avg"] = round(float(np.mean([result.scores[p] for p in parts])), 2)
    return result


TASK = EvalTask(
    name="aro", data_options=("aro_dir", "aro_image_dir", "coco_karpathy_test_json", "coco_image_root",
                              "flickr30k_test_json", "flickr30k_image_root", "order_pos_lexicon"),
    order=3, run=run, check=check,
    description="ARO: VG-Relation, VG-Attribution (true vs false caption), COCO/Flickr30k-Order (caption vs 4 "
                "word-order perturbations)",
    suite=(("ARO", "avg"),),
    table=Table("Table 4: ARO", (("Relation", "vg_relation"), ("Attribute", "vg_attribution"),
                                 ("COCO-order", "coco_order"), ("Flickr-order", "flickr30k_order"), ("Avg.", "avg"))),
)
