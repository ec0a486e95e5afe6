"""The leaderboard as one self-contained HTML file: tables, plots, provenance; no external assets.

Every value that comes from a record (model names included) goes through `html.escape`, and the
inline script only reorders existing rows by their `data-value` attributes (no innerHTML), so a
record cannot inject markup or script. Plots are embedded as base64 SVG `<img>`s, which cannot run
script either. Columns sort on a header click (best first, again to reverse); `#sort=<column>`
in the URL sorts on load, e.g. `index.html#sort=model`.
"""
from __future__ import annotations

import base64
import math
from urllib.parse import quote
from html import escape

from mmbench.results.aggregate import Board
from mmbench.metrics.families import higher_is_better
from mmbench.leaderboard.plots import Plot
from mmbench.leaderboard.published import published_html
from mmbench.results.store import StoredRecord
from mmbench.leaderboard.tables import (
    RANKING_NOTE,
    cell,
    chance_text,
    headline,
    legend,
    recipes_text,
    sentence,
    sort_value,
    tables,
    versions_text,
)

TITLE = "mmbench leaderboard"
_MODEL_CLASS = ' class="model"'

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 90rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; vertical-align: top; }
th { cursor: pointer; user-select: none; background: #f4f4f4; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.model, th.model, td.runs { text-align: left; }
details ul { margin: .3rem 0; padding-left: 1.2rem; text-align: left; white-space: normal; min-width: 28rem; }
figure { display: inline-block; margin: 1rem; }
figure img { max-width: 44rem; }
figure.sample img { width: 22rem; image-rendering: pixelated; }
.meta { color: #555; }
.scroll { overflow-x: auto; }
"""

_JS = """
(function () {
  function keyOf(td, numeric) {
    var v = td.getAttribute('data-value');
    if (!numeric) return v;
    var x = parseFloat(v);
    return isNaN(x) ? null : x;
  }
  function sortTable(table, th, descending) {
    var numeric = th.getAttribute('data-type') === 'num';
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = keyOf(a.cells[index], numeric), y = keyOf(b.cells[index], numeric);
      if (x === null || y === null) return (x === null) - (y === null);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
  }
  function sortBy(table, th) {
    var current = th.getAttribute('aria-sort');
    var descending = current ? current === 'ascending' : th.getAttribute('data-better') === 'higher';
    sortTable(table, th, descending);
  }
  document.querySelectorAll('table.board').forEach(function (table) {
    table.querySelectorAll('th[data-key]').forEach(function (th) {
      th.addEventListener('click', function () { sortBy(table, th); });
    });
  });
  var match = /^#sort=(.+)$/.exec(window.location.hash);
  if (match) {
    var key = decodeURIComponent(match[1]);
    document.querySelectorAll('table.board').forEach(function (table) {
      table.querySelectorAll('th[data-key]').forEach(function (th) {
        if (th.getAttribute('data-key') === key) sortBy(table, th);
      });
    });
  }
  document.documentElement.setAttribute('data-sortable', 'ready');
})();
"""


def render_page(boards: list[Board], plots: list[Plot], notes: list[str], samples: list | None = None,
                published: list | None = None) -> str:
    """The whole page as a string; `samples` (publish.SampleGrid, files next to the page under
    samples/) add each model's generated grids."""
    sections = "\n".join(_board_section(board) for board in boards) or "<p>No result records.</p>"
    figures = "\n".join(
        f'<figure><img alt="{escape(p.title)}" src="data:image/svg+xml;base64,{base64.b64encode(p.svg).decode()}">'
        f"<figcaption>{escape(p.title)}</figcaption></figure>"
        for p in plots
    )
    note_list = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{TITLE}</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>{TITLE}</h1>\n<p class=\"meta\">{escape(RANKING_NOTE)} "
        f"Click a column header to sort; hover a row for provenance, or open its runs.</p>\n"
        f"{sections}\n"
        + (f"{published_html(published)}\n" if published else "")
        + (f"<h2>Plots</h2>\n{figures}\n" if figures else "")
        + (f"<h2>Samples</h2>\n{_samples(samples)}\n" if samples else "")
        + (f'<h2>Notes</h2>\n<ul class="meta">{note_list}</ul>\n' if note_list else "")
        + f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


def _samples(samples: list) -> str:
    """Each model's grids side by side, per board: rows are the inputs, then generated images."""
    return "\n".join(
        f'<figure class="sample"><img alt="{escape(g.board)}: {escape(g.model)}, {escape(g.caption)}" '
        f'src="samples/{escape(quote(g.name))}"><figcaption>{escape(g.board)}: {escape(g.model)}, {escape(g.caption)}</figcaption></figure>'
        for g in samples
    )


def _board_section(board: Board) -> str:
    """The headline table (with each model's runs), then every metric family a click away."""
    (_, keys, names), *rest = tables(board)
    details = "\n".join(
        f"<details><summary>{escape(title)}</summary>\n{_table(board, keys, names, runs=False)}\n</details>"
        for title, keys, names in rest
    )
    return (
        f"<section>\n<h2>{escape(board.title)}</h2>\n"
        f'<p class="meta">Versions: {escape(versions_text(board))}. {escape(" ".join(filter(None, [sentence(legend(headline(board))), recipes_text(board), chance_text(board)])))}</p>\n'
        f"{_table(board, keys, names, runs=True)}\n"
        f'<p class="meta">Every metric, one table per family:</p>\n{details}\n</section>'
    )


def _table(board: Board, keys: list[str], names: list[str], runs: bool) -> str:
    head = "".join(_header_cell(key, text) for key, text in zip(keys, names))
    body = "\n".join(_row(board, model, keys, runs) for model in board.models)
    runs_head = '<th class="runs">runs</th>' if runs else ""
    return (f'<div class="scroll"><table class="board">\n<thead><tr>{head}{runs_head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>")


def _header_cell(key: str, text: str) -> str:
    better = {"rank": "lower", "model": "lower"}.get(key) or {True: "higher", False: "lower", None: "none"}[higher_is_better(key)]
    kind = "text" if key == "model" else "num"
    return (f'<th{_MODEL_CLASS if key == "model" else ""} data-key="{escape(key)}" data-type="{kind}" data-better="{better}" '
            f'title="{escape(key)}">{escape(text)}</th>')


def _row(board: Board, model: str, keys: list[str], runs_column: bool = True) -> str:
    cells = "".join(
        f'<td{_MODEL_CLASS if key == "model" else ""} data-value="{escape(_value_attr(board, model, key))}">'
        f"{escape(cell(board, model, key))}</td>"
        for key in keys
    )
    runs = board.records[model]
    items = "".join(f"<li>{escape(_provenance(s))}</li>" for s in runs)
    details = f'<td class="runs"><details><summary>{len(runs)} run{"s" * (len(runs) != 1)}</summary><ul>{items}</ul></details></td>' if runs_column else ""
    tooltip = "\n".join(_provenance(s) for s in runs)
    return f'<tr title="{escape(tooltip)}">{cells}{details}</tr>'


def _value_attr(board: Board, model: str, key: str) -> str:
    value = sort_value(board, model, key)
    if isinstance(value, str):
        return value
    return "" if math.isnan(value) or math.isinf(value) else repr(value)


def _provenance(item: StoredRecord) -> str:
    """One line per run: where it came from and what made it (and within-run standard errors)."""
    r, p = item.record, item.record["provenance"]
    commit = (p.get("git_commit") or "unknown")[:12] + (" (dirty)" if p.get("git_dirty") else "")
    parts = [f"seed {r['seed']}", item.path, f"mmbench {p.get('mmbench_version', '?')}", f"commit {commit}",
             f"torch {p.get('torch_version', '?')}", f"{p.get('device_type', '?')}: {p.get('device', '?')}",
             f"dataset {str(p.get('dataset_checksum', '?'))[:12]}", f"created {p.get('created', '?')}"]
    stderr = r.get("metrics_stderr") or {}
    if stderr:
        parts.append("stderr " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(stderr.items())))
    return "; ".join(parts)
