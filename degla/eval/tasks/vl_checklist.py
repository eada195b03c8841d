"""VL-CheckList (Zhao et al., 2022): Object, Attribute and Relation, each broken into types, from JSON lists of
`[image_path, {"POS": [captions], "NEG": [captions]}]` over four corpora (VG, VAW on VG images, SWiG, HAKE).

Scored as the official ITC evaluation (om-ai-lab/VL-CheckList, `vl_checklist/data_loader.py::load_itc_samples`,
`vl_checklist/evaluate.py::Evaluate.eval` with `TASK: "itc"`) and averaged as its `radar.py::generate_chart`
with `corpus.json` (and the Object / Attribute / Relation means of the VL-CheckList evaluation of DCI,
facebookresearch/DCI `eval/run_vlc.py::score_vlc`, which CLIP papers report):
- an entry is kept only if its image exists (`os.path.exists`, the data loader's filter; the dropped ones are
  counted); of each file the first `MAX_NUM / 2` kept entries are scored (`--vl_checklist_max_num`, the config's
  MAX_NUM: 2000 in the official sample config and in DCI's; 0 scores all);
- the entry's first POS caption against its first NEG caption: correct iff score(image, POS[0]) >
  score(image, NEG[0]), strict (a tie is wrong); for a CLIP the score is the cosine (DCI's wrapper returns the
  logit, the cosine times a positive constant: the same decisions);
- a file's accuracy is rounded to 4 decimals (`total_acc`), a type's source score is the mean over its files, a
  type's score the mean over its sources (13 types: Object size large / medium / small, location center / mid /
  margin; Attribute color, material, action, size, state; Relation action, spatial); Object / Attribute /
  Relation are the means of their 6 / 5 / 2 types; `avg` (ours) the mean of the three.
A type or group is only written when all its files ran (a source whose image folder is not given is not run).
"""

from __future__ import annotations

import os

import numpy as np

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import EvalDataError, EvalTask, Table, TaskResult, check_path, pairwise_accuracies, read_json

ROOTS = {"vg": "vl_checklist_vg_dir", "swig": "vl_checklist_swig_dir", "hake": "vl_checklist_hake_dir"}
SWIG_ROLES = ("agent", "destination", "item", "tool")


def _object_sources(aspect: str, value: str) -> dict[str, list[tuple[str, str, str]]]:
    """corpus.json's sources of an Object type: (file key, annotation path under data/, image root)."""
    kind = f"Object_{aspect}_{value}"
    sub = aspect.lower()
    return {
        "vg": [(f"{kind}_vg_{r}", f"Object/{aspect}/vg_{sub}/vg_{r}_{value}.json", "vg") for r in ("obj", "subj")],
        "swig": [(f"{kind}_swig_{r}", f"Object/{aspect}/swig_{sub}/swig_{r}/swig_{r}_{value}.json", "swig")
                 for r in SWIG_ROLES],
        "hake": [(f"{kind}_hake", f"Object/{aspect}/hake_{sub}/hake_obj_{value}.json", "hake")],
    }


def _attribute_sources(value: str) -> dict[str, list[tuple[str, str, str]]]:
    return {src: [(f"Attribute_{value}_{src}", f"Attribute/{src}/{value}.json", "vg")] for src in ("vg", "vaw")}


# type key -> (group, header, {source: [(file key, annotation path, image root)]}), in corpus.json's order
TYPES: dict[str, tuple[str, str, dict]] = {
    **{f"size_{v}": ("object", f"O-{v.capitalize()}", _object_sources("Size", v))
       for v in ("large", "medium", "small")},
    **{f"location_{v}": ("object", f"O-{v.capitalize()}", _object_sources("Location", v))
       for v in ("center", "mid", "margin")},
    **{f"attribute_{v}": ("attribute", f"A-{v.capitalize()}", _attribute_sources(v))
       for v in ("color", "material", "action", "size", "state")},
    "relation_action": ("relation", "R-Action", {
        "vg": [("Relation_action_vg", "Relation/vg/action.json", "vg")],
        "swig": [("Relation_action_swig", "Relation/swig_action.json", "swig")],
        "hake": [("Relation_action_hake", "Relation/hake_action.json", "hake")]}),
    "relation_spatial": ("relation", "R-Spatial", {"vg": [("Relation_spatial_vg", "Relation/vg/spatial.json", "vg")]}),
}
GROUPS = ("object", "attribute", "relation")


def files() -> list[tuple[str, str, str]]:
    """Every (file key, annotation path, image root) of corpus.json (51 files)."""
    return [f for _, _, sources in TYPES.values() for fs in sources.values() for f in fs]


def data_root(folder: str) -> str:
    """The folder holding `Object/`, `Attribute/`, `Relation/`: the repository's `data/` or the folder itself."""
    inner = os.path.join(folder, "data")
    return inner if any(os.path.isdir(os.path.join(inner, g)) for g in ("Object", "Attribute", "Relation")) else folder


def load_file(path: str, image_root: str, max_num: int) -> tuple[list[ImageRef], list[str], list[str], int]:
    """One annotation file as the ITC loader reads it: entries whose image exists, the first MAX_NUM/2 of them,
    first POS and first NEG caption. Returns (refs, positives, negatives, entries dropped for a missing image)."""
    data = read_json(path, "VL-CheckList annotations")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of [image_path, {{\"POS\": [...], \"NEG\": [...]}}]")
    refs, pos, neg, missing = [], [], [], 0
    for n, entry in enumerate(data):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], dict)
                and entry[1].get("POS") and entry[1].get("NEG")):
            raise ValueError(f"{path}: entry {n} should be [image_path, {{\"POS\": [...], \"NEG\": [...]}}] with "
                             f"non-empty lists, got {entry!r:.200}")
        image = os.path.join(image_root, entry[0])
        if not os.path.exists(image):
            missing += 1
            continue
        refs.append(ImageRef(image))
        pos.append(entry[1]["POS"][0])
        neg.append(entry[1]["NEG"][0])
    if max_num:
        keep = int(max_num / 2)
        refs, pos, neg = refs[:keep], pos[:keep], neg[:keep]
    return refs, pos, neg, missing


def check(data: EvalDataConfig) -> bool:
    if not check_path(data.vl_checklist_dir, "vl_checklist_dir"):
        return False
    root = data_root(data.vl_checklist_dir)
    if not any(os.path.isfile(os.path.join(root, p)) for _, p, _ in files()):
        raise EvalDataError(f"--vl_checklist_dir {data.vl_checklist_dir} holds none of the VL-CheckList files "
                            "(e.g. data/Attribute/vg/color.json): pass the repository's folder or its data/")
    given = [check_path(getattr(data, option), option) for option in ROOTS.values()]
    if not any(given):
        raise EvalDataError("VL-CheckList needs its images: pass at least one of "
                            + ", ".join(f"--{o}" for o in ROOTS.values()))
    if data.vl_checklist_max_num < 0:
        raise EvalDataError(f"--vl_checklist_max_num must be >= 0 (0 scores every entry), got "
                            f"{data.vl_checklist_max_num}")
    return True


def _mean(values) -> float:
    return float(np.mean(values))


def aggregate(file_acc: dict[str, float]) -> dict[str, float]:
    """radar.py / score_vlc: type = mean over sources of the mean over files; groups = means of their types;
    `avg` = mean of the groups. `file_acc` holds fractions rounded to 4 decimals (`total_acc`). Types and groups
    with a file missing are left out. Returns percents."""
    types = {}
    for key, (_, _, sources) in TYPES.items():
        if all(f in file_acc for fs in sources.values() for f, _, _ in fs):
            types[key] = _mean([_mean([file_acc[f] for f, _, _ in fs]) for fs in sources.values()])
    groups = {g: _mean([v for k, v in types.items() if TYPES[k][0] == g]) for g in GROUPS
              if all(k in types for k, t in TYPES.items() if t[0] == g)}
    out = {k: round(100 * v, 2) for k, v in {**types, **groups}.items()}
    if len(groups) == len(GROUPS):
        out["avg"] = round(100 * _mean(list(groups.values())), 2)
    return out


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    root = data_root(data.vl_checklist_dir)
    loaded = {}
    for key, rel, image_root in files():
        path = os.path.join(root, rel)
        folder = getattr(data, ROOTS[image_root])
        if not os.path.isfile(path):
            result.skipped[key] = f"{path} not found"
        elif not folder:
            result.skipped[key] = f"no --{ROOTS[image_root]}"
        else:
            refs, pos, neg, missing = load_file(path, folder, data.vl_checklist_max_num)
            result.count(key, len(refs), {f"image not found under --{ROOTS[image_root]}": missing})
            if refs:
                loaded[key] = (refs, pos, neg)
            else:
                result.skipped[key] = f"no entry with its image under --{ROOTS[image_root]}"
    file_acc: dict[str, float] = {}
    if loaded:
        scored = TaskResult()
        pairwise_accuracies(encoder, "vl_checklist", loaded, scored)
        result.items = scored.items
        # `total_acc` of the official output: the fraction correct rounded to 4 decimals
        file_acc = {k: round(sum(v["correct"]) / len(v["correct"]), 4) for k, v in scored.items.items()}
    result.details["files"] = {k: round(100 * v, 2) for k, v in file_acc.items()}
    result.scores.update(aggregate(file_acc))
    return result


TASK = EvalTask(
    name="vl_checklist", data_options=("vl_checklist_dir", *ROOTS.values()),
    order=9, run=run, check=check,
    description="VL-CheckList: Object / Attribute / Relation, the first positive against the first negative "
                "caption (ITC, 51 files over VG, VAW, SWiG, HAKE; beyond the paper)",
    suite=(("VL-CheckList", "avg"),),
    table=Table("VL-CheckList (beyond the paper)", tuple((h, k) for k, (_, h, _) in TYPES.items()) + (
        ("Object", "object"), ("Attribute", "attribute"), ("Relation", "relation"), ("Avg.", "avg"))),
)
