"""The `mmbench` command line: one click command per verb.

User errors (MMBenchError) print as one line on stderr with exit status 2; an interrupted run
keeps its last checkpoint and says how to resume.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click

from mmbench import __version__
from mmbench.config import TIERS
from mmbench.errors import MMBenchError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmbench")
def cli() -> None:
    """Benchmark suite and leaderboard for multimodal VAEs."""


@cli.command("list")
@click.argument("what", type=click.Choice(["models", "datasets", "metrics"]))
def list_cmd(what: str) -> None:
    """List the registered models, datasets (plugins included; broken ones say why) or metrics."""
    from mmbench.registry import DATASETS, MODELS

    if what == "metrics":
        from mmbench.evaluation import EVALUATORS

        from mmbench.metrics.quality_gap import QualityGap

        rows = [(m, ev.name, ev.description) for ev in EVALUATORS.values() for m in ev.metrics]
        rows.append((QualityGap, QualityGap.name, "Gap of unconditional quality to the unimodal run of the same seed and tier."))
        for metric, evaluator_name, description in rows:
            direction = "higher is better" if metric.higher_is_better else "lower is better"
            click.echo(f"{metric.name:<28} v{metric.version}  {direction:<17} [{evaluator_name}] {description}")
        return
    registry = MODELS if what == "models" else DATASETS
    for name in registry.names():
        click.echo(name)
    for name, reason in sorted(registry.broken.items()):
        click.echo(f"{name} (broken: {reason})", err=True)


@cli.command()
@click.option("--model", required=True, help="Registered model name (see `mmbench list models`).")
@click.option("--dataset", required=True, help="Registered dataset name (see `mmbench list datasets`).")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. beta=1 or train.epochs=3.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory [default: runs/MODEL-DATASET-TIER-seedN].")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA", help="Data and asset cache [env MMBENCH_DATA; default: ~/.cache/mmbench].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--resume", is_flag=True, help="Continue the unfinished run in --out from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and exit.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(model, dataset, tier, seed, overrides, out, data_root, device, resume, dry_run, quiet) -> None:
    """Train MODEL on DATASET, score it, and write a result record."""
    from mmbench.runner import RunRequest, plan, run as run_benchmark

    request = RunRequest(model, dataset, tier, seed, tuple(overrides), out, data_root, device, resume, not quiet)
    if dry_run:
        click.echo(json.dumps(plan(request), indent=2))
        return
    record = run_benchmark(request)
    click.echo(f"result: {request.run_dir() / 'result.json'}")
    for name, value in sorted(record["metrics"].items()):
        click.echo(f"  {name:<40} {value:.4f}")


@cli.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--metrics", "metrics", multiple=True, help="Evaluator to run (repeatable); default: all that apply.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def evaluate_cmd(run_dir, metrics, data_root, device, quiet) -> None:
    """(Re)score a finished run and update its result.json."""
    from mmbench.runner import rescore

    record = rescore(run_dir, list(metrics) or None, data_root, device, not quiet)
    for name, value in sorted(record["metrics"].items()):
        click.echo(f"  {name:<40} {value:.4f}")


@cli.group()
def data() -> None:
    """Build, verify or download datasets."""


@data.command("build")
@click.argument("name")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset (split) seed.")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
def data_build(name, tier, seed, data_root) -> None:
    """Build dataset NAME into the data root's cache and print its checksum."""
    from mmbench.data.cache import resolve_data_root
    from mmbench.registry import get_dataset

    dataset = get_dataset(name, resolve_data_root(data_root), tier=tier, seed=seed)
    click.echo(f"{name} {tier} seed {seed}: train {len(dataset.train)}, test {len(dataset.test)}, sha256 {dataset.checksum}")


@data.command("verify")
@click.argument("name")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def data_verify(name, tier, seed) -> None:
    """Rebuild dataset NAME from scratch and compare its checksum with its dataset card."""
    from mmbench.cards import verify

    pinned, rebuilt = verify(name, tier, seed)
    click.echo(f"card:    {pinned}\nrebuilt: {rebuilt}")
    if pinned != rebuilt:
        raise MMBenchError(f"{name} {tier} seed {seed} does not match its dataset card")
    click.echo("ok")


@data.command("download")
@click.argument("name")
@click.option("--data-root", type=click.Path(path_type=Path), envvar="MMBENCH_DATA")
def data_download(name, data_root) -> None:
    """Download an official release (checksum-verified, resumable) into the data root."""
    from mmbench.data.download import fetch_release

    click.echo(fetch_release(name, data_root))


@cli.group()
def reproduce() -> None:
    """Reproduce a paper's experiments and report, claim by claim, whether this run supports them."""


@reproduce.command("limitations")
@click.option("--tier", type=click.Choice(list(TIERS)), default="quick", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="[default: runs/reproduce-limitations-TIER]")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Extra override for every run.")
@click.option("--plan-only", is_flag=True, help="List the planned runs and exit.")
@click.option("--executor", "executor_name", type=click.Choice(["local", "pool", "slurm"]), default="local", show_default=True,
              help="As in `mmbench sweep`: local (one run after another), pool (--workers processes) or slurm (a job array through submitit).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes of --executor pool.")
@click.option("--slurm", "slurm", multiple=True, metavar="KEY=VALUE",
              help="Resource of each SLURM job, named as in a sweep spec's executor.slurm, e.g. partition=gpu, time=04:00:00, "
                   "gpus_per_node=1, cpus_per_task=8, mem_gb=32; cluster=local tries it here.")
def reproduce_limitations(tier, seed, results, overrides, plan_only, executor_name, workers, slurm) -> None:
    """Daunhawer et al. (ICLR 2022): quality gap, its growth with M, the trade-off, Translated-PolyMNIST.

    Writes RESULTS/REPORT.md and one figure per claim under RESULTS/figures (SVG and PNG). Rerunning
    skips finished runs and resumes unfinished ones."""
    from mmbench.checkpoint import atomic_write_bytes
    from mmbench.reproduce import execute, executor_settings, plan, report, sweep_executor
    from mmbench.reproduce_figures import draw, write

    settings = executor_settings(executor_name, workers, tuple(slurm))
    results = (results or Path("runs") / f"reproduce-limitations-{tier}").absolute()
    planned = plan(tier, results, seed, tuple(overrides))
    if plan_only:
        for p in planned:
            click.echo(f"{p.experiment:<12} {p.request.model:<9} {p.request.dataset:<21} {' '.join(p.request.overrides)}")
        return
    outcome_line = lambda o: click.echo(f"{o.state} {o.name}" + (f": {o.error}" if o.error else f" ({o.seconds:.0f} s)"))
    records, failures = execute(planned, sweep_executor(settings, results, outcome_line, click.echo))
    text = report(records, failures, tier, write(draw(records), results))
    atomic_write_bytes(results / "REPORT.md", text.encode())
    click.echo(text)
    click.echo(f"report: {results / 'REPORT.md'}")
    if failures:
        sys.exit(1)


from mmbench.cli_leaderboard import leaderboard, regress  # noqa: E402
from mmbench.cli_sweep import check_plugin, sweep  # noqa: E402

cli.add_command(leaderboard)
cli.add_command(regress)
cli.add_command(check_plugin)
cli.add_command(sweep)


EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_CRASH = 1, 2, 3


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MMBenchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        click.echo("interrupted: finished epochs are checkpointed; rerun with --resume to continue", err=True)
        sys.exit(130)
    except Exception:  # a bug in mmbench or a plugin: its own exit code, so CI never reads it as a regression
        traceback.print_exc()
        click.echo("error: mmbench crashed (the traceback above is a bug; please report it)", err=True)
        sys.exit(EXIT_CRASH)


if __name__ == "__main__":
    main()
