"""`mmbench sweep`: grid expansion and run names, spec validation, SLURM resources, and a small
sweep through submitit's local executor that is re-run (skips), resumed (pool) and reports failures."""
from __future__ import annotations

import fcntl
import json
import os
import re
import textwrap
from pathlib import Path

import pytest
import submitit
from click.testing import CliRunner
from record_factory import make_record, write

from mmbench.cli.sweep import sweep
from mmbench.errors import ConfigError, MMBenchError
from mmbench.experiments.runner import CONFIG_FILE, LOCK_FILE, plan, run_name
from mmbench.experiments.sweep import (
    RunJob,
    SlurmSettings,
    execute,
    expand,
    load_spec,
    make_submitit_executor,
    override,
    parse_minutes,
    parse_spec,
    run_one,
    run_state,
    triage,
)
from mmbench.results.records import RESULT_FILE
from mmbench.results.store import load_results

TINY = {
    "dataset.n_train": 128, "dataset.n_test": 50, "dataset.num_modalities": 2, "model.latent_dim": 8,
    "train.batch_size": 64, "train.epochs": 1, "eval.metrics": [[]],  # [[]]: the one value [], i.e. no metrics
}


def spec_dict(results: Path, **fields) -> dict:
    return {"models": ["mopoe", "mvae"], "datasets": ["polymnist"], "seeds": [0, 1], "results": str(results), **fields}


def test_each_grid_point_gets_one_run_with_a_stable_name(tmp_path):
    spec = parse_spec(spec_dict(tmp_path, set={"beta": [0.5, 1], "train.epochs": 1}), "s")
    requests = expand(spec)
    assert len(requests) == 2 * 2 * 2
    names = [r.out.name for r in requests]
    assert len(set(names)) == 8
    assert all(re.fullmatch(r"(mopoe|mvae)-polymnist-quick-seed[01]-[0-9a-f]{8}", n) for n in names)
    assert all(r.out.parent == tmp_path and not r.resume and not r.progress for r in requests)
    assert requests[0].overrides == ("beta=0.5", "train.epochs=1") and requests[1].overrides == ("beta=1", "train.epochs=1")
    reordered = parse_spec(spec_dict(tmp_path, set={"train.epochs": [1], "beta": [0.5, 1]}), "s")
    assert sorted(names) == sorted(r.out.name for r in expand(reordered))
    # pinned: a sweep re-run by a later mmbench must find its runs again
    assert run_name("mopoe", "polymnist", "quick", 0, ()) == "mopoe-polymnist-quick-seed0-4f53cda1"
    assert run_name("mopoe", "polymnist", "quick", 0, ("train.epochs=1", "beta=1")) == "mopoe-polymnist-quick-seed0-1ec12b33"
    assert override("objective", "dreg") == "objective=dreg" and override("train.lr", "1e-3") == "train.lr=1e-3"
    assert override("eval.metrics", ["coherence"]) == 'eval.metrics=["coherence"]' and override("subsample", False) == "subsample=false"


def test_yaml_and_json_specs_are_equivalent(tmp_path):
    (tmp_path / "s.yaml").write_text(textwrap.dedent(f"""
        models: [mopoe, mvae]
        datasets: polymnist
        seeds: [0, 1]
        set:
          train.lr: [1e-3, 5.0e-4]   # YAML reads 1e-3 as a string: it still reaches --set as a number
          subsample: false
        results: {tmp_path / 'out'}
        executor: {{name: slurm, slurm: {{partition: gpu, time: "02:00:00", gpus_per_node: 1, array_parallelism: 4}}}}
    """))
    (tmp_path / "s.json").write_text(json.dumps({
        "models": ["mopoe", "mvae"], "datasets": "polymnist", "seeds": [0, 1], "set": {"train.lr": ["1e-3", 5e-4], "subsample": False},
        "results": str(tmp_path / "out"),
        "executor": {"name": "slurm", "slurm": {"partition": "gpu", "time": 120, "gpus_per_node": 1, "array_parallelism": 4}},
    }))
    from_yaml, from_json = load_spec(tmp_path / "s.yaml"), load_spec(tmp_path / "s.json")
    assert from_yaml == from_json
    assert [r.out.name for r in expand(from_yaml)] == [r.out.name for r in expand(from_json)]
    assert expand(from_yaml)[0].overrides == ("train.lr=1e-3", "subsample=false")
    assert from_yaml.executor.slurm == SlurmSettings(partition="gpu", time=120, gpus_per_node=1, array_parallelism=4)
    assert load_spec(tmp_path / "s.json", results=tmp_path / "elsewhere").results == tmp_path / "elsewhere"


@pytest.mark.parametrize("change, message", [
    ({"models": []}, "'models' must not be empty"),
    ({"seed": [0]}, "unknown key(s) seed in the spec"),
    ({"tiers": ["medium"]}, "unknown tier 'medium'"),
    ({"seeds": [-1]}, "'seeds' must be non-negative integers"),
    ({"set": {"beta": []}}, "'set.beta' must not be empty"),
    ({"set": ["beta=1"]}, "'set' must be a mapping"),
    ({"executor": {"name": "kubernetes"}}, "executor.name must be one of local, pool, slurm"),
    ({"executor": {"workers": 0}}, "executor.workers must be a positive integer"),
    ({"executor": {"slurm": {"partion": "gpu"}}}, "unknown key(s) partion in 'executor.slurm'"),
    ({"executor": {"slurm": {"time": "2h"}}}, "executor.slurm.time must be minutes"),
    ({"executor": {"slurm": {"cluster": "lsf"}}}, "executor.slurm.cluster must be one of slurm, local"),
])
def test_bad_specs_are_one_line_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_spec({**spec_dict(tmp_path), **change}, "s", "s.json")


def test_the_spec_in_the_example_plugin_readme_is_valid():
    yaml = pytest.importorskip("yaml")
    readme = Path(__file__).resolve().parent.parent / "examples" / "mmbench-example-plugin" / "README.md"
    block = re.search(r"```yaml\n(.*?)```", readme.read_text(), re.S).group(1)
    spec = parse_spec(yaml.safe_load(block), "readme")
    assert len(expand(spec)) == 2 * 3 * 3
    assert spec.executor.slurm == SlurmSettings(partition="gpu", time=720, gpus_per_node=1, cpus_per_task=8, mem_gb=32, array_parallelism=8)


def test_slurm_times():
    assert parse_minutes(90, "t") == 90 and parse_minutes("04:00:00", "t") == 240
    assert parse_minutes("1-00:30:00", "t") == 1470 and parse_minutes("00:00:30", "t") == 1
    with pytest.raises(ConfigError):
        parse_minutes("1:30", "t")


def fake_slurm(tmp_path: Path, monkeypatch, sbatch: str) -> None:
    """Stand-ins for srun and sbatch (whose body is `sbatch`) first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in (("srun", "exit 0"), ("sbatch", sbatch)):
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_array_carries_the_spec_resources(tmp_path, monkeypatch):
    """submitit writes the real sbatch script of the array; the stand-in sbatch keeps a copy."""
    fake_slurm(tmp_path, monkeypatch, f'cp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"')
    settings = SlurmSettings(partition="gpu", time=240, gpus_per_node=1, cpus_per_task=8, mem_gb=32, array_parallelism=2, account="lab")
    requests = expand(parse_spec(spec_dict(tmp_path / "results", models=["mopoe"], seeds=[0, 1, 2]), "s"))
    executor = make_submitit_executor(settings, tmp_path / "results" / ".submitit", "mmbench-s")
    jobs = executor.map_array(RunJob(), requests, [8] * 3)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--time=240", "--gpus-per-node=1", "--cpus-per-task=8",
                 "--mem=32GB", "--account=lab", "--job-name=mmbench-s"):
        assert f"#SBATCH {line}\n" in script, line
    delayed = submitit.helpers.DelayedSubmission.load(jobs[1].paths.submitted_pickle)
    assert isinstance(delayed.function, RunJob) and delayed.args == (requests[1], 8)


def test_a_refused_submission_is_one_line_error(tmp_path, monkeypatch):
    fake_slurm(tmp_path, monkeypatch, 'echo "sbatch: error: invalid partition specified: gpux" >&2\nexit 1')
    spec = parse_spec(spec_dict(tmp_path / "results", executor={"name": "slurm", "slurm": {"partition": "gpux"}}), "s")
    with pytest.raises(MMBenchError, match="submitting to slurm failed: .*invalid partition specified: gpux"):
        execute(spec, expand(spec), print, print)


def test_triage_skips_finished_resumes_started_and_fails_unplannable(tmp_path):
    spec = parse_spec(spec_dict(tmp_path, models=["mopoe", "nope"], seeds=[0, 1, 2, 3]), "s")
    requests = {(r.model, r.seed): r for r in expand(spec)}
    write(tmp_path, make_record("mopoe", 0), requests["mopoe", 0].out.name)
    for seed in (1, 2):  # started; the second one also left a truncated result
        requests["mopoe", seed].out.mkdir()
        (requests["mopoe", seed].out / CONFIG_FILE).write_text(json.dumps(plan(requests["mopoe", seed])))
    (requests["mopoe", 2].out / RESULT_FILE).write_text("{truncated")
    assert [run_state(requests["mopoe", s].out) for s in range(4)] == ["finished", "unfinished", "unfinished", "new"]
    done, todo = triage(list(requests.values()))
    assert [(o.name, o.state) for o in done if o.state == "skipped"] == [(requests["mopoe", 0].out.name, "skipped")]
    failed = [o for o in done if o.state == "failed"]
    assert len(failed) == 4 and all("unknown model 'nope'" in o.error for o in failed)
    assert [(r.seed, r.resume) for r in todo] == [(1, True), (2, True), (3, False)]


def test_a_run_never_raises_and_never_runs_twice(tmp_path):
    (request,) = expand(parse_spec(spec_dict(tmp_path, models=["mopoe"], seeds=[0]), "s"))
    request.out.mkdir()
    with open(request.out / LOCK_FILE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        outcome = run_one(request)
    assert outcome.state == "failed" and "is being written by another process" in outcome.error
    (bad,) = expand(parse_spec(spec_dict(tmp_path, models=["nope"], seeds=[0]), "s"))
    outcome = run_one(bad)
    assert outcome.state == "failed" and "unknown model 'nope'" in outcome.error


def _mtimes(results: Path) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in sorted(results.glob("*/*")) if p.name in (RESULT_FILE, "checkpoint.pt")}


@pytest.mark.slow
def test_sweep_on_submitit_local_reruns_resumes_and_reports_failures(tmp_path):
    results = tmp_path / "results"
    base = spec_dict(results, models=["mopoe", "mvae", "nope"], set=TINY, data_root=str(tmp_path / "data"))
    spec = tmp_path / "sweep.json"
    spec.write_text(json.dumps({**base, "executor": {"name": "slurm", "slurm": {"cluster": "local", "time": 15}}}))

    first = CliRunner().invoke(sweep, [str(spec)])
    assert first.exit_code == 1, first.output
    assert "6 run(s)" in first.output and "4 to run (0 resumed), 2 failed to plan" in first.output
    assert "submitted 4 job(s) to local" in first.output
    assert "done: 4 finished, 0 skipped, 2 failed" in first.output
    failed_lines = first.output.split("failed runs:\n")[1].strip().splitlines()
    assert len(failed_lines) == 2 and all(line.strip().startswith("nope-polymnist-quick-seed") and "unknown model 'nope'" in line for line in failed_lines)
    records, problems = load_results(results)
    assert problems == [] and sorted((r.record["model"], r.record["seed"]) for r in records) == [("mopoe", 0), ("mopoe", 1), ("mvae", 0), ("mvae", 1)]
    assert {Path(r.path).parent.name for r in records} == {r.out.name for r in expand(load_spec(spec)) if r.model != "nope"}

    before = _mtimes(results)
    assert len(before) == 8
    again = CliRunner().invoke(sweep, [str(spec)])
    assert again.exit_code == 1 and "4 finished before (skipped), 0 to run" in again.output
    assert "done: 0 finished, 4 skipped, 2 failed" in again.output
    assert _mtimes(results) == before  # nothing was trained or scored again

    victim = next(r for r in records if r.record["model"] == "mvae" and r.record["seed"] == 1)
    (results / victim.path).unlink()  # as if killed between the last epoch and the record
    pooled = tmp_path / "pooled.json"
    pooled.write_text(json.dumps({**base, "models": ["mopoe", "mvae"], "executor": {"name": "pool", "workers": 2}}))
    resumed = CliRunner().invoke(sweep, [str(pooled)])
    assert resumed.exit_code == 0, resumed.output
    assert "3 finished before (skipped), 1 to run (1 resumed)" in resumed.output
    assert "done: 1 finished, 3 skipped, 0 failed" in resumed.output
    record = json.loads((results / victim.path).read_text())
    assert record["train_history"] == victim.record["train_history"]
    after = _mtimes(results)
    assert {k: v for k, v in after.items() if k != victim.path} == {k: v for k, v in before.items() if k != victim.path}
