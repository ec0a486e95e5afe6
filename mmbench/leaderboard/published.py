"""Published numbers, quoted from the literature beside a board: marked as quoted, never ranked.

A researcher reads mmbench's measured numbers next to the papers' own. Those are not records (no
run made them here, different judges and data may stand behind them), so they live in a small
JSON file (`leaderboard/published.json`), each entry with its source, and render as their own
table under the boards, titled as quoted.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from tabulate import tabulate

from mmbench.errors import MMBenchError
from mmbench.files import read_json
from mmbench.metrics.families import column_order, label

NOTE = "Quoted from the papers, not measured by mmbench (their data, judges and recipes); never ranked."


@dataclass(frozen=True)
class Published:
    dataset: str
    model: str
    metrics: dict[str, float]
    source: str


def load_published(path: str | Path) -> list[Published]:
    """Entries of a published-numbers file: {"entries": [{dataset, model, metrics, source}]}."""
    raw = read_json(path, "published-numbers file")
    entries = raw.get("entries") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise MMBenchError(f"{path}: expected {{\"entries\": [...]}}")
    out = []
    for i, e in enumerate(entries):
        ok = (isinstance(e, dict) and all(isinstance(e.get(k), str) and e[k] for k in ("dataset", "model", "source"))
              and isinstance(e.get("metrics"), dict) and e["metrics"]
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in e["metrics"].values()))
        if not ok:
            raise MMBenchError(f"{path}: entry {i} needs dataset, model, source (strings) and metrics (numbers)")
        out.append(Published(e["dataset"], e["model"], {k: float(v) for k, v in e["metrics"].items()}, e["source"]))
    return out


def _table(entries: list[Published]) -> tuple[list[str], list[str], list[list[str]]]:
    """(metric keys, headers, rows) of one dataset's quoted numbers."""
    metrics = column_order({m for e in entries for m in e.metrics})
    rows = [[e.model, *(f"{e.metrics[m]:g}" if m in e.metrics else "" for m in metrics), e.source] for e in entries]  # as quoted
    return metrics, ["model", *map(label, metrics), "source"], rows


def published_markdown(entries: list[Published], escape_text) -> str:
    parts = [f"## Published numbers (quoted, not measured)\n\n{NOTE}\n"]
    for dataset in sorted({e.dataset for e in entries}):
        _, headers, rows = _table([e for e in entries if e.dataset == dataset])
        table = tabulate([[escape_text(c) for c in r] for r in rows], [escape_text(h) for h in headers],
                         tablefmt="github", disable_numparse=True)
        parts.append(f"### {escape_text(dataset)}\n\n{table}\n")
    return "\n".join(parts)


def published_html(entries: list[Published]) -> str:
    parts = [f'<h2>Published numbers (quoted, not measured)</h2>\n<p class="meta">{escape(NOTE)}</p>']
    for dataset in sorted({e.dataset for e in entries}):
        _, headers, rows = _table([e for e in entries if e.dataset == dataset])
        head = "".join(f"<th>{escape(h)}</th>" for h in headers)
        body = "\n".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        parts.append(f'<h3>{escape(dataset)}</h3>\n<div class="scroll"><table class="quoted">\n<thead><tr>{head}</tr></thead>\n'
                     f"<tbody>\n{body}\n</tbody>\n</table></div>")
    return "\n".join(parts)
