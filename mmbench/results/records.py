"""Result records: one `result.json` per run, versioned, validated on read and written atomically.

A record carries the scores and everything a reviewer needs to trust or reproduce them: the
resolved config, seeds, versions of mmbench/torch/metrics, git commit, device, and the checksums
of the dataset build and of the classifiers that judged coherence.
"""
from __future__ import annotations

import json
import math
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import mmbench
from mmbench.errors import MMBenchError
from mmbench.files import atomic_write_json
from mmbench.metrics.families import bounds_error
from mmbench.metrics.quality_gap import REFERENCE_MODEL, same_versions
from mmbench.training.config import SECTIONS, TIER_VERSIONS, TIERS, resolve_config, with_added_settings

SCHEMA_VERSION = 1
"""Bumped when a field changes meaning or becomes required; optional additions (`metrics_stderr`:
within-run standard error of a metric, >= 0, for metrics present in `metrics`) keep version 1."""
RESULT_FILE = "result.json"
MAX_INTEGER = 2**63 - 1

_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "model": str,
    "dataset": str,
    "tier": str,
    "seed": int,
    "config": dict,
    "metrics": dict,
    "metric_versions": dict,
    "num_parameters": int,
    "timing": dict,
    "provenance": dict,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "score_versions": dict,
    "metrics_stderr": dict,
    "classifier_accuracy": dict,
    "train_history": list,
    "recipe": dict,
}


def score_versions(model_name: str, model_version: int, tier: str, judge: str = "mmbench") -> dict[str, int]:
    """What determines a record's scores besides its metrics: the standard networks, the tier's
    recipe, the model's own version and, when not mmbench's own, the coherence judge
    (`judge:official`), each a key that boards and the regression gate compare."""
    from mmbench.nn import NETWORKS_VERSION

    versions = {"networks": NETWORKS_VERSION, f"tier:{tier}": TIER_VERSIONS[tier], f"model:{model_name}": model_version}
    return versions if judge == "mmbench" else {**versions, f"judge:{judge}": 1}


def compatibility(record: dict) -> dict[str, int]:
    """The versions two records must agree on (where both have a key) to be pooled or compared:
    metric versions and score versions. A record from before score versions existed counts as
    version 1 of everything."""
    versions = record.get("score_versions") or {"networks": 1, f"tier:{record['tier']}": 1, f"model:{record['model']}": 1}
    return {**record["metric_versions"], **versions}


NOT_THE_NUMBERS = frozenset({"eval.metrics", "eval.judge", "eval.official_classifiers", "eval.official_sha256",
                             "dataset.mnist_dir", "train.curve_every", "eval.curve_samples"})
"""Settings that choose which metrics run, who judges or where inputs are read, not what a score
comes out as: a run that changes them stays on its tier's board (a judge has its own version key)."""


def changed_settings(record: dict) -> tuple[str, ...]:
    """The settings, as `--set` takes them, in which a record departs from what its tier's current
    recipe resolves to for its model and dataset. Empty for a record of an older recipe or network
    version (it stands apart by that version, and its config is that recipe's) and for models or
    datasets unknown here; a model option whose default changed with the model's version is read
    as changed, since only the installed model's defaults are known."""
    from mmbench.nn import NETWORKS_VERSION

    model, dataset, tier = record["model"], record["dataset"], record["tier"]
    versions = compatibility(record)
    if versions.get(f"tier:{tier}") != TIER_VERSIONS.get(tier) or versions.get("networks") != NETWORKS_VERSION:
        return ()
    try:
        expected = json.loads(json.dumps(resolve_config(model, dataset, tier, [])))
    except MMBenchError:
        return ()
    recorded = with_added_settings(record["config"])
    return tuple(sorted(
        f"{section}.{key}={value if isinstance(value, str) else json.dumps(value)}"
        for section in SECTIONS if isinstance(recorded.get(section), dict) for key, value in recorded[section].items()
        if key in expected[section] and expected[section][key] != value and f"{section}.{key}" not in NOT_THE_NUMBERS
    ))


def provenance(device: torch.device, dataset_checksum: str, classifiers: dict[str, str]) -> dict[str, Any]:
    """Where and with what a score was made."""
    commit, dirty = _git_state()
    return {
        "mmbench_version": mmbench.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "device_type": device.type,
        "python_version": platform.python_version(),
        "dataset_checksum": dataset_checksum,
        "classifier_sha256": classifiers,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git_state() -> tuple[str | None, bool | None]:
    source = Path(mmbench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def validate_record(record: Any, source: str | Path = "<record>") -> dict:
    """Check a record's shape and values; raise a one-line error naming the file and field."""
    if not isinstance(record, dict):
        raise MMBenchError(f"{source}: a result record must be a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in record:
            raise MMBenchError(f"{source}: missing field {key!r}")
        _check_type(record[key], kind, source, key)
    for key, kind in _OPTIONAL.items():
        if record.get(key) is not None:
            _check_type(record[key], kind, source, key)
    if not 1 <= record["schema_version"] <= SCHEMA_VERSION:
        raise MMBenchError(f"{source}: field 'schema_version' = {record['schema_version']} is not one this mmbench reads (1..{SCHEMA_VERSION})")
    for key in ("model", "dataset"):
        if not record[key].strip():
            raise MMBenchError(f"{source}: field {key!r} must not be empty")
    if record["tier"] not in TIERS:
        raise MMBenchError(f"{source}: field 'tier' = {record['tier']!r} is not a known tier ({', '.join(TIERS)})")
    for key in ("seed", "num_parameters"):  # bounded by what the index (SQLite INTEGER) stores
        if not 0 <= record[key] <= MAX_INTEGER:
            raise MMBenchError(f"{source}: field {key!r} = {record[key]} must be in [0, 2^63 - 1]")
    for field in ("metric_versions", "score_versions"):
        for name, version in (record.get(field) or {}).items():
            _check_type(version, int, source, f"{field}.{name}")
    for name, value in record["metrics"].items():
        _check_number(value, source, f"metrics.{name}")
        if (problem := bounds_error(name, value)) is not None:
            raise MMBenchError(f"{source}: field 'metrics.{name}' {problem}")
    for name, value in (record.get("metrics_stderr") or {}).items():
        _check_number(value, source, f"metrics_stderr.{name}", lower=0.0)
        if name not in record["metrics"]:
            raise MMBenchError(f"{source}: field 'metrics_stderr.{name}' has no matching entry in 'metrics'")
    for name, value in record["timing"].items():
        _check_number(value, source, f"timing.{name}", lower=0.0)
    for name, value in (record.get("classifier_accuracy") or {}).items():
        _check_number(value, source, f"classifier_accuracy.{name}", lower=0.0, upper=1.0)
    return record


def _check_type(value: Any, kind: type | tuple[type, ...], source: str | Path, field: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise MMBenchError(f"{source}: field {field!r} must be {_type_name(kind)}, not {type(value).__name__}")


def _type_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def _check_number(value: Any, source: str | Path, field: str, lower: float | None = None, upper: float | None = None) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise MMBenchError(f"{source}: field {field!r} must be a finite number, not {value!r}")
    if lower is not None and value < lower or upper is not None and value > upper:
        raise MMBenchError(f"{source}: field {field!r} = {value} is outside [{lower}, {'inf' if upper is None else upper}]")


def write_record(run_dir: str | Path, record: dict) -> Path:
    path = Path(run_dir) / RESULT_FILE
    atomic_write_json(path, validate_record(record, path))
    return path


def read_record(path: str | Path) -> dict:
    """Read and validate one record file (see `parse_record`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MMBenchError(f"{path}: no such result record") from None
    except OSError as exc:
        raise MMBenchError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_record(data, path)


def parse_record(data: bytes, source: str | Path) -> dict:
    """Parse and validate a record's bytes; whatever is wrong (not JSON, nested too deeply to
    parse, text that is not valid UTF-8, bad fields) is a one-line MMBenchError naming `source`."""
    try:
        record = json.loads(data)
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MMBenchError(f"{source}: not valid JSON ({exc})") from None
    except RecursionError:
        raise MMBenchError(f"{source}: JSON nested too deeply to be a result record") from None
    except UnicodeEncodeError:
        raise MMBenchError(f"{source}: holds text that is not valid UTF-8 (a lone surrogate escape)") from None
    return validate_record(record, source)


def find_reference(run_dir: Path, record: dict) -> dict | None:
    """The unimodal record beside `run_dir` with the same dataset, tier, seed, dataset config and
    versions (`quality_gap.same_versions`), the reference of the run's quality gap; files there
    that are no valid record are passed over."""
    for path in sorted(Path(run_dir).resolve().parent.glob(f"*/{RESULT_FILE}")):
        try:
            other = read_record(path)
        except MMBenchError:
            continue  # not a record: the folder's own business, no reference
        if (
            other["model"] == REFERENCE_MODEL
            and all(other[k] == record[k] for k in ("dataset", "tier", "seed"))
            and other["config"].get("dataset") == record["config"]["dataset"]
            and same_versions(other, record)
        ):
            return other
    return None
