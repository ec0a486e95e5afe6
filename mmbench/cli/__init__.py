"""The `mmbench` command line: one module per verb, gathered on one click group here.

User errors (MMBenchError) print as one line on stderr with exit status 2, a failed check or
regression exits 1, a crash (a bug) 3; an interrupted run keeps its last checkpoint and says how
to resume.
"""
from __future__ import annotations

import sys
import traceback

import click

from mmbench import __version__
from mmbench.cli.check_plugin import check_plugin
from mmbench.cli.data import data
from mmbench.cli.evaluate import evaluate_cmd
from mmbench.cli.leaderboard import leaderboard
from mmbench.cli.list import list_cmd
from mmbench.cli.regress import regress
from mmbench.cli.reproduce import reproduce
from mmbench.cli.run import run
from mmbench.cli.sweep import sweep
from mmbench.errors import MMBenchError

EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_CRASH = 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mmbench")
def cli() -> None:
    """Benchmark suite and leaderboard for multimodal VAEs."""


for command in (list_cmd, run, evaluate_cmd, data, reproduce, leaderboard, regress, sweep, check_plugin):
    cli.add_command(command)


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
