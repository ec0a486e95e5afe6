"""`mmbench sweep`: a grid of benchmark runs from one spec file, run here, in a process pool, or as
a SLURM job array through submitit.

Every grid point is one `RunRequest` whose run directory name is a function of the point alone
(`model-dataset-tier-seedN-<hash of the overrides>`), so re-running a sweep finds its own work:
finished runs (a valid result.json) are skipped, unfinished ones (config.json, no result) resume
from their last checkpoint, and failures are collected, never allowed to stop the other runs.
Points whose config cannot even be resolved (unknown model, bad override) fail here, before
anything is submitted to a queue. A SLURM job that is preempted or hits its time limit is
requeued by submitit and resumes the same way.

Longer than most modules because spec parsing, triage and the three executors are one idea:
the rules a grid point follows from spec to outcome, read top to bottom.
"""
from __future__ import annotations

import itertools
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import submitit
import torch

from mmbench.errors import ConfigError, MMBenchError
from mmbench.experiments.runner import (
    CONFIG_FILE,
    RunRequest,
    exclusive,
    plan,
    run,
    run_name,
)
from mmbench.results.records import RESULT_FILE, read_record
from mmbench.training.config import TIERS

EXECUTORS = ("local", "pool", "slurm")
SUBMITIT_CLUSTERS = ("slurm", "local")
SUBMITIT_FOLDER = ".submitit"  # a dot-directory, so the results store does not scan it
_SPEC_KEYS = ("models", "datasets", "tiers", "seeds", "set", "results", "data_root", "device", "executor")
_EXECUTOR_KEYS = ("name", "workers", "slurm")


@dataclass(frozen=True)
class SlurmSettings:
    """Resources of each array task; `cluster: local` runs the same submitit path without a
    cluster (one subprocess per job, all at once), to try a sweep before submitting it."""

    partition: str | None = None
    time: int = 60
    """Minutes per job (the spec accepts minutes, "HH:MM:SS" or "D-HH:MM:SS")."""
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    cluster: str = "slurm"


@dataclass(frozen=True)
class ExecutorSettings:
    name: str = "local"
    workers: int = 2
    slurm: SlurmSettings = field(default_factory=SlurmSettings)


@dataclass(frozen=True)
class SweepSpec:
    name: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    tiers: tuple[str, ...]
    seeds: tuple[int, ...]
    grid: dict[str, list[Any]]
    """Config key -> the values to sweep, in spec order."""
    results: Path
    data_root: Path | None = None
    device: str = "auto"
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)


@dataclass(frozen=True)
class Outcome:
    name: str
    state: str
    """One of: finished (ran now), skipped (had finished before), failed."""
    error: str | None = None
    seconds: float = 0.0


def load_spec(path: str | Path, results: str | Path | None = None) -> SweepSpec:
    """Read a YAML (.yaml/.yml, needs PyYAML) or JSON spec; `results` overrides the spec's folder."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep spec {path}: {exc.strerror}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path}: YAML specs need PyYAML (pip install pyyaml); or write the spec as JSON") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if results is not None:
        raw = {**raw, "results": str(results)} if isinstance(raw, dict) else raw
    return parse_spec(raw, path.stem, str(path))


def parse_spec(raw: Any, name: str, source: str = "<spec>") -> SweepSpec:
    """Validate a spec mapping; every problem is a one-line ConfigError naming the field."""
    _mapping(raw, source, _SPEC_KEYS, "the spec")
    if "models" not in raw or "datasets" not in raw or "results" not in raw:
        raise ConfigError(f"{source}: a sweep spec needs 'models', 'datasets' and 'results'")
    tiers = _strings(raw.get("tiers", ["quick"]), source, "tiers")
    for tier in tiers:
        if tier not in TIERS:
            raise ConfigError(f"{source}: unknown tier {tier!r} (known: {', '.join(TIERS)})")
    seeds = _listed(raw.get("seeds", [0]), source, "seeds")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ConfigError(f"{source}: 'seeds' must be non-negative integers, not {seeds!r}")
    grid = {}
    for key, values in _mapping(raw.get("set", {}), source, None, "'set'").items():
        grid[str(key)] = _listed(values, source, f"set.{key}")
    return SweepSpec(
        name=name,
        models=_strings(raw["models"], source, "models"),
        datasets=_strings(raw["datasets"], source, "datasets"),
        tiers=tiers,
        seeds=tuple(seeds),
        grid=grid,
        results=Path(_string(raw["results"], source, "results")).absolute(),
        data_root=Path(_string(raw["data_root"], source, "data_root")).absolute() if raw.get("data_root") else None,
        device=_string(raw.get("device", "auto"), source, "device"),
        executor=executor_settings(raw.get("executor", {}), source),
    )


def executor_settings(raw: Any, source: str) -> ExecutorSettings:
    _mapping(raw, source, _EXECUTOR_KEYS, "'executor'")
    name = raw.get("name", "local")
    if name not in EXECUTORS:
        raise ConfigError(f"{source}: executor.name must be one of {', '.join(EXECUTORS)}, not {name!r}")
    workers = raw.get("workers", 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"{source}: executor.workers must be a positive integer, not {workers!r}")
    slurm = dict(_mapping(raw.get("slurm", {}), source, tuple(f.name for f in fields(SlurmSettings)), "'executor.slurm'"))
    if "time" in slurm:
        slurm["time"] = parse_minutes(slurm["time"], f"{source}: executor.slurm.time")
    if slurm.get("cluster", "slurm") not in SUBMITIT_CLUSTERS:
        raise ConfigError(f"{source}: executor.slurm.cluster must be one of {', '.join(SUBMITIT_CLUSTERS)}, not {slurm['cluster']!r}")
    for key in ("gpus_per_node", "cpus_per_task", "array_parallelism"):
        value = slurm.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{source}: executor.slurm.{key} must be a non-negative integer, not {value!r}")
    mem = slurm.get("mem_gb")
    if mem is not None and (isinstance(mem, bool) or not isinstance(mem, (int, float)) or mem <= 0):
        raise ConfigError(f"{source}: executor.slurm.mem_gb must be a positive number, not {mem!r}")
    return ExecutorSettings(name, workers, SlurmSettings(**slurm))


def parse_minutes(value: Any, where: str) -> int:
    """Minutes from an int, "HH:MM:SS" or "D-HH:MM:SS" (SLURM's time formats with hours)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        days, _, clock = value.rpartition("-")
        parts = clock.split(":")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and (not days or days.isdigit()):
            hours, minutes, seconds = map(int, parts)
            total = int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)
            if total > 0:
                return total
    raise ConfigError(f"{where} must be minutes (a positive integer), \"HH:MM:SS\" or \"D-HH:MM:SS\", not {value!r}")


def _mapping(raw: Any, source: str, known: tuple[str, ...] | None, what: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {what} must be a mapping, not {type(raw).__name__}")
    unknown = sorted(set(raw) - set(known)) if known is not None else []
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(str, unknown))} in {what} (known: {', '.join(known)})")
    return raw


def _listed(value: Any, source: str, key: str) -> list:
    """A list of values; a single value stands for a one-element list."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{source}: '{key}' must not be empty")
    return values


def _strings(value: Any, source: str, key: str) -> tuple[str, ...]:
    return tuple(_string(v, source, key) for v in _listed(value, source, key))


def _string(value: Any, source: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: '{key}' must be a non-empty string, not {value!r}")
    return value


def override(key: str, value: Any) -> str:
    """The `--set` form of one grid value: strings verbatim (as typed on a command line, so YAML's
    `1e-3`, read as a string, still means a number), anything else as JSON."""
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def expand(spec: SweepSpec) -> list[RunRequest]:
    """One request per grid point, in spec order, each with its own directory under `spec.results`."""
    settings = [[override(key, v) for v in values] for key, values in spec.grid.items()]
    requests: dict[str, RunRequest] = {}
    for model, dataset, tier, seed, *overrides in itertools.product(spec.models, spec.datasets, spec.tiers, spec.seeds, *settings):
        name = run_name(model, dataset, tier, seed, tuple(overrides))
        requests.setdefault(name, RunRequest(model, dataset, tier, seed, tuple(overrides), spec.results / name,
                                             spec.data_root, spec.device, progress=False))
    return list(requests.values())


def run_state(run_dir: Path) -> str:
    """One of: finished (a valid result.json), unfinished (started, or a result that does not validate), new."""
    if (run_dir / RESULT_FILE).exists():
        try:
            read_record(run_dir / RESULT_FILE)
            return "finished"
        except MMBenchError:
            return "unfinished"
    return "unfinished" if (run_dir / CONFIG_FILE).exists() else "new"


def triage(requests: list[RunRequest]) -> tuple[list[Outcome], list[RunRequest]]:
    """Skipped and failed-to-plan outcomes, and the requests still to run (resume set where started)."""
    done, todo = [], []
    for request in requests:
        state = run_state(request.out)
        if state == "finished":
            done.append(Outcome(request.out.name, "skipped"))
            continue
        request = replace(request, resume=state == "unfinished")
        try:
            plan(request)
        except MMBenchError as exc:
            done.append(Outcome(request.out.name, "failed", str(exc)))
            continue
        todo.append(request)
    return done, todo


def run_one(request: RunRequest, threads: int | None = None) -> Outcome:
    """Run (or resume, or skip) one grid point, deciding from its directory as it is now, so a
    requeued or repeated job does the right thing; never raises."""
    began = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    try:
        with exclusive(request.out):
            state = run_state(request.out)
            if state == "finished":
                return Outcome(request.out.name, "skipped")
            run(replace(request, resume=state == "unfinished"))
    except MMBenchError as exc:
        return Outcome(request.out.name, "failed", str(exc), time.perf_counter() - began)
    except Exception as exc:  # an unexpected crash fails this point only; its traceback goes to the job's log
        traceback.print_exc()
        return Outcome(request.out.name, "failed", _one_line(exc), time.perf_counter() - began)
    return Outcome(request.out.name, "finished", None, time.perf_counter() - began)


class RunJob(submitit.helpers.Checkpointable):
    """The SLURM job body. On preemption or timeout submitit calls `checkpoint`, which (by default)
    requeues the same arguments; `run_one` then resumes from the last epoch's checkpoint."""

    def __call__(self, request: RunRequest, threads: int | None) -> Outcome:
        return run_one(request, threads)


def execute(spec: SweepSpec, todo: list[RunRequest], report: Callable[[Outcome], None],
            announce: Callable[[str], None]) -> list[Outcome]:
    """Run `todo` with the spec's executor; `report` sees each outcome as it arrives."""
    if not todo:
        return []
    settings = spec.executor
    if settings.name == "local":
        announce(f"running {len(todo)} run(s) one after another")
        return [_reported(run_one(r), report) for r in todo]
    if settings.name == "pool":
        return _run_pool(todo, settings.workers, report, announce)
    return _run_submitit(todo, settings.slurm, spec.results / SUBMITIT_FOLDER, f"mmbench-{spec.name}", report, announce)


def _reported(outcome: Outcome, report: Callable[[Outcome], None]) -> Outcome:
    report(outcome)
    return outcome


def _run_pool(todo: list[RunRequest], workers: int, report: Callable[[Outcome], None],
              announce: Callable[[str], None]) -> list[Outcome]:
    """Spawned (not forked) workers: no CUDA or thread-pool state is inherited; the cores are shared out."""
    workers = min(workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // workers)
    announce(f"running {len(todo)} run(s) in {workers} worker process(es), {threads} thread(s) each")
    outcomes = []
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_one, request, threads): request for request in todo}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:  # the worker died (killed, out of memory): only its run fails
                outcome = Outcome(futures[future].out.name, "failed", f"worker process died: {_one_line(exc)}")
            outcomes.append(_reported(outcome, report))
    return outcomes


def make_submitit_executor(settings: SlurmSettings, folder: Path, name: str) -> submitit.AutoExecutor:
    """An AutoExecutor for `settings.cluster` with the spec's resources (the local cluster
    ignores the SLURM-only ones)."""
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=settings.cluster)
    executor.update_parameters(
        name=name, timeout_min=settings.time, gpus_per_node=settings.gpus_per_node,
        cpus_per_task=settings.cpus_per_task, mem_gb=settings.mem_gb,
        slurm_partition=settings.partition, slurm_array_parallelism=settings.array_parallelism,
        slurm_account=settings.account, slurm_qos=settings.qos, slurm_constraint=settings.constraint,
    )
    return executor


def _run_submitit(todo: list[RunRequest], settings: SlurmSettings, folder: Path, name: str,
                  report: Callable[[Outcome], None], announce: Callable[[str], None]) -> list[Outcome]:
    try:
        executor = make_submitit_executor(settings, folder, name)
    except RuntimeError as exc:  # e.g. no srun here: not on a SLURM cluster
        raise MMBenchError(f"cannot submit to {settings.cluster}: {_one_line(exc)}") from None
    try:
        jobs = executor.map_array(RunJob(), todo, [settings.cpus_per_task] * len(todo))
    except (submitit.core.utils.UncompletedJobError, submitit.core.utils.FailedSubmissionError) as exc:
        raise MMBenchError(f"submitting to {settings.cluster} failed: {_one_line(exc)}") from None
    ids = [job.job_id for job in jobs]
    detached = "; they keep running if this command is stopped" if settings.cluster == "slurm" else ""
    announce(f"submitted {len(jobs)} job(s) to {settings.cluster}: {', '.join(ids) if len(ids) <= 4 else f'{ids[0]} ... {ids[-1]}'} "
             f"(logs under {folder}){detached}")
    requests = {job.job_id: request for job, request in zip(jobs, todo)}
    outcomes = []
    poll = 30.0 if settings.cluster == "slurm" else 1.0
    for job in submitit.helpers.as_completed(jobs, poll_frequency=poll):
        try:
            outcome = job.result()
        except Exception as exc:  # the job itself failed (killed, out of memory, cannot start)
            reason = _one_line(exc, last=isinstance(exc, submitit.core.utils.FailedJobError))
            outcome = Outcome(requests[job.job_id].out.name, "failed", f"job {job.job_id}: {reason} (log: {job.paths.stderr})")
        outcomes.append(_reported(outcome, report))
    return outcomes


def _one_line(exc: BaseException, last: bool = False) -> str:
    """The exception as one line; `last` picks the final line (submitit puts the cause there)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = (lines[-1] if last else lines[0]).strip() if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
