"""`mmbench check-plugin`: vet an outside model against the MultimodalVAE contract; exit 1 on a failed check.
"""
from __future__ import annotations

import sys

import click

from mmbench.errors import MMBenchError


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
    from mmbench.api.options import parse_assignments
    from mmbench.api.plugin_check import check_model

    try:
        results = check_model(name, parse_assignments(overrides), modalities, seed, device)
    except MMBenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for result in results:
        click.echo(f"{'✓' if result.ok else '✗'} {result.name}" + (f": {result.detail}" if result.detail else ""))
    failed = sum(not r.ok for r in results)
    click.echo(f"{name}: {len(results) - failed}/{len(results)} checks passed")
    sys.exit(1 if failed else 0)
