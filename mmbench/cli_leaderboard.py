"""`mmbench leaderboard` and `mmbench regress`: tables and artefacts from records, and CI score checks.

Registered on the `mmbench` group in mmbench/cli.py. Bad records are reported on stderr and
skipped (`--strict` makes them fatal); a failed regression check exits with status 1.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from mmbench.checkpoint import atomic_write_bytes, atomic_write_json
from mmbench.config import TIERS
from mmbench.errors import MMBenchError
from mmbench.store import BadRecord, load_results

FORMATS = ("terminal", "markdown", "latex", "html", "csv")
_RESULTS_HELP = "Directory searched for */result.json at any depth [default: runs, where `mmbench run` writes]."


def _report(problems: list[BadRecord], strict: bool) -> None:
    """Print every bad or duplicate record; with `strict`, then fail."""
    for problem in problems:
        click.echo(f"{'error:' if strict else 'warning: skipped'} {problem.reason}", err=True)
    if strict and problems:
        raise MMBenchError(f"{len(problems)} bad result record(s) (--strict)")


def _command(*words: object) -> str:
    """A reproducible command line (for `produced_by` notes), quoted for a POSIX shell."""
    return " ".join(shlex.quote(str(w)) for w in words)


def _flags(**options: object) -> list[str]:
    words = []
    for name, value in options.items():
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None:
                words += [f"--{name.replace('_', '-')}", str(v)]
    return words


@click.command("leaderboard")
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=Path("runs"), help=_RESULTS_HELP)
@click.option("--dataset", help="Only this dataset (default: one table per dataset).")
@click.option("--tier", type=click.Choice(list(TIERS)), help="Only this tier.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="terminal", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--render", type=click.Path(path_type=Path, file_okay=False),
              help="Write the official artefacts here: README.md, index.html, plots/*.svg|png.")
@click.option("--strict", is_flag=True, help="Fail on malformed or duplicate records instead of skipping them.")
def leaderboard(results: Path, dataset: str | None, tier: str | None, fmt: str, out: Path | None,
                render: Path | None, strict: bool) -> None:
    """One row per model for each dataset and tier: mean ± 95% CI over seeds, ranked by mean
    conditional coherence (coherence/conditional, higher is better)."""
    from mmbench.html_page import render_page
    from mmbench.publish import build, render_site
    from mmbench.tables import format_boards

    if render is not None and out is not None:
        raise click.UsageError("--render writes a whole directory; leave out --out")
    built = build(results, dataset, tier, with_plots=render is not None or fmt == "html")
    _report(built.problems, strict)
    if render is not None:
        command = _command("mmbench", "leaderboard", *_flags(results=results, dataset=dataset, tier=tier, render=render))
        written = render_site(built, render, command)
        click.echo(f"wrote {len(written)} files under {render}")
        return
    text = render_page(built.boards, built.plots, built.notes) if fmt == "html" else format_boards(built.boards, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write_bytes(out, text.encode())
        click.echo(f"wrote {out}")


@click.command("regress")
@click.option("--reference", type=click.Path(path_type=Path, dir_okay=False), help="Reference file to check against.")
@click.option("--results", type=click.Path(path_type=Path, file_okay=False),
              help="Results directory [with --run: default runs/regress].")
@click.option("--run", "run_missing", is_flag=True, help="First run (into --results) every reference entry that has no record.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA", help="Data cache for --run [env MMBENCH_DATA].")
@click.option("--device", default="auto", show_default=True, help="Device for --run.")
@click.option("--write-reference", type=click.Path(path_type=Path, dir_okay=False),
              help="Instead of checking, (re)write this reference file from the records in --results.")
@click.option("--abs-tol", type=float, help="With --write-reference: band value ± ABS_TOL.")
@click.option("--rel-tol", type=float, help="With --write-reference: band value ± REL_TOL·|value|.")
@click.option("--spread", type=float, help="With --write-reference: band = mean over seeds ± max(SPREAD·std, --abs-tol); needs 3+ seeds.")
@click.option("--metric", "metrics", multiple=True, help="With --write-reference: only metrics named this or under it (repeatable).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="With --write-reference: config overrides the reference's runs use (passed on by --run).")
@click.option("--dataset", help="With --write-reference: only this dataset.")
@click.option("--tier", type=click.Choice(list(TIERS)), help="With --write-reference: only this tier.")
@click.option("--strict", is_flag=True, help="Fail on malformed or duplicate records instead of skipping them.")
def regress(reference: Path | None, results: Path | None, run_missing: bool, data_root: Path | None, device: str,
            write_reference: Path | None, abs_tol: float | None, rel_tol: float | None, spread: float | None, metrics: tuple[str, ...],
            overrides: tuple[str, ...], dataset: str | None, tier: str | None, strict: bool) -> None:
    """Compare results with a reference file; exit 1 on any REGRESSION, missing or STALE value.

    Exit status: 0 all within their bands; 1 a regression (REGRESSION, missing or STALE); 2 bad input
    (unreadable reference, bad option; bad records are skipped with a warning unless --strict);
    3 a crash of mmbench itself."""
    from mmbench import regress as checks

    if (reference is None) == (write_reference is None):
        raise click.UsageError("give exactly one of --reference FILE (check) or --write-reference FILE")
    if write_reference is not None:
        if results is None:
            raise click.UsageError("--write-reference needs --results DIR")
        records, problems = load_results(results, dataset, tier)
        _report(problems, strict)
        produced_by = _command("mmbench", "regress", *_flags(write_reference=write_reference, results=results, dataset=dataset,
                                                             tier=tier, abs_tol=abs_tol, rel_tol=rel_tol, spread=spread,
                                                             metric=metrics, set=overrides))
        ref, skipped = checks.reference_from_records(records, produced_by, abs_tol, rel_tol, metrics, overrides, spread)
        atomic_write_json(write_reference, ref)
        for name in skipped:
            click.echo(f"note: left out {name} (unknown metric family, so no known direction)", err=True)
        click.echo(f"wrote {write_reference}: {len(ref['entries'])} runs, "
                   f"{sum(len(e['metrics']) for e in ref['entries'])} metrics")
        return
    entries = checks.load_reference(reference)
    if results is None:
        if not run_missing:
            raise click.UsageError("give --results DIR, or --run to make the runs")
        results = Path("runs/regress")
    if run_missing:
        results.mkdir(parents=True, exist_ok=True)
        records, _ = load_results(results)
        for made in checks.run_missing(entries, records, results, data_root, device):
            click.echo(f"ran {made}", err=True)
    records, problems = load_results(results)
    _report(problems, strict)
    rows = checks.compare(entries, records)
    click.echo(checks.report(rows), nl=False)
    if checks.failed(rows):
        raise SystemExit(1)
