"""Coherence: do generated modalities carry the shared label? Judged by frozen classifiers."""
from __future__ import annotations

import torch

from mmbench.metrics.base import Metric


LEARNED_MARGIN = 0.05
"""Coherence this far above chance (1 / number of labels) at least before a model counts as having
encoded the shared label: runs below it differ in noise, so neither a ranking nor a claim is read
from them."""


def chance_ceiling(classes: int) -> float:
    """The most coherence a model that has not learnt a label of `classes` is read to have."""
    return 1 / classes + LEARNED_MARGIN


def at_chance(coherence: float, classes: int) -> bool:
    """Whether `coherence` does not beat chance, 1 / `classes`, by LEARNED_MARGIN."""
    return coherence <= chance_ceiling(classes)


class ConditionalCoherence(Metric):
    """Accuracy of the classifier of target m on x_m generated from subset S, for m outside S.

    Reported per subset size k = |S| as the mean over all (S, m) pairs of that size, plus their
    mean over k.
    """

    name = "coherence/conditional"
    version = 2  # 2: judged by classifier recipe v3
    higher_is_better = True
    label = "coh"
    summary_label = "coh mean"
    lower, upper = 0.0, 1.0

    def __init__(self, subsets: torch.Tensor):
        self.subsets = subsets.cpu()
        super().__init__()

    def reset(self) -> None:
        shape = self.subsets.shape
        self.correct = torch.zeros(shape, dtype=torch.float64)
        self.count = torch.zeros(shape, dtype=torch.float64)

    def update(self, target: int, rows: torch.Tensor, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """predictions (len(rows), B): predicted labels of target generated from subsets[rows]."""
        hits = (predictions.cpu() == labels.cpu().unsqueeze(0)).sum(1).double()
        self.correct[rows.cpu(), target] += hits
        self.count[rows.cpu(), target] += predictions.shape[1]

    def pair_accuracy(self) -> torch.Tensor:
        """(K, M) accuracy per (subset, target); NaN where not measured or m in S."""
        acc = self.correct / self.count
        return acc.masked_fill(self.subsets | (self.count == 0), float("nan"))

    def compute(self) -> dict[str, float]:
        acc = self.pair_accuracy()
        sizes = self.subsets.sum(1)
        out = {}
        for k in sorted(set(sizes.tolist())):
            values = acc[sizes == k]
            values = values[~values.isnan()]
            if len(values):
                out[f"{self.name}/k={k}"] = values.mean().item()
        if out:
            out[self.name] = sum(out.values()) / len(out)
        return out


class UnconditionalCoherence(Metric):
    """Fraction of joint prior samples whose M generated modalities get the same predicted label."""

    name = "coherence/unconditional"
    version = 2  # 2: judged by classifier recipe v3
    higher_is_better = True
    label = "coh uncond"
    lower, upper = 0.0, 1.0

    def reset(self) -> None:
        self.agree = 0
        self.total = 0

    def update(self, predictions: torch.Tensor) -> None:
        """predictions (M, N): predicted label of each modality of N joint samples."""
        self.agree += (predictions == predictions[:1]).all(0).sum().item()
        self.total += predictions.shape[1]

    def compute(self) -> dict[str, float]:
        return {self.name: self.agree / self.total} if self.total else {}
