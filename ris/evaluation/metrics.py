"""Retrieval quality metrics over one ranked result list, and their means over a query set."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np


def average_precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Standard AP@k: precision at each hit in the top k, summed, divided by min(k, |relevant|)."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def tutorial_average_precision(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """The towhee tutorial's AP@k: the same sum divided by the hits found, so misses cost nothing.

    One hit at rank 1 and nothing else scores 1.0 here; reported only to compare with the tutorial.
    """
    hits, total = 0, 0.0
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the top k (the tutorial's "hit ratio")."""
    if not relevant:
        return 0.0
    return sum(1 for item in ranked[:k] if item in relevant) / len(relevant)


def precision_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    return sum(1 for item in ranked[:k] if item in relevant) / k


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """1 / rank of the first relevant item, 0 when none is in the list."""
    for rank, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


@dataclass
class MetricMeans:
    """Accumulates per-query values by metric name; `means()` averages each."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **metrics: float) -> None:
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(value)

    def means(self) -> dict[str, float]:
        return {name: float(np.mean(values)) for name, values in self.values.items()}


def class_retrieval_metrics(
    ranked: Sequence[str], relevant: Collection[str], k: int
) -> dict[str, float]:
    """Every class-retrieval metric of one query, keyed by the names the reports use."""
    return {
        f"map@{k}": average_precision_at_k(ranked, relevant, k),
        f"tutorial_map@{k}": tutorial_average_precision(ranked, relevant, k),
        f"recall@{k}": recall_at_k(ranked, relevant, k),
        "precision@1": precision_at_k(ranked, relevant, 1),
    }


def copy_detection_metrics(ranked: Sequence[str], original: str, k: int) -> dict[str, float]:
    """Every copy-detection metric of one query: is its original at rank 1, in the top k, where."""
    found = {original}
    return {
        "recall@1": recall_at_k(ranked, found, 1),
        f"recall@{k}": recall_at_k(ranked, found, k),
        "mrr": reciprocal_rank(ranked[:k], found),
    }
