"""The official leaderboard artefacts from a results directory, in one call.

`render_site(results, out)` writes `out/README.md` (markdown tables linking the plots),
`out/index.html` (self-contained page) and `out/plots/*.svg|png`. Everything is a function of the
records alone, so rerunning it on the same records reproduces the files byte for byte; plots no
longer produced are removed from `out/plots`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mmbench.results.aggregate import Board, build_boards
from mmbench.files import atomic_write_bytes
from mmbench.leaderboard.html import render_page
from mmbench.leaderboard.plots import Plot, board_plots
from mmbench.results.store import BadRecord, load_results
from mmbench.leaderboard.tables import format_boards, markdown_escape

PLOTS_DIR = "plots"


@dataclass
class Leaderboard:
    """Everything a rendering needs: the boards, their plots, and what was skipped or rejected."""
    boards: list[Board]
    plots: list[Plot]
    notes: list[str]
    problems: list[BadRecord]


def build(results: str | Path, dataset: str | None = None, tier: str | None = None,
          with_plots: bool = True) -> Leaderboard:
    records, problems = load_results(results, dataset, tier)
    boards = build_boards(records)
    plots, notes = board_plots(boards) if with_plots else ([], [])
    return Leaderboard(boards, plots, notes, problems)


def render_site(leaderboard: Leaderboard, out: str | Path, command: str) -> list[Path]:
    """Write README.md, index.html and plots/ under `out`; `command` is how to regenerate them."""
    out = Path(out)
    plots_dir = out / PLOTS_DIR
    written = []
    for plot in leaderboard.plots:
        for suffix, data in ((".svg", plot.svg), (".png", plot.png)):
            atomic_write_bytes(plots_dir / f"{plot.name}{suffix}", data)
            written.append(plots_dir / f"{plot.name}{suffix}")
    if plots_dir.is_dir():
        for stale in sorted(plots_dir.iterdir()):
            if stale.suffix in (".svg", ".png") and stale not in written:
                stale.unlink()
    atomic_write_bytes(out / "README.md", readme(leaderboard, command).encode())
    atomic_write_bytes(out / "index.html", render_page(leaderboard.boards, leaderboard.plots, leaderboard.notes).encode())
    return [out / "README.md", out / "index.html", *written]


def readme(leaderboard: Leaderboard, command: str) -> str:
    """The markdown leaderboard: tables, then the plots (SVG links), then notes."""
    parts = [f"# mmbench leaderboard\n\nGenerated from the result records by `{command}`; do not edit by hand.\n",
             format_boards(leaderboard.boards, "markdown")]
    if leaderboard.plots:
        parts.append("## Plots\n\n" + "\n".join(f"![{markdown_escape(p.title)}]({PLOTS_DIR}/{quote(p.name)}.svg)\n"
                                                 for p in leaderboard.plots))
    if leaderboard.notes:
        parts.append("## Notes\n\n" + "".join(f"- {markdown_escape(n)}\n" for n in leaderboard.notes))
    return "\n".join(parts)
