"""Multiple-choice accuracy: one image, C candidate captions, one correct caption.

Used by SugarCrepe, VALSE, ARO VG-Relation/VG-Attribution (C = 2) and ARO COCO/Flickr30k-Order (C = 5).
Ties follow the protocol of each benchmark (`tie_break`), as a rule on scores, so that the outcome does not
depend on the order of the candidates:

- `"strict"`: correct iff the correct caption scores strictly higher than every other caption, a tie is wrong
  (SugarCrepe `pos > neg`, VALSE `caption > foil`, ARO VG `argmax([false, true]) == 1`: numpy's argmax picks
  the first maximum, the false caption).
- `"lenient"`: correct iff no other caption scores strictly higher, a tie is right (ARO COCO/Flickr30k-Order:
  `argmax(scores) == 0` with the true caption first, so in exact arithmetic a tie with a perturbation picks the
  true caption).

With `groups`, per-group accuracies and their unweighted mean (`macro_accuracy`) are returned too; groups with
fewer than `min_group_size` examples or listed in `exclude_groups` are left out of the macro mean (ARO).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    scores (`list[list[float]]`): per example, the similarity of the image with each candidate caption.
    labels (`list[int]`): per example, the index of the correct caption.
    groups (`list[str]`, optional): per example, a group name for per-group and macro accuracy.
    tie_break (`str`, default `"strict"`): `"strict"` (a tie is wrong) or `"lenient"` (a tie is right).
    min_group_size (`int`, default 1): groups smaller than this are left out of `macro_accuracy`.
    exclude_groups (`list[str]`, optional): groups left out of `macro_accuracy`.
    return_correct (`bool`, default False): also return `correct`, the per-example decisions.
Returns:
    accuracy (`float`, 0-1), n (`int`); with groups also group_accuracy (`dict`), group_count (`dict`),
    macro_accuracy (`float`) and macro_groups (`int`, groups in the macro mean); `correct` (`list[bool]`) when
    asked.
Examples:
    >>> m = evaluate.load("degla/eval/metrics/multiple_choice_accuracy")
    >>> m.compute(scores=[[0.2, 0.1], [0.3, 0.3]], labels=[0, 0])["accuracy"]
    0.5
"""


def correct_mask(scores: np.ndarray, labels: np.ndarray, tie_break: str) -> np.ndarray:
    """Boolean [N]: whether each example is answered correctly under `tie_break`."""
    if tie_break not in ("strict", "lenient"):
        raise ValueError("tie_break must be 'strict' (a tie is wrong) or 'lenient' (a tie is right), "
                         f"got {tie_break!r}")
    correct_score = scores[np.arange(len(labels)), labels]
    others = scores.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    best_other = others.max(axis=1)
    return correct_score > best_other if tie_break == "strict" else correct_score >= best_other


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultipleChoiceAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"scores": datasets.Sequence(datasets.Value("float64")), "labels": datasets.Value("int64")}
            ),
        )

    def _compute(self, scores, labels, groups=None, tie_break="strict", min_group_size=1, exclude_groups=None,
                 return_correct=False):
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
        if scores.ndim != 2 or scores.shape[1] < 2:
            raise ValueError(f"scores must be [N, C>=2], got shape {scores.shape}")
        correct = correct_mask(scores, labels, tie_break)
        out = {"accuracy": float(correct.mean()) if len(correct) else float("nan"), "n": int(len(correct))}
        if return_correct:
            out["correct"] = correct.tolist()
        if groups is not None:
            groups = np.asarray(groups)
            if len(groups) != len(labels):
                raise ValueError(f"groups has {len(groups)} entries for {len(labels)} examples")
            excluded = set(exclude_groups or ())
            names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
            per_group = np.bincount(inverse, weights=correct.astype(np.float64)) / counts
            out["group_accuracy"] = {str(g): float(a) for g, a in zip(names, per_group)}
            out["group_count"] = {str(g): int(c) for g, c in zip(names, counts)}
            keep = [a for g, a, c in zip(names, per_group, counts) if c >= min_group_size and g not in excluded]
            out["macro_accuracy"] = float(np.mean(keep)) if keep else float("nan")
            out["macro_groups"] = len(keep)
        return out
