"""`mmbench data build|verify|download`: datasets on disk and their pinned checksums."""
from __future__ import annotations

from pathlib import Path

import click

from mmbench.errors import MMBenchError
from mmbench.training.config import TIERS, dataset_config


@click.group()
def data() -> None:
    """Build, verify or download datasets."""


@data.command("build")
@click.argument("name")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True,
              help="Run tier whose data to build (cpu runs on the quick data, cpu40k on 40,000 of its tuples).")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset (split) seed.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
def data_build(name, tier, seed, data_root) -> None:
    """Build dataset NAME into the data root's cache and print its checksum."""
    from mmbench.api.registry import get_dataset
    from mmbench.data.cache import resolve_data_root

    dataset = get_dataset(name, resolve_data_root(data_root), **{**dataset_config(name, tier), "seed": seed})
    click.echo(f"{name} for tier {tier}, seed {seed}: train {len(dataset.train)}, test {len(dataset.test)}, sha256 {dataset.checksum}")

@data.command("verify")
@click.argument("name")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True,
              help="Run tier whose data to check (cpu runs on the quick data, cpu40k on 40,000 of its tuples).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cards", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Folder of dataset cards to check against [default: the cards shipped with mmbench].")
def data_verify(name, tier, seed, cards) -> None:
    """Rebuild dataset NAME from scratch and compare its checksum with its dataset card."""
    from mmbench.data.cards import CARDS_DIR, verify

    options = dataset_config(name, tier)
    pinned, rebuilt = verify(name, options["tier"], seed, cards or CARDS_DIR, options.get("n_train"))
    click.echo(f"card:    {pinned}\nrebuilt: {rebuilt}")
    if pinned != rebuilt:
        raise MMBenchError(f"{name} for tier {tier}, seed {seed} does not match its dataset card")
    click.echo("ok")

@data.command("download")
@click.argument("name")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
def data_download(name, data_root) -> None:
    """Download an official release (checksum-verified, resumable) into the data root."""
    from mmbench.data.download import fetch_release

    click.echo(fetch_release(name, data_root))
