"""Hostile but honest inputs that once got through: each ends in a one-line error or a skipped
record with a warning, never a traceback, never a silently overwritten or lost result."""
from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from click.testing import CliRunner
from record_factory import make_record, write

from mmbench.files import atomic_write_json

from mmbench.training.checkpoint import load_checkpoint, save_checkpoint
from mmbench.cli.leaderboard import leaderboard
from mmbench.cli.regress import regress
from mmbench.errors import MMBenchError, PluginError
from mmbench.experiments.runner import exclusive
from mmbench.results.store import load_results


def _hostile(results, name: str, text: str) -> None:
    path = results / name / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)


@pytest.mark.parametrize("name, text, reason", [
    ("nested", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("huge-seed", json.dumps(make_record(seed=10**20)), "2^63 - 1"),
    ("surrogate", json.dumps(make_record(model="mvae\udc80")), "not valid UTF-8"),
])
def test_a_hostile_record_is_skipped_with_a_warning_by_leaderboard_and_regress(tmp_path, name, text, reason):
    results = tmp_path / "results"
    write(results, make_record("mvae", 0, coherence=0.6))
    _hostile(results, name, text)
    board = CliRunner().invoke(leaderboard, ["--results", str(results), "--format", "markdown"])
    assert board.exit_code == 0 and board.exception is None, board.output
    assert reason in board.output and "| mvae" in board.output
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"schema": 1, "produced_by": "test", "notes": "", "entries": [
        {"model": "mvae", "dataset": "polymnist", "tier": "quick", "seed": 0,
         "metrics": {"coherence/conditional": {"value": 0.6, "abs_tol": 0.1}}}]}))
    gate = CliRunner().invoke(regress, ["--reference", str(reference), "--results", str(results)])
    assert gate.exit_code == 0 and gate.exception is None, gate.output
    strict = CliRunner().invoke(regress, ["--reference", str(reference), "--results", str(results), "--strict"])
    assert isinstance(strict.exception, MMBenchError) and "--strict" in str(strict.exception)


def test_a_record_edited_in_place_with_the_same_size_and_mtime_is_reread(tmp_path):
    path = write(tmp_path, make_record("mvae", 0, coherence=0.6))
    load_results(tmp_path)
    before = os.stat(path)
    text = path.read_text()
    edited = text.replace('"coherence/unconditional": 0.3', '"coherence/unconditional": 0.2')
    assert edited != text and len(edited) == len(text)
    path.write_text(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    [record], _ = load_results(tmp_path)
    assert record.record["metrics"]["coherence/unconditional"] == 0.2


def test_a_checkpoint_with_one_flipped_weight_is_refused_by_every_loader(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(4)}, "epoch": 1})
    assert load_checkpoint(path)["epoch"] == 1
    state = torch.load(path, weights_only=True)
    state["model"]["w"][2] = 2.0
    torch.save(state, path)
    with pytest.raises(MMBenchError, match="checksum mismatch"):
        load_checkpoint(path)


def test_files_are_written_0644_even_over_a_0600_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("{}")
    path.chmod(0o600)
    atomic_write_json(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_writing_where_a_directory_is_in_the_way_is_one_line(tmp_path):
    (tmp_path / "result.json").mkdir()
    with pytest.raises(MMBenchError, match="directory is in the way"):
        atomic_write_json(tmp_path / "result.json", {})


def test_a_second_writer_of_one_run_directory_is_refused(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from mmbench.experiments.runner import exclusive\n"
        f"with exclusive({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MMBenchError, match="another process"):
            with exclusive(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with exclusive(tmp_path):  # free again once the holder is gone
        pass


def test_an_objective_of_the_wrong_shape_is_refused_before_it_is_trained(image_spec, image_batch):
    from mmbench import create_model

    torch.manual_seed(0)
    model = create_model("mopoe", image_spec, latent_dim=4)
    model.objective = lambda xs: torch.zeros(len(xs[0]), 2, requires_grad=True)
    with pytest.raises(PluginError, match=r"shape \(6, 2\)"):
        model.loss(image_batch)


def test_markdown_and_latex_output_keep_record_text_inert(tmp_path):
    from mmbench.results.aggregate import build_boards
    from mmbench.leaderboard.publish import Leaderboard, readme
    from mmbench.results.store import load_results as load
    from mmbench.leaderboard.tables import format_boards

    write(tmp_path, make_record("mvae", 0, dataset="poly\n\\immediate\\write18{rm -rf x}",
                                metrics={"<script>alert(1)</script>": 1.0}))
    records, _ = load(tmp_path)
    boards = build_boards(records)
    markdown = format_boards(boards, "markdown") + readme(Leaderboard(boards, [], ["<img src=x onerror=alert(1)>"], []), "cmd")
    assert "<script>" not in markdown and "<img" not in markdown
    latex = format_boards(boards, "latex")
    assert not any(line.lstrip().startswith("\\immediate") for line in latex.splitlines())


def _fake_distribution(site, name: str, entry_points: str, module: str | None = None, code: str = "") -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mmbench.models]\n{entry_points}\n")
    if module:
        (site / f"{module}.py").write_text(code)


def test_plugins_that_exit_or_clash_are_reported_not_obeyed(tmp_path, monkeypatch):
    from mmbench.api.registry import Registry

    _fake_distribution(tmp_path, "exiting_plugin", "exiting = exiting_plugin:factory", "exiting_plugin",
                       "import sys\nsys.exit(7)\n")
    _fake_distribution(tmp_path, "plugin_a", "twin = plugin_a:factory", "plugin_a", "def factory(spec): pass\n")
    _fake_distribution(tmp_path, "plugin_b", "twin = plugin_b:factory", "plugin_b", "def factory(spec): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("model", "mmbench.models")
    names = registry.names()  # must not exit
    assert "exiting" not in names and "SystemExit" in registry.broken["exiting"]
    assert "twin" not in names and "plugin_a" in registry.broken["twin"] and "plugin_b" in registry.broken["twin"]
    with pytest.raises(PluginError, match="declared by two packages"):
        registry.get("twin")


def test_truncated_side_files_are_one_line_errors(tmp_path):
    """A truncated config.json on --resume and a truncated reference file name the file."""
    from mmbench.results.regress import load_reference
    from mmbench.experiments.runner import CONFIG_FILE, RunRequest, plan

    out = tmp_path / "run"
    out.mkdir()
    (out / CONFIG_FILE).write_text('{"model": {"latent_dim": 6')
    with pytest.raises(MMBenchError, match="run config is not valid JSON"):
        plan(RunRequest("mopoe", "polymnist", out=out, resume=True))
    (tmp_path / "ref.json").write_text('{"schema": 1, "entr')
    with pytest.raises(MMBenchError, match="reference file is not valid JSON"):
        load_reference(tmp_path / "ref.json")
