"""`mmbench regress`: compare records with a reference file (the CI score gate); exit 1 on a regression.
"""
from __future__ import annotations

from pathlib import Path

import click

from mmbench.cli.common import command_line, flags, report_bad_records
from mmbench.files import atomic_write_json
from mmbench.results.store import load_results
from mmbench.training.config import TIERS


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
    from mmbench.experiments import runner
    from mmbench.results import regress as checks

    if (reference is None) == (write_reference is None):
        raise click.UsageError("give exactly one of --reference FILE (check) or --write-reference FILE")
    if write_reference is not None:
        if results is None:
            raise click.UsageError("--write-reference needs --results DIR")
        records, problems = load_results(results, dataset, tier)
        report_bad_records(problems, strict)
        produced_by = command_line("mmbench", "regress", *flags(write_reference=write_reference, results=results, dataset=dataset,
                                                             tier=tier, abs_tol=abs_tol, rel_tol=rel_tol, spread=spread,
                                                             metric=metrics, set=overrides))
        def config_of(run_key: tuple) -> dict:
            return runner.requested_config(runner.RunRequest(*run_key, overrides=overrides))

        ref, skipped = checks.reference_from_records(records, produced_by, abs_tol, rel_tol, metrics, overrides, spread, config_of)
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
    configs = {entry.run_key: runner.requested_config(runner.entry_request(entry, results)) for entry in entries}
    if run_missing:
        results.mkdir(parents=True, exist_ok=True)
        records, _ = load_results(results)
        made, failures = runner.run_missing(entries, records, results, data_root, device, configs)
        for run_dir in made:
            click.echo(f"ran {run_dir}", err=True)
        for run_dir, why in failures.items():
            click.echo(f"FAILED {run_dir}: {why}", err=True)
    records, problems = load_results(results)
    report_bad_records(problems, strict)
    rows = checks.compare(entries, records, configs)
    click.echo(checks.report(rows), nl=False)
    if checks.failed(rows):
        raise SystemExit(1)
