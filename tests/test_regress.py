"""`mmbench regress`: reference files, bands in the bad direction, missing and stale entries, --run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from record_factory import make_record, write

from mmbench_baselines.mopoe import MoPoE
from mmbench import register_model
from mmbench.cli.regress import regress
from mmbench.errors import MMBenchError
from mmbench.results.regress import Expectation, load_reference


REPO = Path(__file__).resolve().parent.parent


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
    from mmbench.experiments import runner
    calls = []

    def fake_run(request):
        calls.append(request)
        record = make_record(request.model, request.seed, coherence=0.6, config=runner.requested_config(request))
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


def test_a_record_made_with_another_config_than_the_entry_is_stale(results, tmp_path):
    metric = {"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}
    assert _verdicts(_check(results, _reference(tmp_path, [_entry(metric)])).output) == {"coherence/unconditional": "ok"}
    other = _check(results, _reference(tmp_path, [_entry(metric, overrides=["train.epochs=1"])]))  # say, an old run
    assert other.exit_code == 1 and _verdicts(other.output) == {"coherence/unconditional": "STALE"}


@pytest.mark.parametrize("entries, fragment", [
    ([], "non-empty list"),
    ([_entry({})], "at least one metric"),
    ([_entry({"coherence/conditional": {"value": 0.5, "abs_tol": 0.1}}, seed=-1)], "seed >= 0"),
    ([_entry({"fid/m0": {"value": 40.0, "abs_tol": 1.0, "higher_is_better": True}})], "lower-is-better"),
])
def test_a_reference_that_would_check_nothing_or_the_wrong_way_is_refused(tmp_path, entries, fragment):
    with pytest.raises(MMBenchError, match=fragment):
        load_reference(_reference(tmp_path, entries))


def test_a_model_that_fails_its_run_fails_the_gate_and_the_other_runs_still_run(results, tmp_path, monkeypatch):
    from mmbench.errors import TrainingError
    from mmbench.experiments import runner
    ran = []

    def fake_run(request):
        ran.append(request.seed)
        if request.seed == 1:
            raise TrainingError("non-finite loss at epoch 1")
        record = make_record(request.model, request.seed, coherence=0.6, config=runner.requested_config(request))
        write(request.out.parent, record, request.out.name)
        return record

    monkeypatch.setattr(runner, "run", fake_run)
    metric = {"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}
    reference = _reference(tmp_path, [_entry(metric, seed=1), _entry(metric, seed=2)])
    result = CliRunner().invoke(regress, ["--reference", reference, "--results", str(results), "--run", "--device", "cpu"])
    assert result.exit_code == 1 and ran == [1, 2]
    assert "FAILED" in result.output and "non-finite loss" in result.output and "1 missing" in result.output


def test_a_band_of_nan_width_is_never_written(results, tmp_path):
    written = CliRunner().invoke(regress, ["--write-reference", str(tmp_path / "r.json"), "--results", str(results), "--abs-tol", "nan"])
    assert isinstance(written.exception, MMBenchError) and "finite" in str(written.exception)
    assert not (tmp_path / "r.json").exists()


def test_usage_errors(results, tmp_path):
    assert CliRunner().invoke(regress, ["--results", str(results)]).exit_code == 2
    no_tol = CliRunner().invoke(regress, ["--write-reference", str(tmp_path / "r.json"), "--results", str(results)])
    assert isinstance(no_tol.exception, MMBenchError) and "--abs-tol" in str(no_tol.exception)




class IgnoresZ(MoPoE):
    """A deliberately broken MoPoE: every decoder sees zeros instead of z, so nothing the
    encoders learn can reach the reconstructions."""

    def decode(self, z, m):
        return super().decode(torch.zeros_like(z), m)

    def log_likelihood(self, z, xs, modalities=None):
        return super().log_likelihood(torch.zeros_like(z), xs, modalities)


@register_model("mopoe_ignores_z")
def mopoe_ignores_z(spec, *, latent_dim: int = 512, beta: float = 2.5) -> IgnoresZ:
    return IgnoresZ(spec, latent_dim, beta)


@pytest.mark.slow
@pytest.mark.parametrize("model, passes", [("mopoe", True), ("mopoe_ignores_z", False)])
def test_the_committed_gate_passes_the_baseline_and_fails_a_broken_one(tmp_path, model, passes):
    """The committed CI reference's band for MoPoE on the synthetic set (seed 0), run by `regress
    --run`: the real baseline passes it, the one whose decoders ignore z fails it with REGRESSIONs.
    The broken model registers through the public plugin API, as an outside package would."""
    committed = json.loads((REPO / "leaderboard" / "reference-quick.json").read_text())
    entry = next(e for e in committed["entries"] if (e["model"], e["dataset"], e["seed"]) == ("mopoe", "synthetic", 0))
    entry = {**entry, "model": model}
    if not passes:
        entry.pop("score_versions")  # its own model key differs; the verdict must come from the scores
    outcome = CliRunner().invoke(regress, ["--reference", _reference(tmp_path, [entry]), "--run",
                                           "--results", str(tmp_path / "runs"), "--data-root", str(tmp_path / "data"),
                                           "--device", "cpu"])
    assert outcome.exit_code == (0 if passes else 1), outcome.output
    verdicts = [line.split()[-1] for line in outcome.output.splitlines() if line.startswith(model + " ")]
    assert verdicts and (set(verdicts) <= {"ok", "improved"} if passes else "REGRESSION" in verdicts), outcome.output


def test_spread_bands_are_the_seeds_mean_plus_minus_k_std_with_a_floor(tmp_path):
    import statistics

    results = tmp_path / "results"
    values = [0.50, 0.56, 0.62]
    for seed, value in enumerate(values):
        write(results, make_record("mvae", seed, coherence=value), f"mvae-{seed}")
    out = tmp_path / "ref.json"
    made = CliRunner().invoke(regress, ["--write-reference", str(out), "--results", str(results), "--spread", "4",
                                        "--abs-tol", "0.01", "--metric", "coherence/unconditional"])
    assert made.exit_code == 0, made.output
    entries = json.loads(out.read_text())["entries"]
    spec = entries[0]["metrics"]["coherence/unconditional"]
    halves = [v / 2 for v in values]  # make_record's unconditional coherence
    assert [e["seed"] for e in entries] == [0, 1, 2] and all(e["metrics"]["coherence/unconditional"] == spec for e in entries)
    assert spec["value"] == pytest.approx(statistics.mean(halves)) and spec["abs_tol"] == pytest.approx(4 * statistics.stdev(halves))
    (results / "mvae-2" / "result.json").unlink()
    with pytest.raises(MMBenchError, match="at least 3 seeds"):
        raise CliRunner().invoke(regress, ["--write-reference", str(out), "--results", str(results), "--spread", "4"]).exception


def test_a_record_of_other_networks_or_tier_recipe_is_stale(results, tmp_path):
    current = {"networks": 1, "tier:quick": 1, "model:mvae": 1}  # what make_record's records count as
    ok = _reference(tmp_path, [_entry({"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}, score_versions=current)])
    assert _check(results, ok).exit_code == 0
    newer = _reference(tmp_path, [_entry({"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}},
                                         score_versions={**current, "networks": 2})])
    stale = _check(results, newer)
    assert stale.exit_code == 1 and "STALE" in stale.output


@pytest.fixture
def one_seed_two_recipes(tmp_path):
    """Seed 0 of mvae run with the tier's recipe (older, unconditional coherence 0.3) and again
    with `--set train.epochs=1` (newer, 0.1), in one results folder."""
    from mmbench.results.records import score_versions

    current = score_versions("mvae", 1, "quick")  # of today's recipe, so the two are two runs, not duplicates
    results = tmp_path / "results"
    write(results, make_record("mvae", 0, coherence=0.6, score_versions=current), "default")
    short = make_record("mvae", 0, coherence=0.2, score_versions=current)
    short["config"]["train"]["epochs"] = 1
    short["provenance"]["created"] = "2026-01-01T00:00:00+00:00"
    write(results, short, "short")
    return results


def test_an_entry_is_checked_against_the_record_made_with_its_settings_not_the_newest(one_seed_two_recipes, tmp_path):
    metric = {"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}}
    default = _check(one_seed_two_recipes, _reference(tmp_path, [_entry(metric)]))
    assert default.exit_code == 0 and _verdicts(default.output) == {"coherence/unconditional": "ok"}, default.output
    short = _check(one_seed_two_recipes, _reference(tmp_path, [_entry(metric, overrides=["train.epochs=1"])]))
    assert short.exit_code == 1 and _verdicts(short.output) == {"coherence/unconditional": "REGRESSION"}  # 0.1


@pytest.mark.parametrize("settings, value", [([], 0.3), (["--set", "train.epochs=1"], 0.1)])
def test_a_reference_is_written_from_the_records_made_with_its_settings(one_seed_two_recipes, tmp_path, settings, value):
    out = tmp_path / "ref.json"
    made = CliRunner().invoke(regress, ["--write-reference", str(out), "--results", str(one_seed_two_recipes), "--abs-tol", "0.01",
                                        "--metric", "coherence/unconditional", *settings])
    assert made.exit_code == 0, made.output
    [entry] = json.loads(out.read_text())["entries"]
    assert entry["metrics"]["coherence/unconditional"]["value"] == pytest.approx(value)


def test_a_reference_whose_settings_no_record_was_made_with_is_refused(one_seed_two_recipes, tmp_path):
    made = CliRunner().invoke(regress, ["--write-reference", str(tmp_path / "ref.json"), "--results", str(one_seed_two_recipes),
                                        "--abs-tol", "0.01", "--set", "train.epochs=2"])
    assert isinstance(made.exception, MMBenchError) and "train.epochs=2" in str(made.exception)
    assert not (tmp_path / "ref.json").exists()


def test_run_makes_an_entry_whose_seed_is_there_only_with_other_settings(tmp_path, monkeypatch):
    from mmbench.experiments import runner
    from mmbench.results.records import score_versions

    current = score_versions("mvae", 1, "quick")
    calls = []

    def fake_run(request):
        calls.append(request)
        record = make_record(request.model, request.seed, coherence=0.6, config=runner.requested_config(request),
                             score_versions=current)
        write(request.out.parent, record, request.out.name)
        return record

    monkeypatch.setattr(runner, "run", fake_run)
    results = tmp_path / "results"
    short = make_record("mvae", 0, coherence=0.2, score_versions=current)
    short["config"]["train"]["epochs"] = 1
    write(results, short, "short")
    reference = _reference(tmp_path, [_entry({"coherence/unconditional": {"value": 0.3, "abs_tol": 0.01}})])
    result = CliRunner().invoke(regress, ["--reference", reference, "--results", str(results), "--run", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert [(c.model, c.seed, c.overrides) for c in calls] == [("mvae", 0, ())]
