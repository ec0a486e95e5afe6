"""`mmbench regress`: reference files, bands in the bad direction, missing and stale entries, --run."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from record_factory import make_record, write

from baselines.mopoe import MoPoE
from mmbench.cli_leaderboard import regress
from mmbench.errors import MMBenchError
from mmbench.regress import Expectation, load_reference
from mmbench.runner import RunRequest, run


def _reference(tmp_path, entries) -> str:
    path = tmp_path / "reference.json"
    path.write_text(json.dumps({"schema": 1, "produced_by": "hand", "notes": "test", "entries": entries}))
    return str(path)


def _entry(metrics, model="mvae", seed=0, **extra):
    return {"model": model, "dataset": "polymnist", "tier": "quick", "seed": seed, "metrics": metrics, **extra}


def _check(results, reference):
    return CliRunner().invoke(regress, ["--reference", reference, "--results", str(results)])


def _verdicts(output: str) -> dict[str, str]:
    """metric -> verdict from the report table."""
    return {line.split()[4]: line.split()[-1] for line in output.splitlines() if line.startswith(("mvae", "mmvae"))}


@pytest.fixture
def results(tmp_path):
    out = tmp_path / "results"
    write(out, make_record("mvae", 0, coherence=0.6, metrics={"fid/m0": 40.0}))
    return out


def test_write_reference_then_check_passes(results, tmp_path):
    ref = tmp_path / "ref.json"
    written = CliRunner().invoke(regress, ["--write-reference", str(ref), "--results", str(results), "--abs-tol", "0.02"])
    assert written.exit_code == 0, written.output
    data = json.loads(ref.read_text())
    assert data["schema"] == 1 and "notes" in data
    assert data["produced_by"] == f"mmbench regress --write-reference {ref} --results {results} --abs-tol 0.02"
    assert data["entries"][0]["metrics"]["fid/m0"] == {"value": 40.0, "abs_tol": 0.02, "higher_is_better": False}
    checked = _check(results, str(ref))
    assert checked.exit_code == 0, checked.output
    assert set(_verdicts(checked.output).values()) == {"ok"}


def test_coherence_below_the_band_is_a_regression(results, tmp_path):
    reference = _reference(tmp_path, [_entry({"coherence/unconditional": {"value": 0.35, "abs_tol": 0.02}})])
    result = _check(results, reference)  # current 0.30 < 0.35 - 0.02
    assert result.exit_code == 1
    assert _verdicts(result.output) == {"coherence/unconditional": "REGRESSION"}
    assert "1 REGRESSION" in result.output


def test_within_band_passes_and_beyond_it_in_the_good_direction_is_improved(results, tmp_path):
    reference = _reference(tmp_path, [_entry({
        "coherence/unconditional": {"value": 0.31, "abs_tol": 0.02},   # 0.30 within
        "coherence/conditional": {"value": 0.5, "rel_tol": 0.1},       # 0.6125 > 0.55: better
        "fid/m0": {"value": 41.0, "rel_tol": 0.05},                    # 40 within ±2.05
    })])
    result = _check(results, reference)
    assert result.exit_code == 0, result.output
    assert _verdicts(result.output) == {"coherence/unconditional": "ok", "coherence/conditional": "improved", "fid/m0": "ok"}


def test_lower_is_better_metrics_regress_upwards(results, tmp_path):
    worse = _reference(tmp_path, [_entry({"fid/m0": {"value": 30.0, "abs_tol": 5.0}})])
    assert _verdicts(_check(results, worse).output) == {"fid/m0": "REGRESSION"}
    better = _reference(tmp_path, [_entry({"fid/m0": {"value": 50.0, "abs_tol": 5.0}})])
    result = _check(results, better)
    assert result.exit_code == 0 and _verdicts(result.output) == {"fid/m0": "improved"}


def test_missing_run_or_metric_fails(results, tmp_path):
    reference = _reference(tmp_path, [
        _entry({"coherence/conditional": {"value": 0.6, "abs_tol": 0.1}}, model="mmvae"),
        _entry({"likelihood/joint": {"value": -100.0, "abs_tol": 1.0}}),
    ])
    result = _check(results, reference)
    assert result.exit_code == 1
    assert _verdicts(result.output) == {"coherence/conditional": "missing", "likelihood/joint": "missing"}


def test_changed_metric_version_is_stale(results, tmp_path):
    reference = _reference(tmp_path, [_entry({"coherence/conditional/k=2": {"value": 0.6, "abs_tol": 0.1}},
                                             metric_versions={"coherence/conditional": 2})])
    result = _check(results, reference)
    assert result.exit_code == 1 and _verdicts(result.output) == {"coherence/conditional/k=2": "STALE"}


@pytest.mark.parametrize("spec, fragment", [
    ({"value": 0.5}, "exactly one of abs_tol, rel_tol"),
    ({"value": 0.5, "abs_tol": 0.1, "rel_tol": 0.1}, "exactly one of abs_tol, rel_tol"),
    ({"value": 0.5, "abs_tol": -0.1}, "exactly one of abs_tol, rel_tol"),
    ({"value": "high", "abs_tol": 0.1}, ".value must be a finite number"),
])
def test_malformed_reference_names_the_field(tmp_path, spec, fragment):
    path = _reference(tmp_path, [_entry({"coherence/conditional": spec})])
    with pytest.raises(MMBenchError) as caught:
        load_reference(path)
    assert path in str(caught.value) and "entries[0].metrics['coherence/conditional']" in str(caught.value)
    assert fragment in str(caught.value)


def test_unknown_family_needs_an_explicit_direction(tmp_path):
    with pytest.raises(MMBenchError, match="higher_is_better"):
        load_reference(_reference(tmp_path, [_entry({"novel/x": {"value": 1.0, "abs_tol": 0.1}})]))
    [entry] = load_reference(_reference(tmp_path, [_entry({"novel/x": {"value": 1.0, "abs_tol": 0.1, "higher_is_better": False}})]))
    assert entry.metrics["novel/x"] == Expectation(1.0, 0.1, False)


def test_run_makes_only_the_missing_runs(results, tmp_path, monkeypatch):
    from mmbench import runner

    calls = []

    def fake_run(request):
        calls.append(request)
        record = make_record(request.model, request.seed, coherence=0.6)
        write(request.out.parent, record, request.out.name)
        return record

    monkeypatch.setattr(runner, "run", fake_run)
    reference = _reference(tmp_path, [
        _entry({"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}),
        _entry({"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}, seed=1, overrides=["train.epochs=1"]),
    ])
    result = CliRunner().invoke(regress, ["--reference", reference, "--results", str(results), "--run", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert [(c.model, c.seed, c.overrides, c.device, c.progress) for c in calls] == [("mvae", 1, ("train.epochs=1",), "cpu", False)]
    assert calls[0].out == results / "mvae-polymnist-quick-seed1"


def test_usage_errors(results, tmp_path):
    assert CliRunner().invoke(regress, ["--results", str(results)]).exit_code == 2
    no_tol = CliRunner().invoke(regress, ["--write-reference", str(tmp_path / "r.json"), "--results", str(results)])
    assert isinstance(no_tol.exception, MMBenchError) and "--abs-tol" in str(no_tol.exception)




@pytest.mark.slow
def test_a_baseline_whose_coherence_drops_fails_the_gate(tmp_path, monkeypatch):
    """The CI gate end to end: a real tiny MoPoE run pins the reference; rerunning the same
    baseline reproduces it exactly and passes, and the same baseline with an off-by-one bug (each modality decoded by its
    neighbour's decoder) loses unconditional coherence and fails with a REGRESSION.

    Unconditional coherence, because a few CPU seconds of training leave conditional coherence
    at chance (0.1), with no room to drop; the agreement of joint samples is far above chance."""
    data, pinned, ref = tmp_path / "data", tmp_path / "pinned", tmp_path / "ref.json"
    sets = ["dataset.n_train=1000", "dataset.n_test=200", "model.latent_dim=16", "beta=1", "train.batch_size=64",
            "train.epochs=3", 'eval.metrics=["coherence"]', "eval.unconditional_samples=200"]
    run(RunRequest("mopoe", "polymnist", overrides=tuple(sets), out=pinned / "mopoe", data_root=data, device="cpu",
                   progress=False))
    written = CliRunner().invoke(regress, ["--write-reference", str(ref), "--results", str(pinned), "--abs-tol", "0.05",
                                           "--metric", "coherence/unconditional", *[w for s in sets for w in ("--set", s)]])
    assert written.exit_code == 0, written.output
    assert json.loads(ref.read_text())["entries"][0]["metrics"]["coherence/unconditional"]["value"] > 0.3

    def gate(results: str):
        return CliRunner().invoke(regress, ["--reference", str(ref), "--run", "--results", str(tmp_path / results),
                                            "--data-root", str(data), "--device", "cpu"])

    same = gate("same")
    assert same.exit_code == 0 and "1 ok, 0 REGRESSION" in same.output, same.output
    # bit-identical, although the pinned run trained the classifiers and the rerun loaded them
    rerun = json.loads((tmp_path / "same" / "mopoe-polymnist-quick-seed0" / "result.json").read_text())
    assert rerun["metrics"] == json.loads((pinned / "mopoe" / "result.json").read_text())["metrics"]

    monkeypatch.setattr(MoPoE, "decode", lambda self, z, m: self.decoders[(m + 1) % self.num_modalities](z))
    broken = gate("broken")
    assert broken.exit_code == 1 and "REGRESSION" in broken.output, broken.output
