"""`mmbench reproduce limitations`: the paper's experiments, run and reported claim by claim."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from mmbench.training.config import TIERS


@click.group()
def reproduce() -> None:
    """Reproduce a paper's experiments and report, claim by claim, whether this run supports them."""

@reproduce.command("limitations")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="[default: runs/reproduce-limitations-TIER]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Extra override for every run.")
@click.option("--plan-only", is_flag=True, help="List the planned runs (run directory, experiment, model, dataset, overrides; tab-separated) and exit.")
@click.option("--report-only", is_flag=True,
              help="Write the report from the runs already finished under --results and run nothing "
                   "(claims missing a run are inconclusive).")
@click.option("--executor", "executor_name", type=click.Choice(["local", "pool", "slurm"]), default="local", show_default=True,
              help="As in `mmbench sweep`: local (one run after another), pool (--workers processes) or slurm (a job array through submitit).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes of --executor pool.")
@click.option("--slurm", "slurm", multiple=True, metavar="KEY=VALUE",
              help="Resource of each SLURM job, named as in a sweep spec's executor.slurm, e.g. partition=gpu, time=04:00:00, "
                   "gpus_per_node=1, cpus_per_task=8, mem_gb=32; cluster=local tries it here.")
def reproduce_limitations(tier, seed, results, overrides, plan_only, report_only, executor_name, workers, slurm) -> None:
    """Daunhawer et al. (ICLR 2022): quality gap, its growth with M, the trade-off, Translated-PolyMNIST,
    Δ on the synthetic set; and whether MMVM, which does not sub-sample, keeps a smaller gap.

    Writes RESULTS/REPORT.md and one figure per claim under RESULTS/figures (SVG and PNG). Rerunning
    skips finished runs and resumes unfinished ones."""
    from mmbench.experiments.figures import draw, write
    from mmbench.experiments.reproduce import (
        collect,
        execute,
        executor_settings,
        plan,
        report,
        still_to_run,
        sweep_executor,
    )
    from mmbench.files import atomic_write_bytes

    settings = executor_settings(executor_name, workers, tuple(slurm))
    results = (results or Path("runs") / f"reproduce-limitations-{tier}").absolute()
    planned = plan(tier, results, seed, tuple(overrides))
    if plan_only:
        for p in planned:
            click.echo(f"{p.request.out.name}\t{p.experiment}\t{p.request.model}\t{p.request.dataset}\t{' '.join(p.request.overrides)}")
        return
    if report_only:
        (records, stale), failures = collect(planned), {}
    else:
        outcome_line = lambda o: click.echo(f"{o.state} {o.name}" + (f": {o.error}" if o.error else f" ({o.seconds:.0f} s)"))
        records, stale, failures = execute(planned, sweep_executor(settings, results, outcome_line, click.echo))
    text = report(records, {**stale, **failures}, tier, write(draw(records, tier), results), still_to_run(planned, records))
    atomic_write_bytes(results / "REPORT.md", text.encode())
    click.echo(text)
    click.echo(f"report: {results / 'REPORT.md'}")
    if failures:
        sys.exit(1)
