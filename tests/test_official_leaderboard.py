"""The official leaderboard/ folder: its rendered table, page and plots are exactly what its records
give today, the CI reference's gate records cover every baseline with 3 seeds, and the reference
passes on them. (Which PolyMNIST records the board holds is what time allowed; leaderboard/README.md
shows them.)

A failure here means the committed artefacts are stale: regenerate them with
`bash leaderboard/make.sh` (it reruns only the missing records, then renders).
"""
from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

from click.testing import CliRunner

from mmbench.cli.leaderboard import leaderboard
from mmbench.cli.regress import regress
from mmbench.leaderboard.publish import build, render_site
from mmbench.results.store import load_results

OFFICIAL = Path(__file__).resolve().parents[1] / "leaderboard"
RECORDS = OFFICIAL / "records"
GATE = OFFICIAL / "gate"
BASELINES = {ep.name for ep in entry_points(group="mmbench.models") if ep.value.startswith("mmbench_baselines.")}


def test_gate_records_cover_every_baseline_with_three_seeds():
    records, problems = load_results(GATE)
    assert problems == []
    seeds = {(r.record["model"], r.record["seed"]) for r in records if r.record["dataset"] == "synthetic"}
    assert len(BASELINES) >= 5
    assert {(m, s) for m in BASELINES for s in (0, 1, 2)} <= seeds


def test_markdown_table_is_the_committed_one_byte_for_byte():
    records, problems = load_results(RECORDS)
    assert problems == [] and records
    shown = CliRunner().invoke(leaderboard, ["--results", str(RECORDS), "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert all(f"| {r.record['model']} " in shown.output for r in records)
    assert shown.output in (OFFICIAL / "README.md").read_text()


def test_rendered_page_and_plots_are_the_committed_ones(tmp_path):
    """Text artefacts regenerate byte for byte; plots are compared by what survives a matplotlib
    upgrade: the same files, PNGs of the same size, SVGs naming the same models and labels."""
    import xml.etree.ElementTree as ET

    from PIL import Image

    readme = (OFFICIAL / "README.md").read_text()
    command = re.search(r"Generated from the result records by `([^`]+)`", readme).group(1)
    written = render_site(build(RECORDS, published=OFFICIAL / "published.json"), tmp_path, command)
    assert {p.relative_to(tmp_path).as_posix() for p in written} >= {"README.md", "index.html"}
    committed_plots = {p.name for p in (OFFICIAL / "plots").iterdir()}
    assert committed_plots == {p.name for p in written if p.parent.name == "plots"}

    def svg_text(path):  # glyphs are paths; matplotlib names each text in a comment beside it
        parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
        root = ET.parse(path, parser).getroot()
        return sorted(e.text.strip() for e in root.iter() if e.tag is ET.Comment and e.text.strip())

    for path in written:
        committed = OFFICIAL / path.relative_to(tmp_path)
        if path.suffix == ".png":
            assert Image.open(path).size == Image.open(committed).size, path.name
        elif path.suffix == ".svg":
            assert svg_text(path) == svg_text(committed), path.name
        else:
            assert path.read_bytes() == committed.read_bytes(), path.name


def test_ci_reference_passes_on_the_gate_records_and_covers_every_baseline():
    checked = CliRunner().invoke(regress, ["--reference", str(OFFICIAL / "reference-quick.json"), "--results", str(GATE)])
    assert checked.exit_code == 0, checked.output
    table = checked.output.split("\n\n")[0].splitlines()[2:]  # below the header and its rule
    assert {line.split()[0] for line in table} == BASELINES


def test_every_band_of_the_ci_reference_lies_clear_of_what_a_model_that_learns_nothing_scores():
    """Probe bands above chance (0.1 on the synthetic set's 10 classes) by a wide margin."""
    import json

    entries = json.loads((OFFICIAL / "reference-quick.json").read_text())["entries"]
    probes = [spec for e in entries for name, spec in e["metrics"].items() if name.startswith("latent_probe")]
    assert probes and all(spec["value"] - spec["abs_tol"] >= 0.3 for spec in probes)


def test_committed_reproduction_report_is_what_its_runs_give(tmp_path):
    """leaderboard/reproduce-cpu/REPORT.md regenerates word for word from the runs beside it."""
    import shutil

    from mmbench.cli import cli

    committed = OFFICIAL / "reproduce-cpu"
    copy = tmp_path / "reproduce-cpu"
    shutil.copytree(committed, copy, symlinks=False, ignore=shutil.ignore_patterns("REPORT.md", "figures", "checkpoint.pt"))
    outcome = CliRunner().invoke(cli, ["reproduce", "limitations", "--tier", "cpu", "--results", str(copy), "--report-only"])
    assert outcome.exit_code == 0, outcome.output
    assert (copy / "REPORT.md").read_text() == (committed / "REPORT.md").read_text()
    figures = lambda folder: sorted(p.name for p in (folder / "figures").glob("*"))
    assert figures(copy) == figures(committed)
