"""Metric families are read from the Metric classes: each class declares its direction, bounds,
label and digits once, and the family lookups used by tables, plots and validation agree."""
from __future__ import annotations

import pytest

from mmbench.evaluation.evaluators import EVALUATORS
from mmbench.metrics.base import Metric
from mmbench.metrics.families import (
    FAMILIES,
    METRICS,
    PRIMARY_METRIC,
    QUALITY_FAMILIES,
    bounds_error,
    column_order,
    digits,
    family_of,
    higher_is_better,
    label,
)
from mmbench.metrics.quality_gap import QualityGap


@pytest.mark.parametrize("cls", METRICS, ids=lambda cls: cls.name)
def test_every_metric_class_declares_its_family(cls):
    assert issubclass(cls, Metric)
    assert isinstance(cls.higher_is_better, bool)
    assert family_of(cls.name).prefix == cls.name
    assert family_of(f"{cls.name}/some/detail").prefix == cls.name
    assert higher_is_better(cls.name) == cls.higher_is_better
    assert higher_is_better(f"{cls.name}/x") == cls.higher_is_better
    assert digits(f"{cls.name}/x") == cls.digits
    assert label(f"{cls.name}/x") == f"{cls.label} x"
    assert label(cls.name) == (cls.summary_label or cls.label)
    if cls.lower is not None:
        assert bounds_error(f"{cls.name}/x", cls.lower) is None
        assert bounds_error(f"{cls.name}/x", cls.lower - 1) is not None
    if cls.upper is not None:
        assert bounds_error(f"{cls.name}/x", cls.upper) is None
        assert bounds_error(f"{cls.name}/x", cls.upper + 1) is not None
    if cls.lower is None and cls.upper is None:
        assert bounds_error(f"{cls.name}/x", -1e30) is None
        assert bounds_error(f"{cls.name}/x", 1e30) is None


def test_families_are_the_metric_classes_in_order():
    assert [f.prefix for f in FAMILIES] == [cls.name for cls in METRICS]
    assert len({cls.name for cls in METRICS}) == len(METRICS)
    assert PRIMARY_METRIC == METRICS[0].name


def test_every_scored_metric_has_a_family():
    scored = {m for evaluator in EVALUATORS.values() for m in evaluator.metrics} | {QualityGap}
    assert scored <= set(METRICS)


def test_quality_families_are_known_and_lower_is_better():
    assert QUALITY_FAMILIES == ("feature_distance", "fid")
    for family in QUALITY_FAMILIES:
        assert family_of(family).prefix == family
        assert higher_is_better(family) is False


def test_leaderboard_labels_digits_and_bounds_are_unchanged():
    assert label("coherence/conditional/k=2") == "coh k=2"
    assert label("coherence/conditional") == "coh mean"
    assert label("coherence/unconditional") == "coh uncond"
    assert label("coherence/cca/image->caption") == "CCA coh image->caption"
    assert label("fid/m0") == "FID m0"
    assert label("feature_distance/k=1") == "FD k=1"
    assert label("quality_gap/fid/ratio/m0") == "gap FID ratio/m0"
    assert label("quality_gap/feature_distance/mean") == "gap FD mean"
    assert label("likelihood/joint") == "LL joint"
    assert label("latent_probe/k=1") == "probe k=1"
    assert label("discrepancy/mean") == "Δ mean"
    assert label("new_family/x") == "new_family/x"
    assert digits("fid/m0") == 2
    assert digits("likelihood/joint") == 2
    assert digits("coherence/conditional/k=2") == 3
    assert digits("new_family/x") == 3
    assert bounds_error("coherence/conditional/k=1", 1.5) == "= 1.5 is outside [0, 1]"
    assert bounds_error("coherence/cca/x", -0.5) is None
    assert bounds_error("fid/m0", -3.0) == "= -3.0 is outside [0, inf]"
    assert higher_is_better("new_family/x") is None
    assert column_order({"zeta", "fid/m1", "coherence/conditional", "coherence/conditional/k=10",
                         "coherence/conditional/k=2", "fid/m0", "likelihood/joint"}) == [
        "coherence/conditional/k=2", "coherence/conditional/k=10", "coherence/conditional",
        "fid/m0", "fid/m1", "likelihood/joint", "zeta",
    ]


def test_label_defaults_to_name_and_survives_subclassing():
    class Plain(Metric):
        name = "plain"
        higher_is_better = True

        def reset(self): ...
        def update(self): ...
        def compute(self): return {}

    class Labelled(Plain):
        label = "P"

    class SameFamily(Labelled):
        pass

    class Renamed(Labelled):
        name = "renamed"

    assert (Plain.label, Plain.digits, Plain.lower, Plain.upper, Plain.summary_label) == ("plain", 3, None, None, None)
    assert SameFamily.label == "P"
    assert Renamed.label == "renamed"
