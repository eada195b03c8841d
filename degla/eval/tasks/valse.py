"""VALSE (Parcalabescu et al., 2022): pairwise accuracy, correct iff score(image, caption) > score(image, foil).

Protocol quirks:
- only examples whose `mturk.caption >= 2` are kept (at least 2 of 3 annotators validated the caption, the
  filter of the VALSE repository); the others are counted as skipped ("mturk.caption < 2");
- ties count as wrong (strict `>`);
- the image of an example comes from the source named in its `dataset` field, each with its own option;
  instruments whose source folder is not given are skipped (reported with the option to pass);
- the paper's table 2 columns: existence, plurality (plurals), counting (unweighted mean of counting-hard,
  counting-small-quant and counting-adversarial), spatial relations (relations), actions replacement,
  actant swap, coreference standard, coreference clean (coreference-hard), foil-it. `avg` is the unweighted
  mean of these 9 columns (the paper's own Avg. column does not equal that mean for any of its rows).
"""

from __future__ import annotations

import os
from collections import Counter

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import (EvalTask, Table, TaskResult, add_means, check_annotation_folder, check_path, pairwise_accuracies,
                     read_json, require_keys)

INSTRUMENTS = ("existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial",
               "relations", "action-replacement", "actant-swap", "coreference-standard", "coreference-hard",
               "foil-it")
# `dataset` field of a VALSE record -> EvalDataConfig option holding its images
SOURCES = {"visual7w": "valse_visual7w_dir", "coco2017": "valse_coco2017_dir", "coco_2017": "valse_coco2017_dir",
           "SWiG": "valse_swig_dir", "VisDial_v1.0": "valse_visdial_dir", "FOIL dataset": "valse_coco2014_dir"}
COLUMNS = {  # paper table 2 column -> instruments averaged into it
    "existence": ("existence",), "plurality": ("plurals",),
    "counting": ("counting-hard", "counting-small-quant", "counting-adversarial"),
    "spatial_relations": ("relations",), "action_replacement": ("action-replacement",),
    "actant_swap": ("actant-swap",), "coreference_standard": ("coreference-standard",),
    "coreference_clean": ("coreference-hard",), "foil_it": ("foil-it",),
}
MIN_MTURK_VOTES = 2


def load_instrument(path: str, data: EvalDataConfig):
    """Kept examples of one instrument as (refs, captions, foils) and the skip reasons counted."""
    records = read_json(path, "VALSE annotations")
    if not isinstance(records, dict):
        raise ValueError(f"{path}: expected an object {{id: record}}")
    refs, caps, foils, skipped = [], [], [], Counter()
    for rid, rec in records.items():
        require_keys(rec, ("dataset", "image_file", "caption", "foil", "mturk"), path, rid)
        if rec["mturk"].get("caption", 0) < MIN_MTURK_VOTES:
            skipped[f"mturk.caption < {MIN_MTURK_VOTES}"] += 1
            continue
        option = SOURCES.get(rec["dataset"])
        if option is None:
            raise ValueError(f"{path}: record {rid!r} has unknown image source {rec['dataset']!r} "
                             f"(known: {sorted(SOURCES)})")
        root = getattr(data, option)
        if not root:
            skipped[f"no --{option}"] += 1
            continue
        refs.append(ImageRef(os.path.join(root, rec["image_file"])))
        caps.append(rec["caption"])
        foils.append(rec["foil"])
    return refs, caps, foils, skipped


def check(data: EvalDataConfig) -> bool:
    if not check_annotation_folder(data.valse_dir, "valse_dir", INSTRUMENTS, "VALSE"):
        return False
    for option in sorted(set(SOURCES.values())):  # image folders that are given must exist
        check_path(getattr(data, option), option)
    return True


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    loaded = {}
    for name in INSTRUMENTS:
        path = os.path.join(data.valse_dir, f"{name}.json")
        if not os.path.exists(path):
            result.skipped[name] = f"{path} not found"
            continue
        refs, caps, foils, skipped = load_instrument(path, data)
        result.count(name, len(refs), skipped)
        if refs:
            loaded[name] = (refs, caps, foils)
        else:
            result.skipped[name] = "no example left to score"
    if loaded:
        pairwise_accuracies(encoder, "valse", loaded, result)
        add_means(result.scores, COLUMNS)
    return result


TASK = EvalTask(
    name="valse", data_options=("valse_dir", "valse_visual7w_dir", "valse_coco2017_dir", "valse_swig_dir",
                                "valse_visdial_dir", "valse_coco2014_dir"),
    order=1, run=run, check=check,
    description="VALSE: the caption against its foil, 11 instruments (validated examples only)",
    suite=(("VALSE", "avg"),),
    table=Table("Table 2: VALSE", (
        ("Existence", "existence"), ("Plurality", "plurality"), ("Counting", "counting"),
        ("Sp.rel.", "spatial_relations"), ("Action repl.", "action_replacement"), ("Actant swap", "actant_swap"),
        ("Coref. standard", "coreference_standard"), ("Coref. clean", "coreference_clean"), ("Foil-it!", "foil_it"),
        ("Avg.", "avg"))),
)
