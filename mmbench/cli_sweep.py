"""`mmbench check-plugin` and `mmbench sweep`: vet an outside model, then run grids of it.

Registered on the `mmbench` group in mmbench/cli.py. Both exit 1 when something failed (a check,
a run) and 2 on a user error (unknown or unimportable model, bad spec), with a one-line message.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mmbench.errors import MMBenchError

if TYPE_CHECKING:
    from mmbench.sweep import Outcome


@click.command("check-plugin")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Model option for the check, e.g. beta=1 [default: latent_dim=8 where the model has it].")
@click.option("--modalities", type=click.IntRange(2, 5), default=3, show_default=True,
              help="Number of (3, 28, 28) image modalities of the synthetic data.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (device-placement bugs show on cuda).")
def check_plugin(name: str, overrides: tuple[str, ...], modalities: int, seed: int, device: str) -> None:
    """Check model NAME against the MultimodalVAE contract on tiny synthetic data, in seconds.

    Prints a checklist; exits 0 when every check passes, 1 when one fails, 2 when the model
    cannot be imported."""
    from mmbench.plugin_check import check_model, parse_options

    try:
        results = check_model(name, parse_options(overrides), modalities, seed, device)
    except MMBenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for result in results:
        click.echo(f"{'✓' if result.ok else '✗'} {result.name}" + (f": {result.detail}" if result.detail else ""))
    failed = sum(not r.ok for r in results)
    click.echo(f"{name}: {len(results) - failed}/{len(results)} checks passed")
    sys.exit(1 if failed else 0)


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
    from mmbench.sweep import execute, expand, load_spec, run_state, triage

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
        _report(outcome)
    loaded.results.mkdir(parents=True, exist_ok=True)
    outcomes = done + execute(loaded, todo, _report, lambda line: click.echo(line))
    failed = [o for o in outcomes if o.state == "failed"]
    counts = {state: sum(o.state == state for o in outcomes) for state in ("finished", "skipped", "failed")}
    click.echo(f"done: {counts['finished']} finished, {counts['skipped']} skipped, {counts['failed']} failed")
    if failed:
        click.echo("failed runs:")
        for outcome in sorted(failed, key=lambda o: o.name):
            click.echo(f"  {outcome.name}: {outcome.error}")
        sys.exit(1)


def _report(outcome: Outcome) -> None:
    if outcome.state == "finished":
        click.echo(f"finished {outcome.name} ({outcome.seconds:.0f} s)")
    elif outcome.state == "failed":
        click.echo(f"failed   {outcome.name}: {outcome.error}")
