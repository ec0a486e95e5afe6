"""Score regression checks for CI: compare result records against a committed reference file.

Reference file (JSON):

    {"schema": 1,
     "produced_by": "<the command that wrote it>",
     "notes": "<this format, in words>",
     "entries": [{"model": "mvae", "dataset": "polymnist", "tier": "quick", "seed": 0,
                  "overrides": ["train.epochs=1"],                       # optional: --set for --run
                  "metric_versions": {"coherence/conditional": 1},       # optional
                  "score_versions": {"networks": 2, "tier:quick": 2, "model:mvae": 1},  # optional
                  "metrics": {"coherence/conditional": {"value": 0.61, "abs_tol": 0.03},
                              "fid/m0": {"value": 80.2, "rel_tol": 0.1, "higher_is_better": false}}}]}

Each metric has exactly one of `abs_tol` (band value ± abs_tol) or `rel_tol` (band value ±
rel_tol·|value|). Direction comes from `higher_is_better` when given, else from the metric's
family. A higher-is-better metric regresses when current < value - tol, a lower-is-better one when
current > value + tol; beyond the band the other way is "improved" and passes. A run or metric
absent from the results is "missing", and a metric whose version differs from the reference's, or
a record whose score versions (networks, tier recipe, model) differ, is "STALE" (the reference
must be regenerated), as is a record made with another config than the entry resolves to (its
`overrides`: say, an old run left in the results folder); both fail like a regression. Where a
seed has records of several configs (run with the tier's recipe and again with `--set`), an entry
is checked against the newest one made with its own config.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tabulate import tabulate

from mmbench.files import read_json
from mmbench.errors import MMBenchError
from mmbench.metrics.families import higher_is_better
from mmbench.results.records import compatibility
from mmbench.results.store import StoredRecord, by_creation
from mmbench.training.config import with_added_settings

REFERENCE_SCHEMA = 1
FAILING = ("REGRESSION", "missing", "STALE")
NOTES = (
    "Score regression reference for `mmbench regress --reference FILE`. Each entry names one run "
    "(model, dataset, tier, seed; optional `overrides` are the --set values `--run` passes) and, per "
    "metric, the reference `value` with exactly one of `abs_tol` (band value +- abs_tol) or `rel_tol` "
    "(band value +- rel_tol*|value|), and `higher_is_better`. Worse than the band in the bad direction "
    "is REGRESSION; better than the band is 'improved' (passes); absent runs/metrics are 'missing' and "
    "changed metric or score versions are 'STALE'; both fail. Regenerate with the command in `produced_by`."
)


@dataclass(frozen=True)
class Expectation:
    value: float
    tolerance: float
    higher_is_better: bool

    @property
    def band(self) -> tuple[float, float]:
        return self.value - self.tolerance, self.value + self.tolerance

    def verdict(self, current: float) -> str:
        lo, hi = self.band
        worse, better = (current < lo, current > hi) if self.higher_is_better else (current > hi, current < lo)
        return "REGRESSION" if worse else "improved" if better else "ok"


@dataclass(frozen=True)
class Entry:
    model: str
    dataset: str
    tier: str
    seed: int
    overrides: tuple[str, ...]
    metric_versions: dict[str, int] | None
    metrics: dict[str, Expectation]
    score_versions: dict[str, int] | None = None

    @property
    def run_key(self) -> tuple[str, str, str, int]:
        return self.model, self.dataset, self.tier, self.seed


def load_reference(path: str | Path) -> list[Entry]:
    """Parse and check a reference file; errors name the file and the offending field."""
    path = Path(path)
    data = read_json(path, "reference file")
    if not isinstance(data, dict) or data.get("schema") != REFERENCE_SCHEMA:
        raise MMBenchError(f"{path}: field 'schema' must be {REFERENCE_SCHEMA}")
    if not isinstance(data.get("entries"), list) or not data["entries"]:
        raise MMBenchError(f"{path}: field 'entries' must be a non-empty list (an empty reference would check nothing)")
    return [_entry(e, f"{path}: entries[{i}]") for i, e in enumerate(data["entries"])]


def _entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise MMBenchError(f"{where} must be an object")
    for key, kind in (("model", str), ("dataset", str), ("tier", str), ("seed", int), ("metrics", dict)):
        if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
            raise MMBenchError(f"{where}.{key} must be {kind.__name__}")
    if raw["seed"] < 0 or not raw["metrics"]:
        raise MMBenchError(f"{where} needs a seed >= 0 and at least one metric")
    overrides = raw.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise MMBenchError(f"{where}.overrides must be a list of KEY=VALUE strings")
    for field in ("metric_versions", "score_versions"):
        versions = raw.get(field)
        if versions is not None and not (isinstance(versions, dict) and all(isinstance(v, int) for v in versions.values())):
            raise MMBenchError(f"{where}.{field} must map names to integers")
    metrics = {name: _expectation(name, spec, f"{where}.metrics[{name!r}]") for name, spec in raw["metrics"].items()}
    return Entry(raw["model"], raw["dataset"], raw["tier"], raw["seed"], tuple(overrides), raw.get("metric_versions"),
                 metrics, raw.get("score_versions"))


def _expectation(name: str, spec: Any, where: str) -> Expectation:
    if not isinstance(spec, dict) or not _finite(spec.get("value")):
        raise MMBenchError(f"{where}.value must be a finite number")
    tolerances = [k for k in ("abs_tol", "rel_tol") if k in spec]
    if len(tolerances) != 1 or not _finite(spec[tolerances[0]]) or spec[tolerances[0]] < 0:
        raise MMBenchError(f"{where} needs exactly one of abs_tol, rel_tol, a number >= 0")
    tol = spec["abs_tol"] if "abs_tol" in spec else spec["rel_tol"] * abs(spec["value"])
    known = higher_is_better(name)
    direction = spec.get("higher_is_better", known)
    if not isinstance(direction, bool):
        raise MMBenchError(f"{where}.higher_is_better must be true or false (unknown metric family, so it must be given)")
    if known is not None and direction != known:
        raise MMBenchError(f"{where}.higher_is_better is {str(direction).lower()}, but {name} is "
                           f"{'higher' if known else 'lower'}-is-better")
    return Expectation(float(spec["value"]), float(tol), direction)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _version(versions: dict[str, int], metric: str) -> int | None:
    """The version of the metric object that produced `metric` (longest matching name prefix)."""
    owners = [name for name in versions if metric == name or metric.startswith(name + "/")]
    return versions[max(owners, key=len)] if owners else None


def _score_versions(record: dict) -> dict[str, int]:
    return {k: v for k, v in compatibility(record).items() if k not in record["metric_versions"]}


def holds_config(record: dict, config: dict | None) -> bool:
    """Whether `record` was made with `config` (None: any config will do)."""
    return config is None or with_added_settings(record["config"]) == json.loads(json.dumps(config))


def record_for(run_key: tuple, records: list[StoredRecord], config: dict | None = None) -> StoredRecord | None:
    """The record an entry is checked against: the newest of its run made with `config`, else the
    newest of its run (which is then STALE), else None. One seed may be in the results twice, run
    with the tier's recipe and with other `--set` settings; the entry means the one it resolves to."""
    runs = [item for item in by_creation(records) if item.run_key == run_key]
    return next((item for item in reversed(runs) if holds_config(item.record, config)), runs[-1] if runs else None)


def compare(entries: list[Entry], records: list[StoredRecord], configs: dict[tuple, dict] | None = None) -> list[dict]:
    """One row per (entry, metric): reference, current, band and verdict, in reference order.
    `configs`: the config each entry's run resolves to (by run key), which its record must hold."""
    rows = []
    for entry in entries:
        config = None if configs is None else configs[entry.run_key]
        item = record_for(entry.run_key, records, config)
        record = None if item is None else item.record
        for metric, expected in sorted(entry.metrics.items()):
            current = None if record is None else record["metrics"].get(metric)
            if current is None:
                verdict = "missing"
            elif entry.metric_versions is not None and _version(entry.metric_versions, metric) != _version(record["metric_versions"], metric):
                verdict = "STALE"
            elif entry.score_versions is not None and entry.score_versions != _score_versions(record):
                verdict = "STALE"
            elif not holds_config(record, config):
                verdict = "STALE"
            else:
                verdict = expected.verdict(current)
            rows.append({"model": entry.model, "dataset": entry.dataset, "tier": entry.tier, "seed": entry.seed,
                         "metric": metric, "reference": expected.value, "current": current,
                         "band": expected.band, "verdict": verdict})
    return rows


def report(rows: list[dict]) -> str:
    """The comparison as a text table and a one-line summary."""
    table = tabulate(
        [[r["model"], r["dataset"], r["tier"], r["seed"], r["metric"], f"{r['reference']:.4f}",
          "" if r["current"] is None else f"{r['current']:.4f}", "[{:.4f}, {:.4f}]".format(*r["band"]), r["verdict"]]
         for r in rows],
        ["model", "dataset", "tier", "seed", "metric", "reference", "current", "band", "verdict"],
        tablefmt="simple", disable_numparse=True, colalign=("left",) * 5 + ("right",) * 3 + ("left",),
    )
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("ok", "improved", *FAILING)}
    return f"{table}\n\n" + ", ".join(f"{n} {v}" for v, n in counts.items() if n or v in ("ok", "REGRESSION")) + "\n"


def failed(rows: list[dict]) -> bool:
    return any(r["verdict"] in FAILING for r in rows)


MIN_SPREAD_SEEDS = 3


def reference_from_records(records: list[StoredRecord], produced_by: str, abs_tol: float | None = None,
                           rel_tol: float | None = None, metrics: tuple[str, ...] = (),
                           overrides: tuple[str, ...] = (), spread: float | None = None,
                           config_of: Callable[[tuple], dict] | None = None) -> tuple[dict, list[str]]:
    """A reference holding every record's metrics (only those under the `metrics` prefixes, if given).
    `config_of(run_key)`: the config the reference's runs resolve to (with `overrides`), which the
    chosen record of each run must hold; a results folder holding a seed under other settings only
    is refused, since its entry could never pass.

    With `spread` K, every run of a (model, dataset, tier) gets the same band, set by the seeds'
    spread: their mean ± max(K · sample std, abs_tol), which needs at least 3 seeds per model.
    Returns the reference and the metrics left out because their family has no known direction.
    """
    if any(v is not None and not math.isfinite(v) for v in (abs_tol, rel_tol, spread)):
        raise MMBenchError("--abs-tol, --rel-tol and --spread must be finite numbers")
    if spread is not None:
        if spread <= 0 or rel_tol is not None or (abs_tol is not None and abs_tol < 0):
            raise MMBenchError("--spread K needs K > 0 and at most --abs-tol (a floor on the band), not --rel-tol")
    elif (abs_tol is None) == (rel_tol is None) or (abs_tol if abs_tol is not None else rel_tol) < 0:
        raise MMBenchError("give exactly one of --abs-tol, --rel-tol (a number >= 0), or --spread K")
    tolerance = {"abs_tol": abs_tol} if abs_tol is not None else {"rel_tol": rel_tol}
    runs = {}
    for key in sorted({item.run_key for item in records}):
        config = None if config_of is None else config_of(key)
        item = record_for(key, records, config)
        if not holds_config(item.record, config):
            raise MMBenchError(f"{item.path}: no record of {'/'.join(map(str, key))} was made with the reference's settings "
                               f"({' '.join(overrides) or 'no --set'}); give the --set values its runs were made with")
        runs[key] = item.record
    seeds: dict[tuple[str, str, str], list[dict]] = {}
    for (model, dataset, tier, _), record in sorted(runs.items()):
        seeds.setdefault((model, dataset, tier), []).append(record)
    if spread is not None and (few := [k for k, v in seeds.items() if len(v) < MIN_SPREAD_SEEDS]):
        raise MMBenchError(f"--spread needs at least {MIN_SPREAD_SEEDS} seeds per run; {'/'.join(few[0])} has {len(seeds[few[0]])}")
    entries, skipped = [], set()
    for (model, dataset, tier, seed), record in sorted(runs.items()):
        chosen = {}
        for name, value in sorted(record["metrics"].items()):
            if metrics and not any(name == m or name.startswith(m + "/") for m in metrics):
                continue
            direction = higher_is_better(name)
            if direction is None:
                skipped.add(name)
                continue
            if spread is None:
                chosen[name] = {"value": value, **tolerance, "higher_is_better": direction}
                continue
            values = [r["metrics"][name] for r in seeds[(model, dataset, tier)] if name in r["metrics"]]
            if len(values) < MIN_SPREAD_SEEDS:
                continue
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            chosen[name] = {"value": mean, "abs_tol": max(spread * std, abs_tol or 0.0), "higher_is_better": direction,
                            "seed_values": values}
        if chosen:
            entries.append({"model": model, "dataset": dataset, "tier": tier, "seed": seed, "overrides": list(overrides),
                            "metric_versions": record["metric_versions"], "score_versions": _score_versions(record),
                            "metrics": chosen})
    if not entries:
        raise MMBenchError("no result records with matching metrics to make a reference from")
    return {"schema": REFERENCE_SCHEMA, "produced_by": produced_by, "notes": NOTES, "entries": entries}, sorted(skipped)
