"""Valid synthetic result records for the leaderboard, store, regression and HTML tests."""
from __future__ import annotations

import copy
from pathlib import Path

from mmbench.errors import MMBenchError
from mmbench.results.records import SCHEMA_VERSION, write_record
from mmbench.training.config import resolve_config

VERSIONS = {"coherence/conditional": 1, "coherence/unconditional": 1}


def make_record(model: str = "mvae", seed: int = 0, dataset: str = "polymnist", tier: str = "quick",
                coherence: float = 0.5, metrics: dict[str, float] | None = None, **fields) -> dict:
    """A record with coherence for k=1..4 around `coherence`; `metrics` adds or overrides scores."""
    scores = {f"coherence/conditional/k={k}": coherence - 0.05 + 0.025 * k for k in range(1, 5)}
    scores["coherence/conditional"] = sum(scores.values()) / 4
    scores["coherence/unconditional"] = coherence / 2
    scores.update(metrics or {})
    record = {
        "schema_version": SCHEMA_VERSION,
        "model": model,
        "dataset": dataset,
        "tier": tier,
        "seed": seed,
        "config": {"model_name": model, "dataset_name": dataset, "tier": tier, "seed": seed, **_sections(model, dataset, tier)},
        "metrics": scores,
        "metric_versions": dict(VERSIONS),
        "classifier_accuracy": {f"m{i}": 0.98 for i in range(5)},
        "num_parameters": 123456,
        "timing": {"data_seconds": 1.0, "train_seconds": 60.0 + seed, "classifier_seconds": 0.0, "eval_seconds": 5.0},
        "train_history": [{"epoch": 1, "loss": 100.0}],
        "provenance": {
            "mmbench_version": "0.1.0", "git_commit": "0" * 40, "git_dirty": False, "torch_version": "2.14.1",
            "cuda_version": None, "device": "cpu", "device_type": "cpu", "python_version": "3.11.0",
            "dataset_checksum": "abc", "classifier_sha256": {"m0": "def"}, "created": f"2025-01-01T00:00:{seed:02d}+00:00",
        },
    }
    record.update(copy.deepcopy(fields))
    return record


def _sections(model: str, dataset: str, tier: str) -> dict:
    """The config sections a run of a known model and dataset resolves to (none for made-up names)."""
    try:
        return resolve_config(model, dataset, tier, [])
    except MMBenchError:
        return {}


def write(results: Path, record: dict, name: str | None = None) -> Path:
    """Write `record` as <results>/<name>/result.json (name defaults to model-dataset-tier-seed)."""
    name = name or f"{record['model']}-{record['dataset']}-{record['tier']}-seed{record['seed']}"
    return write_record(results / name, record)
