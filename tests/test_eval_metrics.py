"""The `evaluate` metric modules shipped in degla/eval/metrics, on hand-made score matrices."""

import math
import os

import evaluate
import pytest

from degla.eval.tasks.common import METRICS_DIR, load_metric


def test_metric_modules_load_by_path_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    for name in ("multiple_choice_accuracy", "classification_accuracy", "retrieval_recall"):
        module = evaluate.load(os.path.join(METRICS_DIR, name))
        assert isinstance(module, evaluate.EvaluationModule)


def test_multiple_choice_ties_strict_vs_lenient():
    m = load_metric("multiple_choice_accuracy")
    scores = [[0.5, 0.2], [0.3, 0.3], [0.1, 0.4], [0.7, 0.7]]
    # strict: a tie is wrong (SugarCrepe pos > neg, VALSE caption > foil, ARO VG argmax([false, true]) == 1)
    assert m.compute(scores=scores, labels=[0, 0, 0, 0], tie_break="strict")["accuracy"] == 0.25
    assert m.compute(scores=scores, labels=[1, 1, 1, 1], tie_break="strict")["accuracy"] == 0.25
    # lenient: a tie is right (ARO order: argmax(scores) == 0 with the true caption first)
    assert m.compute(scores=scores, labels=[0, 0, 0, 0], tie_break="lenient")["accuracy"] == 0.75
    # the rule is about scores, not positions: the same examples with the candidates swapped score the same
    swapped = [row[::-1] for row in scores]
    for rule in ("strict", "lenient"):
        assert (m.compute(scores=swapped, labels=[1] * 4, tie_break=rule)["accuracy"]
                == m.compute(scores=scores, labels=[0] * 4, tie_break=rule)["accuracy"])
    out = m.compute(scores=scores, labels=[0] * 4, tie_break="lenient", return_correct=True)
    assert out["correct"] == [True, True, False, True]


def test_multiple_choice_five_candidates():
    m = load_metric("multiple_choice_accuracy")
    scores = [[0.9, 0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.1, 0.1, 0.1], [0.4, 0.1, 0.4, 0.0, 0.0]]
    assert m.compute(scores=scores, labels=[0, 0, 0], tie_break="lenient")["accuracy"] == pytest.approx(2 / 3)
    assert m.compute(scores=scores, labels=[0, 0, 0], tie_break="strict")["accuracy"] == pytest.approx(1 / 3)


def test_multiple_choice_macro_accuracy_groups():
    m = load_metric("multiple_choice_accuracy")
    right, wrong = [0.9, 0.1], [0.1, 0.9]
    scores = [right, right, wrong, right] + [wrong] * 3 + [right] * 2
    groups = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    out = m.compute(scores=scores, labels=[0] * 9, groups=groups)
    assert out["group_accuracy"] == {"a": 0.75, "b": 0.0, "c": 1.0}
    assert out["group_count"] == {"a": 4, "b": 3, "c": 2}
    assert out["macro_accuracy"] == pytest.approx((0.75 + 0 + 1) / 3)
    assert out["accuracy"] == pytest.approx(5 / 9)
    # ARO VG-Attribution: groups below a minimum size leave the macro mean
    out = m.compute(scores=scores, labels=[0] * 9, groups=groups, min_group_size=3)
    assert out["macro_accuracy"] == pytest.approx(0.375) and out["macro_groups"] == 2
    # ARO VG-Relation: listed groups leave the macro mean
    out = m.compute(scores=scores, labels=[0] * 9, groups=groups, exclude_groups=["b"])
    assert out["macro_accuracy"] == pytest.approx(0.875)


def test_multiple_choice_rejects_bad_tie_rule():
    with pytest.raises(ValueError, match="tie_break"):
        load_metric("multiple_choice_accuracy").compute(scores=[[1.0, 0.0]], labels=[0], tie_break="random")


def test_classification_accuracy_and_mean_per_class():
    m = load_metric("classification_accuracy")
    # class 0: 4 of 4 right, class 1: 0 of 1, class 2: 1 of 2  -> acc 5/7, mean per class (1 + 0 + 0.5) / 3
    out = m.compute(predictions=[0, 0, 0, 0, 2, 2, 1], references=[0, 0, 0, 0, 1, 2, 2])
    assert out["accuracy"] == pytest.approx(5 / 7)
    assert out["mean_per_class_accuracy"] == pytest.approx(0.5)
    assert out["num_classes"] == 3


def test_retrieval_recall_multiple_ground_truths():
    m = load_metric("retrieval_recall")
    ranked = [[7, 3, 1, 9, 4, 5, 6, 0, 2, 8],   # gt {1, 8}: first hit at rank 3
              [2, 0, 1, 3, 4, 5, 6, 7, 8, 9],   # gt {2}: rank 1
              [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],   # gt {42}: never
              [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]]   # gt {3, 4}: rank 9
    out = m.compute(predictions=ranked, references=[[1, 8], [2], [42], [4, 3]], k=[1, 5, 10])
    assert out == {"recall@1": 0.25, "recall@5": 0.5, "recall@10": 0.75, "n": 4}
    assert math.isclose(m.compute(predictions=ranked, references=[[1, 8], [2], [42], [4, 3]], k=[3])["recall@3"], 0.5)
