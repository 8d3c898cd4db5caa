"""The retrieval metrics against examples computed by hand."""

from __future__ import annotations

import pytest

from ris.evaluation.metrics import (
    MetricMeans,
    average_precision_at_k,
    class_retrieval_metrics,
    copy_detection_metrics,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    tutorial_average_precision,
)

RANKED = ["a", "x", "b", "y", "c"]
RELEVANT = {"a", "b", "c", "d"}


def test_average_precision_divides_by_min_of_k_and_relevant() -> None:
    # Hits at ranks 1, 3 and 5: precisions 1, 2/3 and 3/5; four relevant items exist.
    assert average_precision_at_k(RANKED, RELEVANT, 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    # With k = 3 only two can count, and at most three could have been found.
    assert average_precision_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(["x", "a"], {"a"}, 2) == pytest.approx(0.5)
    assert average_precision_at_k(["x", "y"], {"a"}, 2) == 0.0
    assert average_precision_at_k(RANKED, set(), 5) == 0.0


def test_tutorial_average_precision_divides_by_hits_found() -> None:
    assert tutorial_average_precision(RANKED, RELEVANT, 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # One hit at rank 1 out of four relevant: perfect for the tutorial, 0.25 for standard AP.
    assert tutorial_average_precision(["a", "x", "y"], RELEVANT, 3) == 1.0
    assert average_precision_at_k(["a", "x", "y"], RELEVANT, 3) == pytest.approx(1 / 3)
    assert tutorial_average_precision(["x", "y"], RELEVANT, 2) == 0.0


def test_recall_precision_and_reciprocal_rank() -> None:
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(3 / 4)
    assert recall_at_k(RANKED, RELEVANT, 1) == pytest.approx(1 / 4)
    assert precision_at_k(RANKED, RELEVANT, 1) == 1.0
    assert precision_at_k(RANKED, RELEVANT, 2) == 0.5
    assert reciprocal_rank(["x", "y", "o"], {"o"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y"], {"o"}) == 0.0


def test_named_metric_sets_and_means() -> None:
    assert class_retrieval_metrics(RANKED, RELEVANT, 5) == pytest.approx(
        {
            "map@5": (1 + 2 / 3 + 3 / 5) / 4,
            "tutorial_map@5": (1 + 2 / 3 + 3 / 5) / 3,
            "recall@5": 3 / 4,
            "precision@1": 1.0,
        }
    )
    assert copy_detection_metrics(["x", "o", "y"], "o", 10) == pytest.approx(
        {"recall@1": 0.0, "recall@10": 1.0, "mrr": 0.5}
    )
    # The original just past the top k is a miss.
    assert copy_detection_metrics(["x", "y", "o"], "o", 2)["mrr"] == 0.0
    means = MetricMeans()
    means.add(**copy_detection_metrics(["o"], "o", 10))
    means.add(**copy_detection_metrics(["x", "o"], "o", 10))
    assert means.means() == pytest.approx({"recall@1": 0.5, "recall@10": 1.0, "mrr": 0.75})
