"""Zero-shot classification (DeGLA table 5) on the paper's 11 datasets or any image-classification source.

Each class embedding is the mean of the normalised embeddings of its prompts (the dataset's template ensemble
filled with the class name), renormalised (CLIP); the prediction is the most similar class. The metric follows
table 9 of the paper: mean per-class accuracy for Aircraft, Pets, Caltech101 and Flowers, accuracy elsewhere.
Sources and metadata: `classification.py`.
"""

from __future__ import annotations

from ..config import EvalDataConfig
from .classification import (add_average, check_sources, class_embeddings, dataset_table, load_source, resolve_sources,
                             score)
from .common import EvalTask, TaskResult, percent


def run(encoder, data: EvalDataConfig, seed: int = 0) -> TaskResult:
    result = TaskResult()
    sources = resolve_sources(data)
    for name, spec in sources.items():
        ds = load_source(name, spec, need_train=False)
        refs, labels = ds.test
        img = encoder.encode_images(refs, task=f"zeroshot_{name}")
        weights = class_embeddings(encoder, ds.classnames, ds.templates, task=f"zeroshot_{name}")
        preds = (img @ weights.T).argmax(1).numpy()
        result.scores[name], out = score(ds, preds, labels)
        result.details[name] = {"source": ds.source, "metric": ds.metric, "classes": len(ds.classnames),
                                "templates": len(ds.templates), "accuracy": percent(out["accuracy"]),
                                "mean_per_class_accuracy": percent(out["mean_per_class_accuracy"])}
        result.items[name] = {"predictions": preds.tolist(), "labels": labels.tolist()}
        result.count(name, len(refs))
    add_average(result, sources)
    return result


TASK = EvalTask(
    name="zeroshot", data_options=("zeroshot_sources", "zeroshot_datasets"),
    order=4, run=run, check=check_sources, table=dataset_table("Table 5: Zero-shot classification"),
    description="Zero-shot classification with the paper's prompt ensembles (top-1 or mean per-class accuracy)",
)
