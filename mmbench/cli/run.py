"""`mmbench run`: train one model on one dataset, score it, write its result record."""
from __future__ import annotations

import json
from pathlib import Path

import click

from mmbench.experiments.tracking import TRACKERS
from mmbench.training.config import TIERS


@click.command()
@click.option("--model", required=True, help="Registered model name (see `mmbench list models`).")
@click.option("--dataset", required=True, help="Registered dataset name (see `mmbench list datasets`).")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. beta=1 or train.epochs=3.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [default: runs/MODEL-DATASET-TIER-seedN].")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA", help="Data and asset cache [env MMBENCH_DATA; default: ~/.cache/mmbench].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint (an unfinished one, or a finished one for a larger train.epochs).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--log", "trackers", multiple=True, type=click.Choice(TRACKERS),
              help="Also log config, epochs, metrics and sample grids to this tracker (repeatable; files under --out).")
def run(model, dataset, tier, seed, overrides, out, data_root, device, resume, dry_run, quiet, trackers) -> None:
    """Train MODEL on DATASET, score it, and write a result record."""
    from mmbench.experiments.runner import RunRequest, plan
    from mmbench.experiments.runner import run as run_benchmark

    request = RunRequest(model, dataset, tier, seed, tuple(overrides), out, data_root, device, resume, not quiet,
                         tuple(trackers))
    if dry_run:
        click.echo(json.dumps(plan(request), indent=2))
        return
    record = run_benchmark(request)
    click.echo(f"result: {request.run_dir() / 'result.json'}")
    for name, value in sorted(record["metrics"].items()):
        click.echo(f"  {name:<40} {value:.4f}")
