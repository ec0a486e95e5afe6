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
from mmbench.checkpoint import atomic_write_json
from mmbench.errors import MMBenchError

SCHEMA_VERSION = 1
RESULT_FILE = "result.json"

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
        if not isinstance(record[key], kind) or isinstance(record[key], bool) and kind is int:
            raise MMBenchError(f"{source}: field {key!r} must be {_type_name(kind)}")
    if record["schema_version"] > SCHEMA_VERSION:
        raise MMBenchError(f"{source}: schema_version {record['schema_version']} is newer than this mmbench reads ({SCHEMA_VERSION})")
    for name, value in record["metrics"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise MMBenchError(f"{source}: metric {name!r} must be a finite number, not {value!r}")
        if name.startswith("coherence/") and not 0.0 <= value <= 1.0:
            raise MMBenchError(f"{source}: metric {name!r} = {value} is outside [0, 1]")
    return record


def _type_name(kind) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def write_record(run_dir: str | Path, record: dict) -> Path:
    path = Path(run_dir) / RESULT_FILE
    atomic_write_json(path, validate_record(record, path))
    return path


def read_record(path: str | Path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise MMBenchError(f"{path}: no such result record") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MMBenchError(f"{path}: not valid JSON ({exc})") from None
    return validate_record(record, path)
