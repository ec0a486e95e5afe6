"""KEY=VALUE settings as typed on a command line (`--set`, `--slurm`): the one parser.

A value is read as a JSON literal where it parses (numbers, true/false, null, lists) and kept as
the typed string otherwise, so `beta=2.5` is a float, `objective=iwae` and `time=04:00:00` strings.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from mmbench.errors import ConfigError


def parse_assignment(item: str, flag: str = "--set") -> tuple[str, Any]:
    """(key, value) of one `KEY=VALUE`; a missing `=` or key is a one-line ConfigError naming `flag`."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"malformed {flag} {item!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def parse_assignments(items: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """{key: value} of several `KEY=VALUE` items (the last of a repeated key wins)."""
    return dict(parse_assignment(item, flag) for item in items)
