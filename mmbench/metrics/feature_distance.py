"""A cheap stand-in for FID on CPU: the Fréchet distance in a coherence classifier's features.

Inception costs ~7 images/s on 2 CPU cores, too much for the quick tier. The penultimate layer
of the frozen per-modality classifier is a feature space that is specific to the dataset, so the
number is comparable only within one dataset build and classifier asset, and it is never called
FID.
"""
from __future__ import annotations

from typing import ClassVar

from mmbench.metrics.frechet import FrechetDistance


class ClassifierFeatureDistance(FrechetDistance):
    """Fréchet distance between test images and generated images in classifier features."""

    name: ClassVar[str] = "feature_distance"
    version: ClassVar[int] = 2  # 2: features of classifier recipe v3
    higher_is_better: ClassVar[bool] = False
    label: ClassVar[str] = "FD"
