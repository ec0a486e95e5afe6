"""Helpers shared by the verbs: the bad-record report and reproducible command lines."""
from __future__ import annotations

import shlex

import click

from mmbench.errors import MMBenchError
from mmbench.results.store import BadRecord

RESULTS_HELP = "Directory searched for */result.json at any depth [default: runs, where `mmbench run` writes]."


def report_bad_records(problems: list[BadRecord], strict: bool) -> None:
    """Print every bad or duplicate record; with `strict`, then fail."""
    for problem in problems:
        click.echo(f"{'error:' if strict else 'warning: skipped'} {problem.reason}", err=True)
    if strict and problems:
        raise MMBenchError(f"{len(problems)} bad result record(s) (--strict)")


def command_line(*words: object) -> str:
    """A reproducible command line (for `produced_by` notes), quoted for a POSIX shell."""
    return " ".join(shlex.quote(str(w)) for w in words)


def flags(**options: object) -> list[str]:
    """`--name value` words for the options that are set (tuples repeat the flag)."""
    words = []
    for name, value in options.items():
        for v in value if isinstance(value, tuple) else (value,):
            if v is not None:
                words += [f"--{name.replace('_', '-')}", str(v)]
    return words
