"""Linear probe (DeGLA table 6) on the paper's 11 datasets or any image-classification source with a train split.

Frozen, L2-normalised image features; scikit-learn `LogisticRegression` with `C` chosen on a stratified 20 %
validation split of the training set, then refit on the whole training set with that `C` (CLIP paper protocol;
the CLIP paper searches C by a parametric binary search, here a fixed log grid `C_GRID`). Sources and
metadata: `classification.py`.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..config import EvalDataConfig
from .classification import add_average, check_sources, dataset_table, load_source, resolve_sources, score
from .common import EvalDataError, EvalTask, TaskResult, logger, percent

C_GRID = tuple(float(c) for c in np.logspace(-2, 4, 7))


def check(data: EvalDataConfig) -> bool:
    if not check_sources(data):
        return False
    if importlib.util.find_spec("sklearn") is None:
        raise EvalDataError("the linear probe needs scikit-learn, a requirement of degla: `pip install scikit-learn` "
                            "(or reinstall degla: `pip install -e .`)")
    return True


def run(encoder, data: EvalDataConfig, seed: int = 0, c_grid=C_GRID) -> TaskResult:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    result = TaskResult()
    sources = resolve_sources(data)
    for name, spec in sources.items():
        ds = load_source(name, spec, need_train=True)
        if ds.train is None:
            result.skipped[name] = (f"{ds.source} has no train split "
                                    "(expected <root>/train/<class>/ and <root>/test/<class>/)")
            continue
        x_train = encoder.encode_images(ds.train[0], task=f"linear_probe_{name}").numpy()
        x_test = encoder.encode_images(ds.test[0], task=f"linear_probe_{name}").numpy()
        y_train, y_test = ds.train[1], ds.test[1]
        _, counts = np.unique(y_train, return_counts=True)
        stratify = y_train if counts.min() >= 2 else None
        x_fit, x_val, y_fit, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=seed,
                                                      stratify=stratify)
        val_scores = {}
        for c in c_grid:
            clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(x_fit, y_fit)
            val_scores[c] = float((clf.predict(x_val) == y_val).mean())
        best_c = max(c_grid, key=lambda c: (val_scores[c], -abs(np.log10(c))))  # ties: the C closest to 1
        clf = LogisticRegression(C=best_c, max_iter=1000, random_state=seed).fit(x_train, y_train)
        result.scores[name], out = score(ds, clf.predict(x_test), y_test)
        result.details[name] = {"source": ds.source, "metric": ds.metric, "best_C": best_c,
                                "validation_accuracy": {f"{c:g}": percent(v) for c, v in val_scores.items()}}
        result.count(name, len(y_test))
        logger.info("linear probe %s: C=%g (val acc %.2f%%)", name, best_c, 100 * val_scores[best_c])
    add_average(result, sources)
    return result


TASK = EvalTask(
    name="linear_probe", data_options=("zeroshot_sources", "zeroshot_datasets"),
    order=5, run=run, check=check, table=dataset_table("Table 6: Linear probe"),
    description="Linear probe: logistic regression on frozen image features (needs <root>/train and <root>/test)",
)
