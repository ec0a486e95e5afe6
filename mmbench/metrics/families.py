"""Known metric families: how a metric name is labelled, ordered, bounded and which way is better.

A metric name is `<family>` or `<family>/<detail>` (e.g. `coherence/conditional/k=2`,
`fid/m0`); the family is the `name` of the Metric class that computes it. Direction, bounds,
label and digits are class attributes of that class (see `mmbench.metrics.base.Metric`);
`FAMILIES` is built from `METRICS`, so tables, plots, validation and score regression all read
the classes, and a new metric family is declared by its class plus one entry in `METRICS`.
Names of unknown families are still shown, after the known ones, but have no direction, so
regression checks need one stated in the reference file.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mmbench.metrics.base import Metric
from mmbench.metrics.cca_coherence import CCACoherence
from mmbench.metrics.coherence import ConditionalCoherence, UnconditionalCoherence
from mmbench.metrics.discrepancy import Discrepancy
from mmbench.metrics.feature_distance import ClassifierFeatureDistance
from mmbench.metrics.fid import FID
from mmbench.metrics.latent_probe import LatentProbe
from mmbench.metrics.likelihood import Likelihood
from mmbench.metrics.quality_gap import QualityGap

PRIMARY_METRIC = ConditionalCoherence.name
"""Leaderboard ranking: mean conditional coherence over subset sizes, higher is better."""

METRICS: tuple[type[Metric], ...] = (
    ConditionalCoherence,
    UnconditionalCoherence,
    CCACoherence,
    FID,
    ClassifierFeatureDistance,
    QualityGap,
    Likelihood,
    LatentProbe,
    Discrepancy,
)
"""Every metric class whose values a result record can hold, in leaderboard column order."""

QUALITY_FAMILIES: tuple[str, ...] = (ClassifierFeatureDistance.name, FID.name)
"""Generative-quality families (both lower is better), in order of preference: the trade-off plot
uses the first one a board has; the quality gap and the quality-by-k plots use each in turn."""


@dataclass(frozen=True)
class Family:
    prefix: str
    label: str
    higher_is_better: bool
    digits: int
    lower: float | None = None
    upper: float | None = None
    summary_label: str | None = None

    def matches(self, metric: str) -> bool:
        return metric == self.prefix or metric.startswith(self.prefix + "/")

    @classmethod
    def of(cls, metric: type[Metric]) -> Family:
        """The family a Metric class declares through its class attributes."""
        return cls(
            metric.name, metric.label, metric.higher_is_better, metric.digits,
            metric.lower, metric.upper, metric.summary_label,
        )


FAMILIES: tuple[Family, ...] = tuple(Family.of(metric) for metric in METRICS)


def family_of(metric: str) -> Family | None:
    """The most specific known family of a metric name, or None."""
    found = [f for f in FAMILIES if f.matches(metric)]
    return max(found, key=lambda f: len(f.prefix)) if found else None


def higher_is_better(metric: str) -> bool | None:
    family = family_of(metric)
    return None if family is None else family.higher_is_better


def label(metric: str) -> str:
    """Short column label: `coherence/conditional/k=2` -> `coh k=2`, a family inside another one
    shortened too (`quality_gap/feature_distance/mean` -> `gap FD mean`); unknown names stay as they are."""
    family = family_of(metric)
    if family is None:
        return metric
    if metric == family.prefix:
        return family.summary_label or family.label
    detail = metric[len(family.prefix) + 1:]
    return f"{family.label} {label(detail) if family_of(detail) else detail}"


def digits(metric: str) -> int:
    family = family_of(metric)
    return 3 if family is None else family.digits


def bounds_error(metric: str, value: float) -> str | None:
    """Why `value` is out of its family's range, or None when it is in range."""
    family = family_of(metric)
    if family is None:
        return None
    if family.lower is not None and value < family.lower or family.upper is not None and value > family.upper:
        lo = "-inf" if family.lower is None else f"{family.lower:g}"
        hi = "inf" if family.upper is None else f"{family.upper:g}"
        return f"= {value} is outside [{lo}, {hi}]"
    return None


def _natural(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def column_order(metrics: set[str] | list[str]) -> list[str]:
    """Known families in FAMILIES order (details naturally sorted, the family summary last), then the rest."""
    def key(metric: str) -> tuple:
        family = family_of(metric)
        position = len(FAMILIES) if family is None else FAMILIES.index(family)
        return (position, metric == (family.prefix if family else None), _natural(metric))
    return sorted(set(metrics), key=key)


def subset_size(metric: str) -> int | None:
    """k of a per-subset-size metric such as `coherence/conditional/k=2` or `fid/k=1`, else None."""
    match = re.fullmatch(r".+/k=(\d+)", metric)
    return int(match.group(1)) if match else None


def quality_summary(metrics: dict[str, float], family: str) -> float | None:
    """One generative-quality number of a record for `family` (`fid` or `feature_distance`).

    The bare family metric when the record has it, else the mean over its per-modality values
    (`<family>/m0`, `<family>/m1`, ...), else None.
    """
    if family in metrics:
        return metrics[family]
    per_modality = [v for k, v in metrics.items() if re.fullmatch(re.escape(family) + r"/m\d+", k)]
    return math.fsum(per_modality) / len(per_modality) if per_modality else None


def summaries(metrics: dict[str, float]) -> dict[str, float]:
    """One number per quality family and per quality gap, where a record reports them only per
    modality: `fid` and `quality_gap/<family>` as the mean over modalities (`quality_summary`).
    Leaderboards add them so a headline can show one quality and one gap column."""
    out = {}
    for family in QUALITY_FAMILIES:
        for name in (family, f"quality_gap/{family}"):
            value = quality_summary(metrics, name)
            if name not in metrics and f"{name}/mean" not in metrics and value is not None:
                out[name] = value
    return out
