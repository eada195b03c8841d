"""ARO (Yuksekgonul et al., 2023): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

Protocol, as in the ARO authors' code (`mertyg/vision-language-models-are-bows`):
- VG-Relation / VG-Attribution: the image is cropped to the annotated box (`bbox_x, bbox_y, bbox_w, bbox_h`);
  candidates are `[false_caption, true_caption]` and the prediction is `argmax` (a tie picks the false caption,
  i.e. strict). The reported number is the **macro accuracy**: VG-Relation averages the per-relation accuracy
  over relations not in ARO's list of symmetric/unsuitable relations (shipped in data/aro_protocol.json);
  VG-Attribution averages the per-attribute-pair accuracy over pairs with at least 25 examples.
- COCO-Order / Flickr30k-Order: every Karpathy-test caption gives one example with 5 candidates (the caption
  and its 4 perturbations, see `order_perturbations`); precision@1 with `argmax` where the true caption is
  index 0, so a tie with a perturbation (e.g. a one-noun caption whose noun shuffle is the identity) counts
  as correct, as in ARO.
- `avg`: mean of the four numbers (table 4), reported only when all four ran.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import TaskResult, load_metric, paired_scores, percent, read_json, require_keys
from .karpathy import load_karpathy
from .order_perturbations import make_tagger, order_candidates

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
        groups.append(rec["relation_name"] if group_key == "relation" else f"{rec['attributes'][0]}_{rec['attributes'][1]}")
    return refs, false_caps, true_caps, groups


def _score_vg(encoder, result: TaskResult, name: str, path: str, image_dir: str, group_key: str):
    refs, false_caps, true_caps, groups = load_vg(path, image_dir, group_key)
    img = encoder.encode_images(refs, task=f"aro_{name}")
    txt = encoder.encode_texts(false_caps + true_caps, task=f"aro_{name}")
    n = len(refs)
    scores = torch.stack([paired_scores(img, txt[:n]), paired_scores(img, txt[n:])], 1)
    proto = aro_protocol()
    kwargs = ({"exclude_groups": proto["excluded_relations"]} if group_key == "relation"
              else {"min_group_size": proto["vg_attribution_min_group_size"]})
    out = load_metric("multiple_choice_accuracy").compute(
        scores=scores.tolist(), labels=[1] * n, groups=groups, tie_break="first_index", **kwargs)
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
    img = encoder.encode_images(img_refs, task=f"aro_{name}")
    txt = encoder.encode_texts([c for cands in candidates for c in cands], task=f"aro_{name}")
    scores = torch.einsum("nd,ncd->nc", img, txt.view(len(flat), 5, -1))
    out = load_metric("multiple_choice_accuracy").compute(
        scores=scores.tolist(), labels=[0] * len(flat), tie_break="first_index")
    result.scores[name] = percent(out["accuracy"])
    result.details[name] = {"pos_tagger": tagger.name, "seed": seed}
    result.count(name, len(flat))


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    for name, fname, key in (("vg_relation", "visual_genome_relation.json", "relation"),
                             ("vg_attribution", "visual_genome_attribution.json", "attribution")):
        path = os.path.join(data.aro_dir, fname) if data.aro_dir else None
        if path is None:
            result.skipped[name] = "no --aro_dir"
        elif not os.path.exists(path):
            result.skipped[name] = f"{path} not found"
        else:
            _score_vg(encoder, result, name, path, data.aro_image_dir, key)
    tagger = None
    for name, json_path, root, opt in (
        ("coco_order", data.coco_karpathy_test_json, data.coco_image_root, "coco_karpathy_test_json"),
        ("flickr30k_order", data.flickr30k_test_json, data.flickr30k_image_root, "flickr30k_test_json"),
    ):
        if not json_path:
            result.skipped[name] = f"no --{opt}"
            continue
        tagger = tagger or make_tagger(data.order_pos_lexicon)
        _score_order(encoder, result, name, json_path, root, tagger, seed)
    parts = ("vg_relation", "vg_attribution", "coco_order", "flickr30k_order")
    if all(p in result.scores for p in parts):
        result.scores["avg"] = round(float(np.mean([result.scores[p] for p in parts])), 2)
    return result
