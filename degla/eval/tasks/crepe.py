"""CREPE (Ma et al., CVPR 2023): image-to-text retrieval of a Visual Genome region's caption among its hard
negatives, for systematicity (seen / unseen compounds; negatives `atom`, `comp`, `combined`) and productivity
(captions of complexity 4 to 12; negatives `atom`, `swap`, `negate`).

Scored as the official evaluation (RAIVNLab/CREPE, `crepe_compo_eval_open_clip.py` with `crepe_eval_utils.py`,
the one-to-many setting every script of the repository uses):
- each CSV row is one query: the image `<image_id>.jpg` (looked up in `VG_100K/`, then `VG_100K_2/`) cropped to the
  region (`x, y, width, height`; PIL's crop, which pads outside the image with black, as torchvision's `TF.crop`
  on a PIL image), against `[caption] + hard negatives` (the row's `valid_hard_negs_<type>` for systematicity, its
  `hard_negs` for productivity: a Python list literal); the rows may have different numbers of negatives;
- the caption's rank among them by descending cosine (`get_one2many_rank`; an exact tie with the caption ranks
  the caption first, as a stable sort does: the official `torch.argsort` leaves exact ties to the sort);
- per file, Recall@1 (the paper's metric, in results.json) and Recall@3/5/10, mean and median rank
  (`get_one2many_metrics`, in run_info.json `details.files`).
Results: `prod_<type>_<complexity>` for each productivity file, `prod_<type>` the mean over complexities 4-12 (the
paper's figures plot each complexity), `prod` the mean of the three types; `syst_<seen|unseen>_<type>` and `syst`
their mean (ours). Systematicity is only meaningful for models pretrained on CC12M, YFCC15M or LAION-400M (the
authors' note): its files are per pretraining set (`syst_vg_hard_negs_<split>_in_<cc12m|yfcc|laion>.csv`) and are
scored only when `--crepe_train_dataset` names one.

`--crepe_dir` is the repository's `data/` (or a folder) holding `syst_hard_negatives/` and/or
`prod_hard_negatives/` as the zips unpack; `--crepe_vg_dir` the Visual Genome folder holding `VG_100K/` and
`VG_100K_2/`.
"""

from __future__ import annotations

import ast
import csv
import os

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import EvalDataError, EvalTask, Table, TaskResult, check_path, percent, ragged_scores

SYST_TYPES = ("atom", "comp", "combined")
SYST_SPLITS = ("seen", "unseen")
PROD_TYPES = ("atom", "swap", "negate")
COMPLEXITIES = tuple(range(4, 13))
TRAIN_DATASETS = ("cc12m", "yfcc", "laion")
VG_FOLDERS = ("VG_100K", "VG_100K_2")
ROW_KEYS = ("image_id", "caption", "x", "y", "width", "height")


def data_root(folder: str) -> str:
    """The folder holding `syst_hard_negatives/` / `prod_hard_negatives/`: the repository's `data/` or itself."""
    inner = os.path.join(folder, "data")
    return inner if any(os.path.isdir(os.path.join(inner, f"{k}_hard_negatives")) for k in ("syst", "prod")) \
        else folder


def files(data: EvalDataConfig) -> list[tuple[str, str, str]]:
    """(result key, CSV path, hard-negative column) of every file the official evaluation reads."""
    root = data_root(data.crepe_dir)
    out = []
    if data.crepe_train_dataset:
        for split in SYST_SPLITS:
            path = os.path.join(root, "syst_hard_negatives",
                                f"syst_vg_hard_negs_{split}_compounds_in_{data.crepe_train_dataset}.csv")
            out += [(f"syst_{split}_{t}", path, f"valid_hard_negs_{t}") for t in SYST_TYPES]
    for t in PROD_TYPES:
        for c in COMPLEXITIES:
            out.append((f"prod_{t}_{c}", os.path.join(root, "prod_hard_negatives", t,
                                                      f"prod_vg_hard_negs_{t}_complexity_{c}.csv"), "hard_negs"))
    return out


def _number(value: str, path: str, n: int, key: str) -> float:
    try:
        number = float(value)
    except ValueError as err:
        raise ValueError(f"{path}: row {n} has a non-numeric {key} {value!r}") from err
    return int(number) if number.is_integer() else number


def vg_image(vg_dir: str, image_id) -> str:
    """`get_image_by_id`: `<image_id>.jpg` in `VG_100K/`, else in `VG_100K_2/`."""
    for folder in VG_FOLDERS:
        path = os.path.join(vg_dir, folder, f"{image_id}.jpg")
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"CREPE: the image with id {image_id} is not found in {vg_dir}/VG_100K or "
                            f"{vg_dir}/VG_100K_2 (--crepe_vg_dir)")


def load_file(path: str, hard_neg_key: str, vg_dir: str) -> tuple[list[ImageRef], list[list[str]]]:
    """(cropped image refs, `[caption] + hard negatives` per row) of one CSV file."""
    refs, candidates = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [k for k in (*ROW_KEYS, hard_neg_key) if k not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing} (expected {[*ROW_KEYS, hard_neg_key]})")
        for n, row in enumerate(reader):
            try:
                negatives = ast.literal_eval(row[hard_neg_key])
            except (ValueError, SyntaxError) as err:
                raise ValueError(f"{path}: row {n}: {hard_neg_key} is not a Python list literal: "
                                 f"{row[hard_neg_key]!r:.200}") from err
            x, y, w, h = (_number(row[k], path, n, k) for k in ("x", "y", "width", "height"))
            image_id = _number(row["image_id"], path, n, "image_id")
            refs.append(ImageRef(vg_image(vg_dir, image_id), box=(x, y, x + w, y + h)))
            candidates.append([str(row["caption"]), *(str(t) for t in negatives)])
    return refs, candidates


def caption_ranks(encoder, refs: list[ImageRef], candidates: list[list[str]]) -> tuple[list[torch.Tensor], list[int]]:
    """Per query, the cosines of `[caption] + negatives` and the caption's 0-based rank (candidates scoring strictly
    higher). All images and texts go through the encoder in one call each."""
    img = encoder.encode_images(refs, task="crepe")
    txt = encoder.encode_texts([t for c in candidates for t in c], task="crepe")
    scores = ragged_scores(img, txt, [len(c) for c in candidates])
    return scores, [int((s[1:] > s[0]).sum()) for s in scores]


def rank_metrics(ranks: list[int]) -> dict[str, float]:
    """`get_one2many_metrics` (image_to_text): mean and median rank (1-based), Recall@1/3/5/10 in percent."""
    preds = np.asarray(ranks)
    out = {"mean_rank": round(float(preds.mean() + 1), 4), "median_rank": float(np.floor(np.median(preds)) + 1)}
    out.update({f"R@{k}": percent(float(np.mean(preds < k))) for k in (1, 3, 5, 10)})
    return out


def check(data: EvalDataConfig) -> bool:
    if not check_path(data.crepe_dir, "crepe_dir"):
        return False
    if data.crepe_train_dataset and data.crepe_train_dataset not in TRAIN_DATASETS:
        raise EvalDataError(f"--crepe_train_dataset must be one of {', '.join(TRAIN_DATASETS)}, got "
                            f"{data.crepe_train_dataset!r}")
    if not any(os.path.isfile(p) for _, p, _ in files(data)):
        raise EvalDataError(f"--crepe_dir {data.crepe_dir} holds none of the CREPE files (e.g. prod_hard_negatives/"
                            "atom/prod_vg_hard_negs_atom_complexity_4.csv): pass the repository's data/ with its "
                            "zips unpacked")
    if not check_path(data.crepe_vg_dir, "crepe_vg_dir"):
        raise EvalDataError("CREPE needs its images: pass --crepe_vg_dir (the Visual Genome folder holding VG_100K/ "
                            "and VG_100K_2/)")
    return True


def _mean_of(scores: dict[str, float], keys: list[str]) -> float | None:
    return round(float(np.mean([scores[k] for k in keys])), 2) if all(k in scores for k in keys) else None


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    if not data.crepe_train_dataset:
        result.skipped["systematicity"] = ("no --crepe_train_dataset (cc12m, yfcc or laion: the model's pretraining "
                                           "set; the authors evaluate systematicity only on those)")
    loaded = {}
    for key, path, hard_neg_key in files(data):
        if os.path.isfile(path):
            loaded[key] = load_file(path, hard_neg_key, data.crepe_vg_dir)
        else:
            result.skipped[key] = f"{path} not found"
    refs = [r for v in loaded.values() for r in v[0]]
    scores, ranks = caption_ranks(encoder, refs, [c for v in loaded.values() for c in v[1]])
    result.details["files"] = {}
    offset = 0
    for key, (file_refs, _) in loaded.items():
        part = slice(offset, offset + len(file_refs))
        offset += len(file_refs)
        result.count(key, len(file_refs))
        if not file_refs:
            continue
        metrics = rank_metrics(ranks[part])
        result.scores[key] = metrics["R@1"]
        result.details["files"][key] = metrics
        result.items[key] = {"scores": scores[part], "ranks": ranks[part]}
    for t in PROD_TYPES:
        mean = _mean_of(result.scores, [f"prod_{t}_{c}" for c in COMPLEXITIES])
        if mean is not None:
            result.scores[f"prod_{t}"] = mean
    for name, keys in (("prod", [f"prod_{t}" for t in PROD_TYPES]),
                       ("syst", [f"syst_{s}_{t}" for s in SYST_SPLITS for t in SYST_TYPES])):
        mean = _mean_of(result.scores, keys)
        if mean is not None:
            result.scores[name] = mean
    return result


TASK = EvalTask(
    name="crepe", data_options=("crepe_dir", "crepe_vg_dir", "crepe_train_dataset"),
    order=11, run=run, check=check,
    description="CREPE: image-to-text Recall@1 of a region's caption among its hard negatives, productivity "
                "(atom / swap / negate, complexity 4-12) and systematicity (beyond the paper)",
    suite=(("CREPE prod. R@1", "prod"),),
    table=Table("CREPE (beyond the paper): Recall@1", (
        *((f"Syst. {s} {t}", f"syst_{s}_{t}") for s in SYST_SPLITS for t in SYST_TYPES), ("Syst.", "syst"),
        *((f"Prod. {t}", f"prod_{t}") for t in PROD_TYPES), ("Prod.", "prod")), only_present=True),
)
