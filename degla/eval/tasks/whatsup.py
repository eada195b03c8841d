"""What'sUp (Kamath et al., EMNLP 2023): spatial relations, one image against captions that differ only in the
preposition. Six subsets, the first caption of each always the correct one:
- Controlled-A (`controlled_images_dataset.json`, photos in `controlled_images/`) and Controlled-B
  (`controlled_clevr_dataset.json`, CLEVR renders in `controlled_clevr/`): records
  `{"image_path": "data/controlled_images/<obj1>_<relation>_<obj2>.jpeg", "caption_options": [4 captions]}`;
- COCO-QA one- and two-object (`coco_qa_one_obj.json`, `coco_qa_two_obj.json`, COCO `val2017/`) and VG-QA
  one- and two-object (`vg_qa_one_obj.json`, `vg_qa_two_obj.json`, `vg_images/`; the paper's GQA-spatial):
  records `[image_id, correct caption, wrong caption]`.

Scored as the official code (amitakamath/whatsup_vlms, `main_aro.py` with each dataset's `evaluate_scores` in
`dataset_zoo/aro_datasets.py`):
- the prediction is `np.argmax` over the captions' scores, correct iff it is the first caption: a tie with the
  first caption counts as correct (the "lenient" tie rule); the individual accuracy is the mean over records;
- Controlled-A/B also give pair and set accuracy, keyed exactly as `Controlled_Images` keys them from the image
  file name: `<obj1>_<relation>_..._<obj2>.jpeg` belongs to the set `(<obj1>, <obj2>)` (first and last `_` parts,
  the last without its 5-character `.jpeg`) under the relation `<relation>` (the second `_` part: left, right, on,
  under for A; left, right, in-front, behind for B). A pair (left/right; on/under or in-front/behind) is right when
  both its images are; a set when all four are. Pair accuracy = pairs right / (records / 2), set accuracy = sets
  right / (records / 4), as the official code divides;
- per-preposition accuracies (the official `result_records`) go to run_info.json (`details.by_preposition`);
- the paper's table-1 macro-averages: `whatsup` = mean of Controlled-A and -B, `coco_spatial` = mean of COCO-QA
  one- and two-object, `gqa_spatial` = mean of VG-QA one- and two-object (individual accuracies); `avg` (ours) =
  the mean of the three, written only when all six subsets ran.

`--whatsup_dir` is the folder the official code reads (its `data/`): each JSON file beside its image folder. The
release writes `image_path` relative to the repository's root (`data/controlled_images/<file>`); the harness reads
`<file>` from the image folder beside the JSON file. COCO images come from `<whatsup_dir>/val2017/` (else
`--coco_val2017_dir`, the same COCO val2017 images), VG images from `<whatsup_dir>/vg_images/`.
"""

from __future__ import annotations

import os

import numpy as np

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import (EvalDataError, EvalTask, Table, TaskResult, add_means, candidate_scores, check_path, load_metric,
                     percent, read_json)

# subset -> (annotation file, image folder beside it, kind)
SUBSETS = {
    "controlled_a": ("controlled_images_dataset.json", "controlled_images", "A"),
    "controlled_b": ("controlled_clevr_dataset.json", "controlled_clevr", "B"),
    "coco_one": ("coco_qa_one_obj.json", "val2017", "coco"),
    "coco_two": ("coco_qa_two_obj.json", "val2017", "coco"),
    "vg_one": ("vg_qa_one_obj.json", "vg_images", "vg"),
    "vg_two": ("vg_qa_two_obj.json", "vg_images", "vg"),
}
# table 1's macro-averages
GROUPS = {"whatsup": ("controlled_a", "controlled_b"), "coco_spatial": ("coco_one", "coco_two"),
          "gqa_spatial": ("vg_one", "vg_two")}
# the two pairs of opposite relations of each controlled subset (the keys of the official `eval_dict`)
PAIRS = {"A": (("left", "right"), ("on", "under")), "B": (("left", "right"), ("in-front", "behind"))}


def set_key(image_path: str) -> tuple[tuple[str, str], str]:
    """((obj1, obj2), relation) of a controlled image, as `Controlled_Images` splits the file name."""
    parts = image_path.split("/")[-1].split("_")
    return (parts[0], parts[-1][:-5]), parts[1]


def controlled_preposition(image_path: str, kind: str) -> str:
    """The relation a controlled record is counted under in the per-preposition accuracies (`all_prepositions`)."""
    if "left_of" in image_path:
        return "left_of"
    if "right_of" in image_path:
        return "right_of"
    if kind == "A":
        return "on" if "_on_" in image_path else "under"
    return "in-front_of" if "_in-front_of_" in image_path else "behind"


def qa_preposition(caption: str, kind: str, two_objects: bool) -> str:
    """COCO_QA / VG_QA's `all_prepositions`: the last word (one object), else the first relation phrase found."""
    if not two_objects:
        return caption.split()[-1]
    phrases = (("left of", "left"), ("right of", "right"))
    phrases += (("above", "above"),) if kind == "coco" else (("front of", "front"), ("behind", "behind"))
    for phrase, name in phrases:
        if phrase in caption:
            return name
    return "below" if kind == "coco" else "top"


def pair_and_set_accuracy(image_paths: list[str], correct: list[bool], kind: str) -> tuple[float, float]:
    """`Controlled_Images.evaluate_scores`' pair and set accuracy (percent) from the per-record decisions."""
    sets: dict[tuple[str, str], dict[str, bool]] = {}
    for path in image_paths:
        sets.setdefault(set_key(path)[0], {r: False for pair in PAIRS[kind] for r in pair})
    for path, ok in zip(image_paths, correct):
        key, relation = set_key(path)
        sets[key][relation] = bool(ok)  # a later record of the same set and relation overwrites, as there
    pairs_right = sum(bool(d[a] and d[b]) for d in sets.values() for a, b in PAIRS[kind])
    sets_right = sum(sum(d.values()) == 4 for d in sets.values())
    n = len(image_paths)
    return pairs_right * 100 / (n / 2), sets_right * 100 / (n / 4)


def image_dir(data: EvalDataConfig, folder: str, kind: str) -> tuple[str, str]:
    """(image folder of a subset, the option that sets it): the folder beside the JSON files; for COCO-QA
    `--coco_val2017_dir` when `<whatsup_dir>/val2017` does not exist."""
    own = os.path.join(data.whatsup_dir, folder)
    if kind == "coco" and not os.path.isdir(own) and data.coco_val2017_dir:
        return data.coco_val2017_dir, "coco_val2017_dir"
    return own, "whatsup_dir"


def load_subset(path: str, images: str, kind: str) -> tuple[list[ImageRef], list[list[str]], list[str], list[str]]:
    """(image refs, caption options with the correct one first, prepositions, image keys) of one file."""
    data = read_json(path, "What'sUp annotations")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of What'sUp records")
    refs, options, preps, keys = [], [], [], []
    for n, rec in enumerate(data):
        if kind in PAIRS:
            if not (isinstance(rec, dict) and isinstance(rec.get("image_path"), str)
                    and isinstance(rec.get("caption_options"), list) and len(rec["caption_options"]) == 4):
                raise ValueError(f"{path}: record {n} should be {{\"image_path\": ..., \"caption_options\": "
                                 f"[4 captions]}}, got {rec!r:.200}")
            name = rec["image_path"].split("/")[-1]
            refs.append(ImageRef(os.path.join(images, name)))
            options.append(list(rec["caption_options"]))
            preps.append(controlled_preposition(rec["image_path"], kind))
            keys.append(rec["image_path"])
        else:
            if not (isinstance(rec, list) and len(rec) == 3):
                raise ValueError(f"{path}: record {n} should be [image_id, correct caption, wrong caption], got "
                                 f"{rec!r:.200}")
            file = f"{str(rec[0]).zfill(12)}.jpg" if kind == "coco" else f"{rec[0]}.jpg"
            refs.append(ImageRef(os.path.join(images, file)))
            options.append([rec[1], rec[2]])
            preps.append(qa_preposition(rec[1], kind, two_objects=path.endswith("_two_obj.json")))
            keys.append(str(rec[0]))
    return refs, options, preps, keys


def check(data: EvalDataConfig) -> bool:
    if not check_path(data.whatsup_dir, "whatsup_dir"):
        return False
    if not any(os.path.isfile(os.path.join(data.whatsup_dir, f)) for f, _, _ in SUBSETS.values()):
        raise EvalDataError(f"--whatsup_dir {data.whatsup_dir} holds none of the What'sUp files "
                            f"({', '.join(f for f, _, _ in SUBSETS.values())}): pass the folder the official code "
                            "reads (its data/)")
    return True


def by_preposition(preps: list[str], correct: list[bool]) -> dict[str, dict]:
    """The official `result_records`: accuracy and count of each preposition (sorted, as `np.unique`)."""
    p, c = np.asarray(preps), np.asarray(correct, dtype=bool)
    return {str(u): {"accuracy": percent(float(c[p == u].mean())), "count": int((p == u).sum())} for u in np.unique(p)}


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    metric = load_metric("multiple_choice_accuracy")
    result.details["by_preposition"] = {}
    for subset, (file, folder, kind) in SUBSETS.items():
        path = os.path.join(data.whatsup_dir, file)
        images, option = image_dir(data, folder, kind)
        if not os.path.isfile(path):
            result.skipped[subset] = f"{path} not found"
            continue
        if not os.path.isdir(images):
            result.skipped[subset] = f"image folder {images} not found (--{option})"
            continue
        refs, options, preps, keys = load_subset(path, images, kind)
        if not refs:
            result.skipped[subset] = f"{path} holds no record"
            continue
        scores = candidate_scores(encoder, "whatsup", refs, options)
        out = metric.compute(scores=scores.tolist(), labels=[0] * len(refs), tie_break="lenient", return_correct=True)
        result.scores[subset] = percent(out["accuracy"])
        if kind in PAIRS:
            pair, full_set = pair_and_set_accuracy(keys, out["correct"], kind)
            result.scores[f"{subset}_pair"], result.scores[f"{subset}_set"] = round(pair, 2), round(full_set, 2)
        result.count(subset, len(refs))
        result.items[subset] = {"scores": scores, "labels": [0] * len(refs), "correct": out["correct"], "keys": keys}
        result.details["by_preposition"][subset] = by_preposition(preps, out["correct"])
    add_means(result.scores, GROUPS)
    return result


TASK = EvalTask(
    name="whatsup", data_options=("whatsup_dir",),
    order=10, run=run, check=check,
    description="What'sUp: spatial prepositions, Controlled-A/B (individual, pair, set), COCO-QA and VG-QA one- and "
                "two-object, with table 1's macro-averages (beyond the paper)",
    suite=(("What'sUp", "avg"),),
    table=Table("What'sUp (beyond the paper)", (
        ("Ctrl-A", "controlled_a"), ("A pair", "controlled_a_pair"), ("A set", "controlled_a_set"),
        ("Ctrl-B", "controlled_b"), ("B pair", "controlled_b_pair"), ("B set", "controlled_b_set"),
        ("COCO one", "coco_one"), ("COCO two", "coco_two"), ("GQA one", "vg_one"), ("GQA two", "vg_two"),
        ("What'sUp (A, B)", "whatsup"), ("COCO-spatial", "coco_spatial"), ("GQA-spatial", "gqa_spatial"),
        ("Avg.", "avg"))),
)
