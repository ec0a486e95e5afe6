"""`mmbench evaluate`: rescore a finished run in place."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--metrics", "metrics", multiple=True, help="Evaluator to run (repeatable); default: all that apply.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def evaluate_cmd(run_dir, metrics, data_root, device, quiet) -> None:
    """(Re)score a finished run and update its result.json."""
    from mmbench.experiments.runner import rescore

    record = rescore(run_dir, list(metrics) or None, data_root, device, not quiet)
    for name, value in sorted(record["metrics"].items()):
        click.echo(f"  {name:<40} {value:.4f}")
