"""MMVP-VLM (Tong et al., CVPR 2024, "Eyes Wide Shut?"): 135 pairs of images that CLIP embeds alike, each with a
statement that fits one image of the pair, in 9 visual patterns of 15 pairs.

Scored as the official script (tsb0601/MMVP `scripts/evaluate_vlm.py::benchmark_model`):
- `Questions.csv` (header, then rows `Question ID, Type, Statement`) is read two rows at a time: rows 2k and 2k+1
  are a pair (a trailing odd row is dropped); both images are `<images>/<Type of the first row>/<id>.jpg`;
- each statement is scored as `"a photo of " + statement` against both images, and picks the first image iff its
  softmax probability over the two is above 0.5, i.e. iff its score is strictly higher (a tie picks the second);
  the first image is the right one for an odd question id, the second for an even one;
- a pair is right when both statements pick right; its pattern is `CATEGORIES[pair index // 15]` (by position, as
  the official script assigns it), and a pattern's score is its right pairs / (pairs // 9), in percent. `avg` is
  the mean of the nine (the paper's "Average").
The script compares the softmax of CLIP's logits (the cosine times the logit scale); the harness compares the
cosines: the same decisions except where the two logits differ by less than float32 can tell apart after the
softmax (|difference| below about 1e-7).

Data: `--mmvp_vlm_dir`, the benchmark folder as the Hub dataset MMVP/MMVP_VLM holds it (`Questions.csv` beside the
image folder `MLLM_VLM Images/`, the name the script reads, or `MMVP_VLM_Images/`, the README's), or
`--mmvp_vlm_hub_id MMVP/MMVP_VLM` to download that folder from the Hub (`huggingface_hub.snapshot_download`).
"""

from __future__ import annotations

import csv
import os

import numpy as np

from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import EvalDataError, EvalTask, Table, TaskResult, check_path, percent

CATEGORIES = ("Orientation and Direction", "Presence of Specific Features", "State and Condition",
              "Quantity and Count", "Positional and Relational Context", "Color and Appearance",
              "Structural Characteristics", "Texts", "Viewpoint and Perspective")
KEYS = ("orientation", "presence", "state", "quantity", "position", "color", "structure", "text", "viewpoint")
PAIRS_PER_CATEGORY = 15
IMAGE_FOLDERS = ("MLLM_VLM Images", "MMVP_VLM_Images")


def image_folder(folder: str) -> str | None:
    for name in IMAGE_FOLDERS:
        if os.path.isdir(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load_pairs(folder: str) -> list[tuple[tuple[int, int], tuple[ImageRef, ImageRef], tuple[str, str]]]:
    """((qid1, qid2), (image 1, image 2), ("a photo of " + statement 1, ... 2)) per pair, in file order."""
    path, images = os.path.join(folder, "Questions.csv"), image_folder(folder)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]
    pairs = []
    for n in range(0, len(rows) - 1, 2):
        try:
            (qid1, qtype1, statement1), (qid2, _, statement2) = rows[n], rows[n + 1]
            qid1, qid2 = int(qid1), int(qid2)
        except ValueError as err:
            raise ValueError(f"{path}: rows {n + 2}-{n + 3} should be 'Question ID, Type, Statement' with integer "
                             f"ids: {err}") from err
        refs = (ImageRef(os.path.join(images, qtype1, f"{qid1}.jpg")),
                ImageRef(os.path.join(images, qtype1, f"{qid2}.jpg")))
        pairs.append(((qid1, qid2), refs, ("a photo of " + statement1, "a photo of " + statement2)))
    return pairs


def _local_folder(data: EvalDataConfig) -> str:
    if data.mmvp_vlm_hub_id:
        from huggingface_hub import snapshot_download

        return snapshot_download(data.mmvp_vlm_hub_id, repo_type="dataset")
    return data.mmvp_vlm_dir


def check(data: EvalDataConfig) -> bool:
    if data.mmvp_vlm_dir and data.mmvp_vlm_hub_id:
        raise EvalDataError("pass one of --mmvp_vlm_dir and --mmvp_vlm_hub_id, not both")
    if data.mmvp_vlm_hub_id:
        return True
    if not check_path(data.mmvp_vlm_dir, "mmvp_vlm_dir"):
        return False
    if not os.path.isfile(os.path.join(data.mmvp_vlm_dir, "Questions.csv")) or not image_folder(data.mmvp_vlm_dir):
        raise EvalDataError(f"--mmvp_vlm_dir {data.mmvp_vlm_dir} is not an MMVP-VLM folder: expected Questions.csv "
                            f"beside {' or '.join(repr(n) for n in IMAGE_FOLDERS)}")
    return True


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    pairs = load_pairs(_local_folder(data))
    n = len(pairs)
    if n < len(CATEGORIES) or n > len(CATEGORIES) * PAIRS_PER_CATEGORY:
        raise ValueError(f"MMVP-VLM: {n} pairs in Questions.csv; the official scoring needs 9 to 135 (15 per pattern, "
                         "assigned by position)")
    img = encoder.encode_images([r for _, refs, _ in pairs for r in refs], task="mmvp_vlm").view(n, 2, -1)
    txt = encoder.encode_texts([t for _, _, texts in pairs for t in texts], task="mmvp_vlm").view(n, 2, -1)
    scores = (txt @ img.transpose(1, 2)).numpy()  # [pair, statement, image]
    picks_first = scores[:, :, 0] > scores[:, :, 1]
    first_is_right = np.array([[qid % 2 == 1 for qid in qids] for qids, _, _ in pairs])
    right = (picks_first == first_is_right).all(axis=1)
    per_category = n // len(CATEGORIES)
    for c, key in enumerate(KEYS):
        result.scores[key] = percent(float(right[c * PAIRS_PER_CATEGORY : (c + 1) * PAIRS_PER_CATEGORY].sum())
                                     / per_category)
    result.scores["avg"] = round(float(np.mean([result.scores[k] for k in KEYS])), 2)
    result.count("mmvp_vlm", n)
    result.items["mmvp_vlm"] = {"scores": scores, "qids": [q for q, _, _ in pairs], "picks_first": picks_first,
                                "right": right.tolist()}
    return result


TASK = EvalTask(
    name="mmvp_vlm", data_options=("mmvp_vlm_dir", "mmvp_vlm_hub_id"),
    order=12, run=run, check=check,
    description="MMVP-VLM: pair accuracy of 'a photo of <statement>' picking its image of a CLIP-blind pair, per "
                "visual pattern (beyond the paper)",
    suite=(("MMVP-VLM", "avg"),),
    table=Table("MMVP-VLM (beyond the paper): pair accuracy per visual pattern", (
        *((name.split()[0], key) for name, key in zip(CATEGORIES, KEYS)), ("Avg.", "avg"))),
)
