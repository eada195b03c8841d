"""Image-classification data shared by the zero-shot (`zeroshot.py`) and linear-probe (`linear_probe.py`) tasks:
the paper's 11 datasets or any image-classification source.

A dataset source is either
- a local image folder: `<root>/<class>/*.{png,jpg,...}` (test images only: zero-shot), or `<root>/train/<class>/`
  and `<root>/test/<class>/` (needed by the linear probe); class ids follow the sorted folder names; an optional
  `<root>/zeroshot.json` gives `classnames` (a list aligned with the sorted folders, or {folder: name}),
  `templates` (strings with `{c}`) and `metric` (`accuracy` or `mean_per_class`);
- a `datasets` hub dataset: `hf:ID[:TEST_SPLIT[:IMAGE_COLUMN[:LABEL_COLUMN[:TRAIN_SPLIT]]]]`.
Known datasets (data/zeroshot_datasets.json) bring the table-13 prompt ensemble, CLIP's class names where they
differ from the raw labels, the metric of table 9, and a default hub source.

Zero-shot: each class embedding is the mean of its normalised template embeddings, renormalised (CLIP); the
prediction is the most similar class. Linear probe: frozen, normalised image features; scikit-learn
`LogisticRegression` with `C` chosen on a stratified 20 % validation split of the training set, then refit on
the whole training set with that `C` (CLIP paper protocol; the CLIP paper searches C by a parametric binary
search, here a fixed log grid `C_GRID`).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..config import EvalDataConfig
from ..encoder import DatasetImageRef, ImageRef
from .common import EvalDataError, Table, TaskResult, load_metric, percent, read_json

_KNOWN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "zeroshot_datasets.json")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DEFAULT_TEMPLATES = ["a photo of a {c}."]
METRIC_KEYS = {"accuracy": "accuracy", "mean_per_class": "mean_per_class_accuracy"}


@functools.lru_cache(maxsize=1)
def known_datasets() -> dict:
    with open(_KNOWN, encoding="utf-8") as f:
        return json.load(f)


@dataclass
class ClassificationData:
    name: str
    source: str
    classnames: list[str]
    templates: list[str]
    metric: str
    test: tuple[list[ImageRef], np.ndarray]
    train: tuple[list[ImageRef], np.ndarray] | None = None


def _image_folder(root: str) -> tuple[list[str], list[ImageRef], np.ndarray]:
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise ValueError(f"image folder {root} has no class sub-folders (expected {root}/<class>/*.png)")
    refs, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(root, cls)) if f.lower().endswith(IMAGE_EXTENSIONS))
        refs += [ImageRef(os.path.join(root, cls, f)) for f in files]
        labels += [label] * len(files)
    return classes, refs, np.asarray(labels, dtype=np.int64)


def _load_local(name: str, root: str) -> ClassificationData:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"zero-shot source for {name!r}: folder not found: {root}")
    split_layout = os.path.isdir(os.path.join(root, "test"))
    classes, test_refs, test_labels = _image_folder(os.path.join(root, "test") if split_layout else root)
    train = None
    if split_layout and os.path.isdir(os.path.join(root, "train")):
        train_classes, train_refs, train_labels = _image_folder(os.path.join(root, "train"))
        if train_classes != classes:
            raise ValueError(f"{root}: train/ and test/ hold different class folders "
                             f"({sorted(set(train_classes) ^ set(classes))[:5]} ...)")
        train = (train_refs, train_labels)
    known = known_datasets().get(name, {})
    meta = read_json(os.path.join(root, "zeroshot.json"), "zero-shot metadata") if os.path.exists(
        os.path.join(root, "zeroshot.json")) else {}
    names = meta.get("classnames")
    if isinstance(names, dict):
        missing = [c for c in classes if c not in names]
        if missing:
            raise ValueError(f"{root}/zeroshot.json: classnames lacks folder(s) {missing[:5]}")
        names = [names[c] for c in classes]
    elif isinstance(names, list):
        if len(names) != len(classes):
            raise ValueError(f"{root}/zeroshot.json: {len(names)} classnames for {len(classes)} class folders")
    else:
        names = [c.replace("_", " ") for c in classes]
    templates = meta.get("templates") or known.get("templates") or DEFAULT_TEMPLATES
    return ClassificationData(name, root, names, _check_templates(templates, root),
                              meta.get("metric") or known.get("metric", "accuracy"), (test_refs, test_labels), train)


def _check_templates(templates: list[str], where: str) -> list[str]:
    templates = [t.replace("{label}", "{c}") for t in templates]
    bad = [t for t in templates if "{c}" not in t]
    if bad:
        raise ValueError(f"{where}: template(s) without a {{c}} placeholder: {bad[:3]}")
    return templates


def _load_hub(name: str, spec: str, need_train: bool) -> ClassificationData:
    import datasets

    known = known_datasets().get(name, {})
    default = known.get("source", {})
    parts = spec.split(":")
    hub_id = parts[0]
    test_split, image_col, label_col, train_split = (
        (parts[i] if len(parts) > i and parts[i] else default.get(key, fallback))
        for i, key, fallback in ((1, "test_split", "test"), (2, "image_column", "image"),
                                 (3, "label_column", "label"), (4, "train_split", "train")))

    def split(name_):
        ds = datasets.load_dataset(hub_id, split=name_)
        for col in (image_col, label_col):
            if col not in ds.column_names:
                raise ValueError(f"hub dataset {hub_id}[{name_}] has no column {col!r} (columns: {ds.column_names})")
        refs = [DatasetImageRef(f"hf://{hub_id}/{name_}/{i}", dataset=ds, index=i, column=image_col,
                                fingerprint=ds._fingerprint) for i in range(len(ds))]
        return ds, (refs, np.asarray(ds[label_col], dtype=np.int64))

    test_ds, test = split(test_split)
    names = known.get("classnames")
    if names is None:
        feature = test_ds.features[label_col]
        if not hasattr(feature, "names"):
            raise ValueError(f"{hub_id}: column {label_col!r} has no class names; "
                             "use a local folder with zeroshot.json")
        names = [n.replace("_", " ") for n in feature.names]
    train = split(train_split)[1] if need_train else None
    return ClassificationData(name, f"hf:{hub_id}", names,
                              _check_templates(known.get("templates") or DEFAULT_TEMPLATES, hub_id),
                              known.get("metric", "accuracy"), test, train)


def resolve_sources(data: EvalDataConfig) -> dict[str, str]:
    """Dataset name -> source spec, from --zeroshot_sources and --zeroshot_datasets."""
    sources = {}
    for item in data.zeroshot_sources:
        if "=" not in item:
            raise EvalDataError(f"--zeroshot_sources item {item!r} should be NAME=SOURCE (a folder or hf:HUB_ID)")
        key, value = item.split("=", 1)
        sources[key] = value
    names = list(data.zeroshot_datasets)
    if names == ["all"]:
        names = list(known_datasets())
    names = names or list(sources)
    out = {}
    for n in names:
        if n in sources:
            out[n] = sources[n]
        elif n in known_datasets():
            out[n] = "hf:" + known_datasets()[n]["source"]["hub_id"]
        else:
            raise EvalDataError(f"--zeroshot_datasets: {n!r} has no source: pass --zeroshot_sources {n}=FOLDER "
                                f"(known names: {sorted(known_datasets())})")
    return out


def load_source(name: str, spec: str, need_train: bool) -> ClassificationData:
    return _load_hub(name, spec[3:], need_train) if spec.startswith("hf:") else _load_local(name, spec)


def class_embeddings(encoder, classnames: list[str], templates: list[str], task: str) -> torch.Tensor:
    """[C, D]: mean of the normalised embeddings of every template filled with the class name, renormalised."""
    prompts = [t.format(c=c) for c in classnames for t in templates]
    feats = encoder.encode_texts(prompts, task=task).view(len(classnames), len(templates), -1).mean(1)
    return torch.nn.functional.normalize(feats, dim=-1)


def score(ds: ClassificationData, predictions, labels) -> tuple[float, dict]:
    out = load_metric("classification_accuracy").compute(predictions=list(map(int, predictions)),
                                                         references=list(map(int, labels)))
    return percent(out[METRIC_KEYS[ds.metric]]), out


def check_sources(data: EvalDataConfig) -> bool:
    """False when no dataset is given; raises `EvalDataError` for an unknown name or a missing local folder."""
    sources = resolve_sources(data)
    for name, spec in sources.items():
        if not spec.startswith("hf:") and not os.path.isdir(spec):
            raise EvalDataError(f"--zeroshot_sources {name}={spec}: folder not found: {spec}")
    return bool(sources)


def add_average(result: TaskResult, sources: dict):
    done = [n for n in sources if n in result.scores]
    if done:
        result.scores["avg"] = round(float(np.mean([result.scores[n] for n in done])), 2)


def dataset_table(title: str) -> Table:
    """Tables 5 and 6: the paper's 11 datasets that ran, then any other dataset, then the average."""
    columns = (("CIFAR10", "cifar10"), ("CIFAR100", "cifar100"), ("Food101", "food101"), ("Pets", "pets"),
               ("Flowers", "flowers"), ("SUN397", "sun397"), ("Cars", "cars"), ("DTD", "dtd"),
               ("Caltech101", "caltech101"), ("Aircraft", "aircraft"), ("ImageNet", "imagenet"), ("Avg.", "avg"))
    return Table(title, columns, only_present=True, extra_columns=True)
