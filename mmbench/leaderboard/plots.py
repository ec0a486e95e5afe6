"""Leaderboard plots (PNG and SVG) from boards: the quality/coherence trade-off and scores by k.

Figures are drawn with the object API (no pyplot state, no GUI backend). SVG bytes are
deterministic (fixed `svg.hashsalt`, no date or creator metadata), so committed plots only
change when the numbers do. Model names are drawn as plain text, never parsed as mathtext.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure

from mmbench.metrics.families import (
    PRIMARY_METRIC,
    QUALITY_FAMILIES,
    family_of,
    label,
    quality_summary,
    subset_size,
)
from mmbench.leaderboard.names import board_stems
from mmbench.results.aggregate import Board, mean_ci95

_QUALITY_NAMES = {"feature_distance": "feature distance", "fid": "FID"}
STYLE = {"svg.hashsalt": "mmbench", "svg.fonttype": "path", "text.parse_math": False, "font.size": 9}
MARKERS = "osD^vP*Xh<>"


@dataclass(frozen=True)
class Plot:
    name: str
    """File stem, e.g. `polymnist-quick-v2-coherence-by-k`."""
    title: str
    svg: bytes
    png: bytes


def board_plots(boards: list[Board]) -> tuple[list[Plot], list[str]]:
    """Every plot the boards support, and a note for each plot that was skipped and why."""
    plots, notes = [], []
    for board, stem in zip(boards, board_stems(boards)):
        with matplotlib.rc_context(STYLE):
            for make in (_tradeoff, _coherence_by_k, _quality_by_k):
                made, note = make(board, stem)
                plots += made
                notes += [f"{board.title}: {note}"] if note else []
    return plots, notes


def _tradeoff(board: Board, stem: str) -> tuple[list[Plot], str | None]:
    runs = [s for model in board.models for s in board.records[model]]
    family = next((f for f in QUALITY_FAMILIES if any(quality_summary(s.record["metrics"], f) is not None for s in runs)), None)
    if family is None or PRIMARY_METRIC not in board.metrics:
        return [], "no overall or per-modality FID or feature distance, so no quality/coherence trade-off plot"
    fig, ax = new_figure()
    for i, model in enumerate(board.models):
        quality = [q for s in board.records[model] if (q := quality_summary(s.record["metrics"], family)) is not None]
        coherence, coherence_ci = board.mean.at[model, PRIMARY_METRIC], board.ci95.at[model, PRIMARY_METRIC]
        if not quality or math.isnan(coherence):
            continue
        x, x_ci = mean_ci95(quality)
        ax.errorbar(x, coherence, xerr=_bar(x_ci), yerr=_bar(coherence_ci), marker=MARKERS[i % len(MARKERS)],
                    color=f"C{i % 10}", linestyle="none", capsize=3, label=model)
    ax.set_xlabel(f"{_QUALITY_NAMES[family]} (lower is better)")
    ax.set_ylabel(f"{label(PRIMARY_METRIC)} (higher is better)")
    title = f"{board.title}: generative quality vs coherence"
    return [save_plot(fig, ax, f"{stem}-tradeoff", title)], None


def _coherence_by_k(board: Board, stem: str) -> tuple[list[Plot], str | None]:
    plot = _by_k(board, f"{stem}-coherence-by-k", f"{board.title}: coherence by number of given modalities",
                 PRIMARY_METRIC, "conditional coherence (higher is better)")
    return ([plot], None) if plot else ([], "no per-subset-size coherence, so no coherence-by-k plot")


def _quality_by_k(board: Board, stem: str) -> tuple[list[Plot], str | None]:
    plots = [
        plot for family in QUALITY_FAMILIES
        if (plot := _by_k(board, f"{stem}-{family}-by-k", f"{board.title}: {_QUALITY_NAMES[family]} by number of given modalities",
                          family, f"{_QUALITY_NAMES[family]} (lower is better)"))
    ]
    return plots, None if plots else "no per-subset-size FID or feature distance, so no quality-by-k plot"


def _by_k(board: Board, name: str, title: str, family: str, ylabel: str) -> Plot | None:
    """Lines of `<family>/k=<k>` against k, one per model, with 95% intervals; None without such metrics."""
    columns = sorted((subset_size(m), m) for m in board.metrics if subset_size(m) is not None and family_of(m).prefix == family)
    if not columns:
        return None
    fig, ax = new_figure()
    for i, model in enumerate(board.models):
        points = [(k, board.mean.at[model, m], board.ci95.at[model, m]) for k, m in columns if not math.isnan(board.mean.at[model, m])]
        if points:
            ks, means, cis = zip(*points)
            ax.errorbar(ks, means, yerr=[_bar(c) for c in cis], marker=MARKERS[i % len(MARKERS)],
                        color=f"C{i % 10}", capsize=3, label=model)
    ax.set_xticks([k for k, _ in columns])
    ax.set_xlabel("number of given modalities k")
    ax.set_ylabel(ylabel)
    return save_plot(fig, ax, name, title)


def _bar(ci: float) -> float:
    return 0.0 if math.isnan(ci) else ci


def new_figure():
    fig = Figure(figsize=(6.4, 4.0))
    return fig, fig.add_subplot()


def save_plot(fig: Figure, ax, name: str, title: str) -> Plot:
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    svg, png = io.BytesIO(), io.BytesIO()
    fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    fig.savefig(png, format="png", bbox_inches="tight", dpi=120, metadata={"Software": None})
    return Plot(name, title, svg.getvalue(), png.getvalue())
