"""SPEC (Peng et al., CVPR 2024, "Synthesize, Diagnose, and Optimize"): six dimensions of fine-grained
understanding (absolute and relative size, absolute and relative spatial position, existence, count), each tested
both ways on synthesized images that differ in that dimension only.

Scored as the official evaluation (wjpoom/SPEC `spec/eval.py` with `spec/dataset.py` and the CLIP wrapper's
`i2t_evaluate` / `t2i_evaluate` in `spec/models/clip_wrapper.py`):
- image-to-text (`<subset>/image2text.json`: `[{"query": image path, "keys": [captions], "label": index}]`): the
  query image against its candidate captions; text-to-image (`text2image.json`: `{"query": caption, "keys":
  [image paths], "label": index}`): the caption against its candidate images; image paths relative to the
  subset's folder;
- correct iff `argmax` of the cosines is the label: the first of equal maxima wins (torch's `argmax`), so a tie
  with an earlier candidate is wrong and with a later one right;
- per dimension the percent correct each way (`<subset>_i2t`, `<subset>_t2i`); `i2t` and `t2i` the means over the
  six dimensions (the script's "average all subset"), written when all six ran.

Data: `--spec_dir`, the folder that holds the six subset folders (the Hub dataset wjpoom/SPEC's `data.zip`
unpacked, or its `data/` inside), or `--spec_hub_id wjpoom/SPEC` to download and unpack that zip into degla's cache
(`huggingface_hub.hf_hub_download`, as the README's recipe).
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from ...atomic_io import degla_cache_dir
from ..config import EvalDataConfig
from ..encoder import ImageRef
from .common import EvalDataError, EvalTask, Table, TaskResult, check_path, percent, ragged_scores, read_json

SUBSETS = ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")
FILES = ("image2text.json", "text2image.json")


def data_root(folder: str) -> str:
    """The folder holding the subset folders: `folder` itself or its `data/`."""
    inner = os.path.join(folder, "data")
    return inner if any(os.path.isdir(os.path.join(inner, s)) for s in SUBSETS) else folder


def download(hub_id: str) -> str:
    """The Hub dataset's `data.zip`, unpacked once under degla's cache (unpacked beside, then renamed)."""
    from huggingface_hub import hf_hub_download

    target = degla_cache_dir("spec", hub_id.replace("/", "--"))
    if not os.path.isdir(target):
        archive = hf_hub_download(repo_id=hub_id, repo_type="dataset", filename="data.zip")
        partial = f"{target}.partial-{os.getpid()}"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(partial)
        os.replace(partial, target)
    return target


def load_subset(folder: str) -> dict[str, tuple[list, list[list], list[int]]]:
    """{"i2t": (image refs, caption lists, labels), "t2i": (captions, image-ref lists, labels)} of one subset."""
    out = {}
    for direction, file in zip(("i2t", "t2i"), FILES):
        path = os.path.join(folder, file)
        samples = read_json(path, "SPEC annotations")
        if not isinstance(samples, list):
            raise ValueError(f"{path}: expected a list of {{\"query\", \"keys\", \"label\"}}")
        queries, keys, labels = [], [], []
        for n, sample in enumerate(samples):
            if not (isinstance(sample, dict) and {"query", "keys", "label"} <= set(sample)
                    and isinstance(sample["keys"], list) and 0 <= sample["label"] < len(sample["keys"])):
                raise ValueError(f"{path}: sample {n} should be {{\"query\", \"keys\": [...], \"label\": index into "
                                 f"keys}}, got {sample!r:.200}")
            image = lambda rel: ImageRef(os.path.join(folder, rel))  # noqa: E731
            queries.append(image(sample["query"]) if direction == "i2t" else sample["query"])
            keys.append(list(sample["keys"]) if direction == "i2t" else [image(k) for k in sample["keys"]])
            labels.append(int(sample["label"]))
        out[direction] = (queries, keys, labels)
    return out


def check(data: EvalDataConfig) -> bool:
    if data.spec_dir and data.spec_hub_id:
        raise EvalDataError("pass one of --spec_dir and --spec_hub_id, not both")
    if data.spec_hub_id:
        return True
    if not check_path(data.spec_dir, "spec_dir"):
        return False
    root = data_root(data.spec_dir)
    if not any(os.path.isfile(os.path.join(root, s, f)) for s in SUBSETS for f in FILES):
        raise EvalDataError(f"--spec_dir {data.spec_dir} holds none of the SPEC subsets ({', '.join(SUBSETS)}, each "
                            "with image2text.json and text2image.json): pass the folder data.zip unpacks into")
    return True


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    root = data_root(download(data.spec_hub_id) if data.spec_hub_id else data.spec_dir)
    loaded = {}
    for subset in SUBSETS:
        folder = os.path.join(root, subset)
        if all(os.path.isfile(os.path.join(folder, f)) for f in FILES):
            loaded[subset] = load_subset(folder)
        else:
            result.skipped[subset] = f"{folder} lacks {' or '.join(FILES)}"
    # every image and caption of the suite through the encoder once: queries and candidates of both directions
    images = [r for s in loaded.values() for r in s["i2t"][0]] + [r for s in loaded.values() for k in s["t2i"][1]
                                                                  for r in k]
    texts = [t for s in loaded.values() for k in s["i2t"][1] for t in k] + [t for s in loaded.values()
                                                                             for t in s["t2i"][0]]
    img, txt = encoder.encode_images(images, task="spec"), encoder.encode_texts(texts, task="spec")
    n_i2t_images = sum(len(s["i2t"][0]) for s in loaded.values())
    n_i2t_texts = sum(len(k) for s in loaded.values() for k in s["i2t"][1])
    i2t = ragged_scores(img[:n_i2t_images], txt[:n_i2t_texts], [len(k) for s in loaded.values() for k in s["i2t"][1]])
    t2i = ragged_scores(txt[n_i2t_texts:], img[n_i2t_images:], [len(k) for s in loaded.values() for k in s["t2i"][1]])
    scored = {"i2t": iter(i2t), "t2i": iter(t2i)}
    for subset, parts in loaded.items():
        for direction, (queries, _, labels) in parts.items():
            scores = [next(scored[direction]) for _ in queries]
            correct = [int(np.argmax(s.numpy())) == label for s, label in zip(scores, labels)]  # first maximum
            key = f"{subset}_{direction}"
            if not correct:
                result.skipped[key] = "no sample"
                continue
            result.scores[key] = percent(float(np.mean(correct)))
            result.count(key, len(correct))
            result.items[key] = {"scores": scores, "labels": labels, "correct": correct}
    for direction in ("i2t", "t2i"):
        if all(f"{s}_{direction}" in result.scores for s in SUBSETS):
            result.scores[direction] = round(float(np.mean([result.scores[f"{s}_{direction}"] for s in SUBSETS])), 2)
    return result


TASK = EvalTask(
    name="spec", data_options=("spec_dir", "spec_hub_id"),
    order=14, run=run, check=check,
    description="SPEC: image-to-text and text-to-image accuracy over candidates differing in size, position, "
                "existence or count (six dimensions; beyond the paper)",
    suite=(("SPEC I2T", "i2t"), ("SPEC T2I", "t2i")),
    table=Table("SPEC (beyond the paper): image-to-text / text-to-image accuracy", (
        *((f"{s.replace('_', ' ').capitalize()} {d.upper()}", f"{s}_{d}") for s in SUBSETS for d in ("i2t", "t2i")),
        ("Avg. I2T", "i2t"), ("Avg. T2I", "t2i"))),
)
