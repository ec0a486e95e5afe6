"""Result record schema: valid records round-trip; each kind of malformed record is rejected with
an error that names the file and the field."""
from __future__ import annotations

import json

import pytest
from record_factory import make_record, write

from mmbench.errors import MMBenchError
from mmbench.results.records import read_record, validate_record


def _reject(tmp_path, record_or_text, *fragments: str) -> None:
    path = tmp_path / "run" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = record_or_text if isinstance(record_or_text, str) else json.dumps(record_or_text)
    path.write_text(text)
    with pytest.raises(MMBenchError) as caught:
        read_record(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_valid_record_round_trips_with_stderr(tmp_path):
    record = make_record(metrics={"likelihood/joint": -1234.5}, metrics_stderr={"likelihood/joint": 0.7})
    path = write(tmp_path, record)
    assert read_record(path) == record


def test_malformed_json_names_the_file(tmp_path):
    _reject(tmp_path, '{"model": ', "not valid JSON")


@pytest.mark.parametrize("field", ["schema_version", "model", "dataset", "tier", "seed", "metrics",
                                   "metric_versions", "num_parameters", "timing", "provenance"])
def test_missing_field_is_named(tmp_path, field):
    record = make_record()
    del record[field]
    _reject(tmp_path, record, f"missing field {field!r}")


@pytest.mark.parametrize("value", [1.5, -0.01])
def test_coherence_out_of_range(tmp_path, value):
    _reject(tmp_path, make_record(metrics={"coherence/conditional/k=2": value}), "metrics.coherence/conditional/k=2", "outside [0, 1]")


def test_nan_metric_is_rejected(tmp_path):
    record = make_record(metrics={"fid/m0": float("nan")})
    _reject(tmp_path, json.dumps(record), "metrics.fid/m0", "finite number")


@pytest.mark.parametrize("change, fragments", [
    ({"tier": "medium"}, ("'tier'", "medium")),
    ({"seed": -1}, ("'seed'", "[0, 2^63 - 1]")),
    ({"seed": 10**20}, ("'seed'", "[0, 2^63 - 1]")),
    ({"seed": True}, ("'seed'", "int")),
    ({"seed": 1.0}, ("'seed'", "int")),
    ({"num_parameters": -5}, ("'num_parameters'", "[0, 2^63 - 1]")),
    ({"schema_version": 99}, ("'schema_version'", "99")),
    ({"schema_version": 0}, ("'schema_version'",)),
    ({"model": " "}, ("'model'", "empty")),
    ({"timing": {"train_seconds": -1.0}}, ("timing.train_seconds", "outside")),
    ({"timing": {"train_seconds": "fast"}}, ("timing.train_seconds", "finite number")),
    ({"metric_versions": {"coherence/conditional": "1"}}, ("metric_versions.coherence/conditional", "int")),
    ({"classifier_accuracy": {"m0": 1.2}}, ("classifier_accuracy.m0", "outside")),
    ({"metrics_stderr": {"coherence/conditional": -0.1}}, ("metrics_stderr.coherence/conditional", "outside")),
    ({"metrics_stderr": {"coherence/conditional": float("inf")}}, ("metrics_stderr.coherence/conditional", "finite")),
    ({"metrics_stderr": {"fid/m0": 0.1}}, ("metrics_stderr.fid/m0", "no matching entry")),
    ({"metrics_stderr": [0.1]}, ("'metrics_stderr'", "dict")),
])
def test_out_of_range_or_mistyped_fields(tmp_path, change, fragments):
    record = make_record()
    record.update(change)
    _reject(tmp_path, json.dumps(record), *fragments)


def test_family_bounds_apply_beyond_coherence(tmp_path):
    _reject(tmp_path, make_record(metrics={"fid/m0": -3.0}), "metrics.fid/m0", "outside")
    validate_record(make_record(metrics={"likelihood/joint": -3000.0, "quality_gap/m0": -0.2, "coherence/cca/image_to_text": -0.3, "new_family/x": 7.0}))
    _reject(tmp_path, make_record(metrics={"coherence/cca/image_to_text": -1.3}), "metrics.coherence/cca/image_to_text", "outside [-1, 1]")


def test_non_object_record(tmp_path):
    _reject(tmp_path, "[1, 2]", "JSON object")
