"""The official leaderboard/ folder: its records cover every baseline on the offline datasets, and
its rendered table, page, plots and CI reference are exactly what those records give today.

A failure here means the committed artefacts are stale: regenerate them with
`bash leaderboard/make.sh` (it reruns only the missing records, then renders).
"""
from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

from click.testing import CliRunner

from mmbench.cli_leaderboard import leaderboard, regress
from mmbench.publish import build, render_site
from mmbench.store import load_results

OFFICIAL = Path(__file__).resolve().parents[1] / "leaderboard"
RECORDS = OFFICIAL / "records"
OFFLINE_DATASETS = {"polymnist", "translated_polymnist"}
BASELINES = {ep.name for ep in entry_points(group="mmbench.models") if ep.value.startswith("baselines.")}


def test_records_cover_every_baseline_on_the_offline_datasets():
    records, problems = load_results(RECORDS)
    assert problems == []
    covered = {(r.record["model"], r.record["dataset"]) for r in records if r.record["tier"] == "quick"}
    assert len(BASELINES) >= 5
    assert {(m, d) for m in BASELINES for d in OFFLINE_DATASETS} <= covered


def test_markdown_table_is_the_committed_one_byte_for_byte():
    shown = CliRunner().invoke(leaderboard, ["--results", str(RECORDS), "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("|") > 50 and all(f"| {m} " in shown.output for m in BASELINES)
    assert shown.output in (OFFICIAL / "README.md").read_text()


def test_rendered_page_and_plots_are_the_committed_ones(tmp_path):
    readme = (OFFICIAL / "README.md").read_text()
    command = re.search(r"Generated from the result records by `([^`]+)`", readme).group(1)
    written = render_site(build(RECORDS), tmp_path, command)
    assert {p.relative_to(tmp_path).as_posix() for p in written} >= {"README.md", "index.html"}
    for path in written:
        assert path.read_bytes() == (OFFICIAL / path.relative_to(tmp_path)).read_bytes(), path.name
    committed_plots = {p.name for p in (OFFICIAL / "plots").iterdir()}
    assert committed_plots == {p.name for p in written if p.parent.name == "plots"}


def test_ci_reference_passes_on_the_committed_records_and_covers_every_baseline():
    checked = CliRunner().invoke(regress, ["--reference", str(OFFICIAL / "reference-quick.json"), "--results", str(RECORDS)])
    assert checked.exit_code == 0, checked.output
    table = checked.output.split("\n\n")[0].splitlines()[2:]  # below the header and its rule
    assert {line.split()[0] for line in table} == BASELINES
