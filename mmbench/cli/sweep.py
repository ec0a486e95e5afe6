"""`mmbench sweep`: run a grid of models x datasets x seeds x overrides; exit 1 when a run failed.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mmbench.experiments.sweep import Outcome


@click.command("sweep")
@click.argument("spec", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), help="Results folder [default: the spec's `results`].")
@click.option("--plan-only", is_flag=True, help="List the grid points and what would happen to each, then exit.")
def sweep(spec: Path, results: Path | None, plan_only: bool) -> None:
    """Run the grid of SPEC (YAML or JSON): models x datasets x tiers x seeds x `set` values.

    \b
    models: [mopoe, mmvae]          # required, like datasets and results
    datasets: [polymnist]
    tiers: [quick]                  # default [quick]
    seeds: [0, 1, 2]                # default [0]
    set: {beta: [0.5, 1, 2.5], train.epochs: 10}   # a list is swept; wrap a list-valued option: [[...]]
    results: runs/beta-sweep        # from the current directory; runs: model-dataset-tier-seedN-<hash>
    data_root: /data/mmbench        # optional [env MMBENCH_DATA]; device: auto (optional)
    executor: {name: slurm,         # local (one after another) | pool (workers processes) | slurm
               workers: 2,
               slurm: {partition: gpu, time: "04:00:00", gpus_per_node: 1, cpus_per_task: 8,
                       mem_gb: 32, array_parallelism: 16, cluster: slurm}}   # also account, qos, constraint;
                                                                            # cluster: local tries it here

    Finished runs are skipped and unfinished ones resumed, so re-running a sweep picks up where it
    stopped. Failed runs are listed at the end with their error (exit status 1); they never stop the others.
    """
    from mmbench.experiments.sweep import execute, expand, load_spec, run_state, triage

    loaded = load_spec(spec, results)
    requests = expand(loaded)
    if plan_only:
        for request in requests:
            click.echo(f"{run_state(request.out):<10} {request.out.name:<48} {' '.join(request.overrides)}")
        return
    done, todo = triage(requests)
    skipped = [o for o in done if o.state == "skipped"]
    resumed = sum(r.resume for r in todo)
    click.echo(f"{len(requests)} run(s) in {loaded.results}: {len(skipped)} finished before (skipped), "
               f"{len(todo)} to run ({resumed} resumed), {len(done) - len(skipped)} failed to plan")
    for outcome in done:
        _print_outcome(outcome)
    loaded.results.mkdir(parents=True, exist_ok=True)
    outcomes = done + execute(loaded, todo, _print_outcome, lambda line: click.echo(line))
    failed = [o for o in outcomes if o.state == "failed"]
    counts = {state: sum(o.state == state for o in outcomes) for state in ("finished", "skipped", "failed")}
    click.echo(f"done: {counts['finished']} finished, {counts['skipped']} skipped, {counts['failed']} failed")
    if failed:
        click.echo("failed runs:")
        for outcome in sorted(failed, key=lambda o: o.name):
            click.echo(f"  {outcome.name}: {outcome.error}")
        sys.exit(1)

def _print_outcome(outcome: Outcome) -> None:
    if outcome.state == "finished":
        click.echo(f"finished {outcome.name} ({outcome.seconds:.0f} s)")
    elif outcome.state == "failed":
        click.echo(f"failed   {outcome.name}: {outcome.error}")
