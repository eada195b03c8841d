"""Recall@K for cross-modal retrieval with several ground truths per query.

A query is a hit at K when **any** of its ground-truth items is among its top-K retrieved items (the standard
COCO/Flickr30k protocol: an image has 5 true captions; a caption has 1 true image). The caller passes the
ranked top-`max(k)` item ids of every query (computed in batch with `torch.topk`), not the full score matrix.
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): per query, retrieved item ids, best first (at least max(k) of them).
    references (`list[list[int]]`): per query, its ground-truth item ids (one or more).
    k (`list[int]`, default `[1, 5, 10]`): cut-offs.
Returns:
    `recall@K` (`float`, 0-1) for each K, and n (`int`, queries).
Examples:
    >>> m = evaluate.load("degla/eval/metrics/retrieval_recall")
    >>> m.compute(predictions=[[3, 1], [0, 2]], references=[[1, 7], [5]], k=[1, 2])
    {'recall@1': 0.0, 'recall@2': 0.5, 'n': 2}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalRecall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, k=(1, 5, 10)):
        ranked = np.asarray(predictions)
        if ranked.ndim != 2 or ranked.shape[1] < max(k):
            raise ValueError(f"predictions must hold at least max(k)={max(k)} ranked ids per query, got {ranked.shape}")
        width = max(len(t) for t in references)
        truth = np.full((len(references), width), -1, dtype=np.int64)  # ragged ground truths, padded with -1
        for i, t in enumerate(references):
            truth[i, : len(t)] = t
        is_hit = (ranked[:, :, None] == truth[:, None, :]).any(axis=2)  # [N, ranked]
        first_hit = np.where(is_hit.any(axis=1), is_hit.argmax(axis=1), np.inf)
        out = {f"recall@{kk}": float((first_hit < kk).mean()) for kk in k}
        out["n"] = int(len(ranked))
        return out
