"""Seed aggregation: one board per (dataset, tier, compatible versions), one row per model.

Each cell is the mean over seeds with a 95% confidence interval from the t-distribution,
mean ± t(0.975, n-1) · s / sqrt(n) (quantile from scipy.special.stdtrit, cheaper to import than
scipy.stats); with one seed there is no interval. Records whose metric or score versions (networks,
tier recipe, model) differ are never pooled: they land on separate boards, because a version bump means the numbers are not
comparable. Nor are runs of the tier's current recipe pooled with runs that changed its settings
(`--set train.epochs=3`): those get a board of their own, named by the settings they changed.
Models are ranked by PRIMARY_METRIC, higher first.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from mmbench.metrics.families import PRIMARY_METRIC, column_order, summaries
from mmbench.results.records import changed_settings, compatibility
from mmbench.results.store import StoredRecord, newest_per_run
from mmbench.training.config import TIERS

TRAIN_SECONDS = "train_seconds"
NUM_PARAMETERS = "num_parameters"


@dataclass
class Board:
    dataset: str
    tier: str
    versions: dict[str, int]
    """Metric and score versions of its records (see records.compatibility)."""
    metrics: list[str]
    """Metric columns present on this board, in display order."""
    models: list[str]
    """Ranked: best PRIMARY_METRIC mean first, models without it last, ties by name."""
    mean: pd.DataFrame
    ci95: pd.DataFrame
    """Half-width of the 95% interval; NaN with fewer than two values."""
    count: pd.DataFrame
    seeds: pd.Series
    records: dict[str, list[StoredRecord]]
    """Per model, sorted by seed: where each number came from."""
    settings: tuple[str, ...] = ()
    """The settings (`train.epochs=3`) in which its runs depart from their tier's current recipe."""

    @property
    def title(self) -> str:
        """`polymnist / cpu v2`, then any changed settings: the tier's recipe version and those
        settings tell apart boards of one tier."""
        version = self.versions.get(f"tier:{self.tier}")
        title = f"{self.dataset} / {self.tier}" + ("" if version is None else f" v{version}")
        return title + (f" with {', '.join(self.settings)}" if self.settings else "")

    def rank(self, model: str) -> int | None:
        """1-based rank, or None for a model without the primary metric."""
        if PRIMARY_METRIC not in self.mean or pd.isna(self.mean.at[model, PRIMARY_METRIC]):
            return None
        return self.models.index(model) + 1


def mean_ci95(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% t-interval half-width (NaN for fewer than two values)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()) if len(x) else math.nan, math.nan
    return float(x.mean()), float(stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / math.sqrt(len(x)))


def build_boards(records: list[StoredRecord]) -> list[Board]:
    """Aggregate records (one per run and versions; see store.latest_per_run) into sorted boards."""
    # Records share a board unless a metric they both report has different versions: a model
    # that lacks a metric (the unimodal VAE has no quality gap) still ranks with the others; records
    # judged by different classifiers (a `judge:` key) never share one.
    boards: list[tuple[str, str, tuple[str, ...], dict[str, int], list[StoredRecord]]] = []
    for item in sorted(records, key=lambda i: json.dumps(compatibility(i.record), sort_keys=True)):
        r, versions, settings = item.record, compatibility(item.record), changed_settings(item.record)
        for dataset, tier, changed, merged, items in boards:
            same_judge = {k for k in merged if k.startswith("judge:")} == {k for k in versions if k.startswith("judge:")}
            if ((dataset, tier, changed) == (r["dataset"], r["tier"], settings) and same_judge
                    and all(merged.get(k, v) == v for k, v in versions.items())):
                merged.update(versions)
                items.append(item)
                break
        else:
            boards.append((r["dataset"], r["tier"], settings, dict(versions), [item]))
    # records of one seed whose versions differ but never clash (a rerun that adds a metric) meet on
    # one board: the newest stands for the seed, which is never counted twice
    groups = {(d, t, json.dumps(v, sort_keys=True), s): list(newest_per_run(items).values()) for d, t, s, v, items in boards}
    newest_first = lambda g: -json.loads(g[2]).get(f"tier:{g[1]}", 0)  # of one tier, the current recipe's board leads
    order = sorted(groups, key=lambda g: (g[0], list(TIERS).index(g[1]), newest_first(g), g[3], g[2]))
    return [_board(*key, groups[key]) for key in order]


def _board(dataset: str, tier: str, versions: str, settings: tuple[str, ...], items: list[StoredRecord]) -> Board:
    items = sorted(items, key=lambda s: (s.record["model"], s.record["seed"], s.path))
    runs = pd.DataFrame([
        {"model": s.record["model"], **s.record["metrics"], **summaries(s.record["metrics"]),
         TRAIN_SECONDS: s.record["timing"].get("train_seconds", math.nan), NUM_PARAMETERS: s.record["num_parameters"]}
        for s in items
    ])
    metrics = column_order({m for s in items for m in {**s.record["metrics"], **summaries(s.record["metrics"])}})
    columns = [*metrics, TRAIN_SECONDS, NUM_PARAMETERS]
    runs[columns] = runs[columns].astype(float)
    grouped = runs.groupby("model", sort=True)[columns]
    mean, count = grouped.mean(), grouped.count()
    ci95 = grouped.agg(lambda col: mean_ci95(col.dropna())[1])
    if PRIMARY_METRIC in mean:
        ranked = mean[PRIMARY_METRIC].reset_index().assign(missing=lambda f: f[PRIMARY_METRIC].isna())
        models = ranked.sort_values(["missing", PRIMARY_METRIC, "model"], ascending=[True, False, True])["model"].tolist()
    else:
        models = sorted(mean.index)
    records = {m: [s for s in items if s.record["model"] == m] for m in models}
    return Board(dataset, tier, json.loads(versions), metrics, models, mean, ci95, count,
                 runs.groupby("model").size(), records, settings)
