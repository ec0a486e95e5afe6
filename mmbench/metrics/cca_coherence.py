"""Label-free cross-modal coherence for image-caption data (CUB): the metric.

A (real or generated) image-caption pair scores the cosine similarity of its two canonical
projections, fitted by `mmbench.evaluation.cca` (where the method and its features are described):

- `coherence/cca/ground_truth`: real image with its real caption, the reference a model aims for;
- `coherence/cca/image->caption`: real image with the caption generated from it;
- `coherence/cca/caption->image`: image generated from a caption with that caption.

Mismatched real pairs score about 0 (chance).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from mmbench.metrics.base import Metric

DIRECTIONS = ("ground_truth", "image->caption", "caption->image")


class CCACoherence(Metric):
    """Mean cosine similarity of canonical image and caption variables, per direction."""

    name = "coherence/cca"
    version = 1
    higher_is_better = True
    label = "CCA coh"
    lower, upper = -1.0, 1.0  # cosine similarity

    def reset(self) -> None:
        self.total = dict.fromkeys(DIRECTIONS, 0.0)
        self.count = dict.fromkeys(DIRECTIONS, 0)

    def update(self, direction: str, u: torch.Tensor, v: torch.Tensor) -> None:
        """u, v: (N, k) canonical variables of N (image, caption) pairs."""
        self.total[direction] += F.cosine_similarity(u, v, dim=1).sum().item()
        self.count[direction] += len(u)

    def compute(self) -> dict[str, float]:
        return {f"{self.name}/{d}": self.total[d] / self.count[d] for d in DIRECTIONS if self.count[d]}
