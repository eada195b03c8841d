"""BiVLC (Miranda et al., NeurIPS 2024 Datasets and Benchmarks): bidirectional vision-language compositionality.
Each instance is a COCO 2017 validation image and caption, SugarCrepe's hard-negative caption, and a negative image
generated from that caption; the model must match both ways.

Scored as the official evaluation (IMirandaM/BiVLC `main_evaluation_BiVLC.py` with
`src/CLIP_fine_tuning/CLIP_utils.py::evaluate_BiVLC`), with s(c, i) the image-caption score (caption 0 the positive,
1 the negative; image 0 the COCO image, 1 the negative image), strict comparisons:
- Ipos_2T: s(c0, i0) > s(c1, i0); Ineg_2T: s(c1, i1) > s(c0, i1); Tpos_2I: s(c0, i0) > s(c0, i1);
  Tneg_2I: s(c1, i1) > s(c1, i0);
- I2T = Ipos_2T and Ineg_2T; T2I = Tpos_2I and Tneg_2I; group = I2T and T2I (the paper's three scores);
- each the percent of instances, overall and per negative `type` (replace, swap, add), as the script prints them.

Data: the Hub dataset `imirandam/BiVLC` (split `test`; columns `image, caption, negative_caption, negative_image,
type, subtype`) through `datasets` (`--bivlc_hub_id`), or a local copy (`--bivlc_dir`): a `save_to_disk` folder
or the dataset's parquet files.
"""

from __future__ import annotations

import numpy as np

from ..config import EvalDataConfig
from .common import EvalTask, Table, TaskResult, percent
from .hub_layout import check_options, image_refs, load_from_options
from .winoground import example_scores

COLUMNS = ("image", "caption", "negative_caption", "negative_image", "type", "subtype")
TYPES = ("replace", "swap", "add")
DECISIONS = ("i2t", "t2i", "group", "ipos_2t", "ineg_2t", "tpos_2i", "tneg_2i")


def decisions(scores) -> dict[str, np.ndarray]:
    """`evaluate_BiVLC`'s decisions from [N, 4] scores in winoground's order (c0_i0, c1_i0, c0_i1, c1_i1)."""
    s = np.asarray(scores)
    c0_i0, c1_i0, c0_i1, c1_i1 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    out = {"ipos_2t": c0_i0 > c1_i0, "ineg_2t": c1_i1 > c0_i1, "tpos_2i": c0_i0 > c0_i1, "tneg_2i": c1_i1 > c1_i0}
    out["i2t"] = out["ipos_2t"] & out["ineg_2t"]
    out["t2i"] = out["tpos_2i"] & out["tneg_2i"]
    out["group"] = out["i2t"] & out["t2i"]
    return out


def load(data: EvalDataConfig):
    """(the dataset, its source name) from `--bivlc_hub_id` or `--bivlc_dir`."""
    return load_from_options(data.bivlc_dir, data.bivlc_hub_id, "bivlc", "imirandam/BiVLC",
                             COLUMNS, ("image", "negative_image"))


def check(data: EvalDataConfig) -> bool:
    return check_options(data.bivlc_dir, data.bivlc_hub_id, "bivlc", "imirandam/BiVLC")


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    ds, source = load(data)
    records = ds.select_columns(["caption", "negative_caption", "type", "subtype"]).to_list()
    if not records:
        result.skipped["bivlc"] = "no instance in the data"
        return result
    scores = example_scores(encoder, image_refs(ds, source, "image"), image_refs(ds, source, "negative_image"),
                            [r["caption"] for r in records], [r["negative_caption"] for r in records], task="bivlc")
    correct = decisions(scores)
    for key in DECISIONS:
        result.scores[key] = percent(float(correct[key].mean()))
    types = np.array([r["type"] for r in records])
    for t in TYPES:
        if (types == t).any():
            for key in DECISIONS:
                result.scores[f"{t}_{key}"] = percent(float(correct[key][types == t].mean()))
    result.count("bivlc", len(records))
    result.details["type_counts"] = {t: int((types == t).sum()) for t in np.unique(types)}
    result.items["bivlc"] = {"scores": scores, **{k: v.tolist() for k, v in correct.items()}}
    return result


TASK = EvalTask(
    name="bivlc", data_options=("bivlc_dir", "bivlc_hub_id"),
    order=13, run=run, check=check,
    description="BiVLC: image-to-text, text-to-image and group scores over a COCO image and caption against a "
                "negative caption and its generated image (beyond the paper)",
    suite=(("BiVLC I2T", "i2t"), ("BiVLC T2I", "t2i"), ("BiVLC group", "group")),
    table=Table("BiVLC (beyond the paper)", (
        ("I2T", "i2t"), ("T2I", "t2i"), ("Group", "group"), ("Ipos_2T", "ipos_2t"), ("Ineg_2T", "ineg_2t"),
        ("Tpos_2I", "tpos_2i"), ("Tneg_2I", "tneg_2i"),
        *((f"{t.capitalize()} {h}", f"{t}_{k}") for t in TYPES for h, k in (("I2T", "i2t"), ("T2I", "t2i"),
                                                                             ("Group", "group"))))),
)
