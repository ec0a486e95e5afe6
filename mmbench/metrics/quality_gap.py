"""Quality gap to the unimodal VAE: how much worse a multimodal model's samples are per modality.

Daunhawer et al. show that models which sub-sample modalities cannot match a unimodal VAE's
generative quality. The gap compares a run's unconditional sample quality (FID, or the classifier
feature distance) with that of the `unimodal` run of the same dataset, tier and seed.
"""
from __future__ import annotations

from mmbench.metrics.base import Metric

REFERENCE_MODEL = "unimodal"


class QualityGap(Metric):
    """Per modality: own − reference (`.../m0`) and own / reference (`.../ratio/m0`)."""

    name = "quality_gap"
    version = 1
    higher_is_better = False
    label = "gap"

    def reset(self) -> None:
        self.own: dict[str, float] = {}
        self.reference: dict[str, float] = {}

    def update(self, own: dict[str, float], reference: dict[str, float]) -> None:
        self.own.update(own)
        self.reference.update(reference)

    def compute(self) -> dict[str, float]:
        # imported here: families imports this module for the QualityGap class
        from mmbench.metrics.families import QUALITY_FAMILIES

        out = {}
        for family in QUALITY_FAMILIES:
            for key, value in sorted(self.own.items()):
                head, _, modality = key.rpartition("/")
                if head != family or not modality.startswith("m") or key not in self.reference:
                    continue
                ref = self.reference[key]
                out[f"{self.name}/{family}/{modality}"] = value - ref
                if ref > 0:
                    out[f"{self.name}/{family}/ratio/{modality}"] = value / ref
        return out


def quality_gap(record: dict, reference: dict) -> dict[str, float]:
    metric = QualityGap()
    metric.update(record["metrics"], reference["metrics"])
    return metric.compute()


def same_versions(a: dict, b: dict) -> bool:
    """Whether two records' scores were made alike: the same score versions (networks, tier recipe,
    judge; each model's own version aside) and the same version of every metric both report. A
    60-epoch unimodal run is no reference for a 100-epoch one."""
    def scored_with(record: dict) -> dict[str, int]:
        return {k: v for k, v in (record.get("score_versions") or {}).items() if not k.startswith("model:")}

    metrics_a, metrics_b = a.get("metric_versions") or {}, b.get("metric_versions") or {}
    return scored_with(a) == scored_with(b) and all(metrics_b.get(k, v) == v for k, v in metrics_a.items())
