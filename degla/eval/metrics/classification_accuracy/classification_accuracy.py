"""Classification accuracy and mean per-class accuracy (zero-shot classification and linear probe).

Table 9 of the DeGLA paper (after the CLIP paper) reports mean per-class accuracy for FGVC-Aircraft, Oxford
Pets, Caltech101 and Flowers102 and plain accuracy elsewhere. `mean_per_class_accuracy` averages the recall of
every class that occurs in `references` (classes absent from the test set are not counted).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]`): predicted class ids.
    references (`list[int]`): true class ids.
Returns:
    accuracy (`float`, 0-1), mean_per_class_accuracy (`float`, 0-1), n (`int`), num_classes (`int`, classes seen
    in references).
Examples:
    >>> m = evaluate.load("degla/eval/metrics/classification_accuracy")
    >>> m.compute(predictions=[0, 0, 0, 1], references=[0, 0, 0, 0])["accuracy"]
    0.75
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        correct = predictions == references
        classes, inverse = np.unique(references, return_inverse=True)
        per_class = np.bincount(inverse, weights=correct.astype(np.float64)) / np.bincount(inverse)
        return {
            "accuracy": float(correct.mean()) if len(correct) else float("nan"),
            "mean_per_class_accuracy": float(per_class.mean()) if len(per_class) else float("nan"),
            "n": int(len(correct)),
            "num_classes": int(len(classes)),
        }
