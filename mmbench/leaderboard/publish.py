"""The official leaderboard artefacts from a results directory, in one call.

`render_site(results, out)` writes `out/README.md` (markdown tables linking the plots),
`out/index.html` (self-contained page), `out/plots/*.svg|png` and `out/samples/*.png`: each
model's sample grids (generated from one given modality, and unconditional), copied from the run
directory of its first record where the run kept them. Everything is a function of the results
folder alone, so rerunning it reproduces the files byte for byte; plots and grids no longer
produced are removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from mmbench.leaderboard.names import board_stems, file_safe
from mmbench.results.aggregate import Board, build_boards
from mmbench.files import atomic_write_bytes
from mmbench.leaderboard.html import render_page
from mmbench.leaderboard.plots import Plot, board_plots
from mmbench.leaderboard.published import Published, load_published, published_markdown
from mmbench.results.store import BadRecord, load_results
from mmbench.leaderboard.tables import format_boards, markdown_escape

PLOTS_DIR = "plots"
SAMPLES_DIR = "samples"
SAMPLE_GRIDS = (("given_m0.png", "generated from m0"), ("unconditional.png", "unconditional"))
"""Which grids of a run the page shows (files under its samples/), and their captions."""


@dataclass(frozen=True)
class SampleGrid:
    board: str
    model: str
    caption: str
    name: str
    """File name under samples/: board, model and grid, made safe for any model name."""
    data: bytes


@dataclass
class Leaderboard:
    """Everything a rendering needs: the boards, their plots, and what was skipped or rejected."""
    boards: list[Board]
    plots: list[Plot]
    notes: list[str]
    problems: list[BadRecord]
    samples: list[SampleGrid] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)


def build(results: str | Path, dataset: str | None = None, tier: str | None = None,
          with_plots: bool = True, published: str | Path | None = None) -> Leaderboard:
    records, problems = load_results(results, dataset, tier)
    boards = build_boards(records)
    plots, notes = board_plots(boards) if with_plots else ([], [])
    quoted = [p for p in load_published(published) if dataset in (None, p.dataset)] if published else []
    return Leaderboard(boards, plots, notes, problems, sample_grids(boards, Path(results)), quoted)


def sample_grids(boards: list[Board], results: Path) -> list[SampleGrid]:
    """The grids each board's models left in the run directory of their lowest-seed record."""
    grids = []
    for board, stem in zip(boards, board_stems(boards)):
        for model in board.models:
            folder = (results / board.records[model][0].path).parent / "samples"
            for file, caption in SAMPLE_GRIDS:
                if (folder / file).is_file():
                    name = f"{stem}-{file_safe(model)}-{file}"
                    grids.append(SampleGrid(board.title, model, caption, name, (folder / file).read_bytes()))
    return grids


def render_site(leaderboard: Leaderboard, out: str | Path, command: str) -> list[Path]:
    """Write README.md, index.html and plots/ under `out`; `command` is how to regenerate them."""
    out = Path(out)
    plots_dir = out / PLOTS_DIR
    written = []
    for plot in leaderboard.plots:
        for suffix, data in ((".svg", plot.svg), (".png", plot.png)):
            atomic_write_bytes(plots_dir / f"{plot.name}{suffix}", data)
            written.append(plots_dir / f"{plot.name}{suffix}")
    for grid in leaderboard.samples:
        atomic_write_bytes(out / SAMPLES_DIR / grid.name, grid.data)
        written.append(out / SAMPLES_DIR / grid.name)
    for folder in (plots_dir, out / SAMPLES_DIR):
        if folder.is_dir():
            for stale in sorted(folder.iterdir()):
                if stale.suffix in (".svg", ".png") and stale not in written:
                    stale.unlink()
    atomic_write_bytes(out / "README.md", readme(leaderboard, command).encode())
    page = render_page(leaderboard.boards, leaderboard.plots, leaderboard.notes, leaderboard.samples, leaderboard.published)
    atomic_write_bytes(out / "index.html", page.encode())
    return [out / "README.md", out / "index.html", *written]


def readme(leaderboard: Leaderboard, command: str) -> str:
    """The markdown leaderboard: tables, then the plots (SVG links), then notes."""
    parts = [f"# mmbench leaderboard\n\nGenerated from the result records by `{command}`; do not edit by hand.\n",
             format_boards(leaderboard.boards, "markdown")]
    if leaderboard.published:
        parts.append(published_markdown(leaderboard.published, markdown_escape))
    if leaderboard.plots:
        parts.append("## Plots\n\n" + "\n".join(f"![{markdown_escape(p.title)}]({PLOTS_DIR}/{quote(p.name)}.svg)\n"
                                                 for p in leaderboard.plots))
    if leaderboard.samples:
        parts.append("## Samples\n\n" + "\n".join(
            f"![{markdown_escape(f'{g.board}: {g.model}, {g.caption}')}]({SAMPLES_DIR}/{quote(g.name)})\n" for g in leaderboard.samples))
    if leaderboard.notes:
        parts.append("## Notes\n\n" + "".join(f"- {markdown_escape(n)}\n" for n in leaderboard.notes))
    return "\n".join(parts)
