"""File names of a rendered board's files (plots, sample grids), made from titles and model names."""
from __future__ import annotations

import hashlib
import re

from mmbench.results.aggregate import Board

MAX_STEM = 100
"""Longest stem kept whole: far below the 255 bytes a file name may take, with room for suffixes."""


def file_safe(name: str) -> str:
    """`name` in the characters [A-Za-z0-9_.=-] only; a name that had to change (other characters,
    longer than MAX_STEM) ends in 8 hex digits of its sha256, so two names never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)
    if safe == name and len(name) <= MAX_STEM:
        return name
    return f"{safe[:MAX_STEM]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def board_stems(boards: list[Board]) -> list[str]:
    """Unique stems for the boards' files: the title made file-safe ("polymnist-cpu-v2"), with -2,
    -3 for further boards of one title (other metric or network versions)."""
    stems, seen = [], {}
    for board in boards:
        stem = file_safe(board.title.replace(" / ", "-").replace(" ", "-"))
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems
