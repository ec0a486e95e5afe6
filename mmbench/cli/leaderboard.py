"""`mmbench leaderboard`: tables and the official artefacts (README, HTML, plots) from result records.

Bad records are reported on stderr and skipped (`--strict` makes them fatal).
"""
from __future__ import annotations

from pathlib import Path

import click

from mmbench.cli.common import RESULTS_HELP, command_line, flags, report_bad_records
from mmbench.files import atomic_write_bytes
from mmbench.training.config import TIERS

FORMATS = ("terminal", "markdown", "latex", "html", "csv")

@click.command("leaderboard")
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=Path("runs"), help=RESULTS_HELP)
@click.option("--dataset", help="Only this dataset (default: one table per dataset).")
@click.option("--tier", type=click.Choice(list(TIERS)), help="Only this tier.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--render", type=click.Path(path_type=Path, file_okay=False),
              help="Write the official artefacts here: README.md, index.html, plots/*.svg|png.")
@click.option("--strict", is_flag=True, help="Fail on malformed or duplicate records instead of skipping them.")
@click.option("--published", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="JSON of numbers quoted from papers, shown under the boards as quoted (README, HTML).")
def leaderboard(results: Path, dataset: str | None, tier: str | None, fmt: str, out: Path | None,
                render: Path | None, strict: bool, published: Path | None) -> None:
    """One row per model for each dataset and tier: mean ± 95% CI over seeds, ranked by mean
    conditional coherence (coherence/conditional, higher is better)."""
    from mmbench.leaderboard.html import render_page
    from mmbench.leaderboard.publish import build, render_site
    from mmbench.leaderboard.tables import format_boards

    if render is not None and out is not None:
        raise click.UsageError("--render writes a whole directory; leave out --out")
    built = build(results, dataset, tier, with_plots=render is not None or fmt == "html", published=published)
    report_bad_records(built.problems, strict)
    if render is not None:
        command = command_line("mmbench", "leaderboard", *flags(results=results, dataset=dataset, tier=tier, render=render,
                                                                         published=published))
        written = render_site(built, render, command)
        click.echo(f"wrote {len(written)} files under {render}")
        return
    text = render_page(built.boards, built.plots, built.notes, published=built.published) if fmt == "html" else format_boards(built.boards, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_bytes(out, text.encode())
        click.echo(f"wrote {out}")
