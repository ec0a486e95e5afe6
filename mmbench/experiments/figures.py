"""Figures of `mmbench reproduce limitations`, one per claim, for REPORT.md.

They are drawn like the leaderboard's plots (mmbench/leaderboard/plots.py: same style, same deterministic
SVG and PNG bytes), so rerunning the command on the same records rewrites identical files. A
figure lacking any of its runs is skipped with a note rather than drawn from part of its data:
a trend with a hole in it would read as a result.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

from mmbench.experiments.reproduce import (
    BETAS,
    COHERENCE,
    DELTA,
    DELTA_CLOSED,
    GAP_MODELS,
    MODALITIES,
    QUALITY,
    QUALITY_OF_MODALITY,
    SUBSAMPLING,
    SYNTHETIC_MODALITIES,
    TRANSLATED_MODELS,
    WITHOUT_SUBSAMPLING,
    beta_sets,
    gap_label,
    modality_sets,
    run_name,
    synthetic_sets,
    unimodal_quality,
    value,
)
from mmbench.files import atomic_write_bytes
from mmbench.leaderboard.plots import MARKERS, STYLE, Plot, new_figure, save_plot

FOLDER = "figures"
"""Next to REPORT.md, which links into it with relative paths."""
_GAP = f"gap in {QUALITY} to the unimodal VAE\n(> 0: worse samples)"


class _Values:
    """Scores of planned runs, noting the runs that had none, so a figure knows it is incomplete."""

    def __init__(self, records: dict[str, dict | None], tier: str):
        self.records, self.tier = records, tier
        self.missing: list[str] = []

    def __call__(self, metric: str, model: str, dataset: str = "polymnist", sets: tuple[str, ...] = ()) -> float:
        score = value(self.records, metric, model, dataset, sets)
        name = run_name(model, dataset, sets)
        if math.isnan(score) and name not in self.missing:
            self.missing.append(name)
        return score

    def note(self, figure: str) -> str:
        return f"no {figure} figure: runs missing or without their score ({', '.join(self.missing)})"


def draw(records: dict[str, dict | None], tier: str) -> list[Plot | str]:
    """One figure per claim, in claim order; a note instead of each figure whose runs are not all there."""
    with matplotlib.rc_context(STYLE):
        return [make(_Values(records, tier)) for make in (_quality_gap, _gap_by_modalities, _tradeoff, _translated, _synthetic,
                                                     _without_subsampling)]


def write(drawn: list[Plot | str], results: Path) -> list[str]:
    """Write the figures as RESULTS/figures/NAME.svg and .png, removing figures no longer drawn (a
    claim whose runs went stale); one REPORT.md line per claim (its figure linked, or the note)."""
    drawn_files = {f"{item.name}.{suffix}" for item in drawn if not isinstance(item, str) for suffix in ("svg", "png")}
    if (results / FOLDER).is_dir():
        for old in sorted((results / FOLDER).iterdir()):
            if old.name not in drawn_files:
                old.unlink()
    lines = []
    for item in drawn:
        if isinstance(item, str):
            lines.append(f"*{item}*")
            continue
        for suffix, data in (("svg", item.svg), ("png", item.png)):
            atomic_write_bytes(results / FOLDER / f"{item.name}.{suffix}", data)
        lines.append(f"![{item.title}]({FOLDER}/{item.name}.png) ([SVG]({FOLDER}/{item.name}.svg))")
    return lines


def _quality_gap(get: _Values) -> Plot | str:
    unimodal = get(QUALITY, "unimodal")
    gaps = {gap_label(model, sets): get(QUALITY, model, sets=sets) - unimodal for model, sets in GAP_MODELS}
    if get.missing:
        return get.note("quality-gap")
    fig, ax = new_figure()
    # "mvae (joint only)" on two lines, so neighbouring bar labels do not run together
    ax.bar([label.replace(" (", "\n(") for label in gaps], list(gaps.values()), color="C0", label="gap to the unimodal VAE")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel(_GAP)
    return save_plot(fig, ax, "quality-gap", "Claim 1: generative quality gap to the unimodal VAE")


def _gap_by_modalities(get: _Values, models: tuple[str, ...] = SUBSAMPLING, name: str = "gap-by-modalities",
                       title: str = "Claim 2: quality gap by number of modalities") -> Plot | str:
    for k in range(max(MODALITIES)):  # notes the unimodal run if it lacks a per-modality score
        get(QUALITY_OF_MODALITY.format(k), "unimodal")
    series = {model: [get(QUALITY, model, sets=modality_sets(m)) - unimodal_quality(get.records, m) for m in MODALITIES]
              for model in models}
    if get.missing:
        return get.note(name)
    fig, ax = new_figure()
    for i, (model, gaps) in enumerate(series.items()):
        ax.plot(MODALITIES, gaps, marker=MARKERS[i], color=f"C{i}", label=model)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(MODALITIES)
    ax.set_xlabel("number of modalities M")
    ax.set_ylabel(_GAP)
    return save_plot(fig, ax, name, title)


def _without_subsampling(get: _Values) -> Plot | str:
    return _gap_by_modalities(get, (*SUBSAMPLING, *WITHOUT_SUBSAMPLING), "gap-without-subsampling",
                              "Claim 6: quality gap by M, with and without sub-sampling")


def _tradeoff(get: _Values) -> Plot | str:
    points = {model: [(get(QUALITY, model, sets=beta_sets(model, b, get.tier)), get(COHERENCE, model, sets=beta_sets(model, b, get.tier)))
                      for b in BETAS] for model in SUBSAMPLING}
    if get.missing:
        return get.note("tradeoff")
    fig, ax = new_figure()
    for i, (model, pairs) in enumerate(points.items()):
        quality, coherence = zip(*pairs)
        ax.plot(quality, coherence, marker=MARKERS[i], color=f"C{i}", label=model)
        for beta, xy in zip(BETAS, pairs):
            ax.annotate(f"β={beta:g}", xy, textcoords="offset points", xytext=(4, 4), color=f"C{i}")
    ax.set_xlabel(f"{QUALITY} (lower is better)")
    ax.set_ylabel(f"{COHERENCE} (higher is better)")
    return save_plot(fig, ax, "tradeoff", "Claim 3: quality vs coherence over the beta sweep")


def _translated(get: _Values) -> Plot | str:
    bars = {name: [get(COHERENCE, model, dataset) for model in TRANSLATED_MODELS]
            for name, dataset in (("PolyMNIST", "polymnist"), ("Translated-PolyMNIST", "translated_polymnist"))}
    if get.missing:
        return get.note("translated-coherence")
    fig, ax = new_figure()
    width = 0.38
    for i, (name, coherence) in enumerate(bars.items()):
        ax.bar([x + (i - 0.5) * width for x in range(len(TRANSLATED_MODELS))], coherence, width, color=f"C{i}", label=name)
    ax.set_xticks(range(len(TRANSLATED_MODELS)), TRANSLATED_MODELS)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel(f"{COHERENCE} (higher is better)")
    return save_plot(fig, ax, "translated-coherence", "Claim 4: coherence on PolyMNIST vs Translated-PolyMNIST")


def _synthetic(get: _Values) -> Plot | str:
    series = {model: ([get(DELTA_CLOSED, model, "synthetic", synthetic_sets(m)) for m in SYNTHETIC_MODALITIES],
                      [get(DELTA, model, "synthetic", synthetic_sets(m)) for m in SYNTHETIC_MODALITIES]) for model in SUBSAMPLING}
    if get.missing:
        return get.note("synthetic-discrepancy")
    fig, ax = new_figure()
    for i, (model, (closed, estimate)) in enumerate(series.items()):
        ax.plot(SYNTHETIC_MODALITIES, closed, linestyle="--", color=f"C{i}", label=f"{model}: closed form")
        ax.plot(SYNTHETIC_MODALITIES, estimate, marker=MARKERS[i], color=f"C{i}", label=f"{model}: estimate")
    ax.set_xticks(SYNTHETIC_MODALITIES)
    ax.set_xlabel("number of modalities M")
    ax.set_ylabel("generative discrepancy Δ (nats)")
    return save_plot(fig, ax, "synthetic-discrepancy", "Claim 5: Δ on the synthetic set, estimated vs closed form")
