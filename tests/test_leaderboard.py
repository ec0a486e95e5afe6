"""Leaderboard: the results store and its index, seed aggregation, text tables, plots, artefacts."""
from __future__ import annotations

import json
import multiprocessing
import os

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from record_factory import make_record, write
from scipy import stats

from mmbench.results.aggregate import build_boards
from mmbench.cli.leaderboard import leaderboard
from mmbench.errors import MMBenchError
from mmbench.leaderboard.plots import board_plots
from mmbench.results.store import INDEX_FILE, ResultStore, load_results
from mmbench.leaderboard.tables import cell, format_boards


def _boards(results, **kwargs):
    records, problems = load_results(results, **kwargs)
    return build_boards(records), problems


# --- aggregation ----------------------------------------------------------------------------

def test_mean_and_t_interval_match_scipy(tmp_path):
    rng = np.random.default_rng(0)
    values = {"mvae": rng.uniform(0.3, 0.6, 5), "mmvae": rng.uniform(0.5, 0.8, 3), "mopoe": rng.uniform(0.6, 0.9, 2)}
    for model, scores in values.items():
        for seed, score in enumerate(scores):
            write(tmp_path, make_record(model, seed, metrics={"coherence/conditional": float(score)}))
    [board], problems = _boards(tmp_path)
    assert problems == []
    for model, scores in values.items():
        mean = scores.mean()
        lo, hi = stats.t.interval(0.95, len(scores) - 1, loc=mean, scale=stats.sem(scores))
        assert board.mean.at[model, "coherence/conditional"] == pytest.approx(mean, rel=1e-12)
        assert board.ci95.at[model, "coherence/conditional"] == pytest.approx((hi - lo) / 2, rel=1e-10)
        assert cell(board, model, "coherence/conditional") == f"{mean:.3f} ± {(hi - lo) / 2:.3f}"
        assert board.seeds[model] == len(scores)
    assert board.models == sorted(values, key=lambda m: -values[m].mean())


def test_one_seed_has_no_interval_and_missing_metrics_are_blank(tmp_path):
    write(tmp_path, make_record("mvae", 0, coherence=0.6, metrics={"fid/m0": 42.0}))
    write(tmp_path, make_record("mmvae", 0, coherence=0.7))
    write(tmp_path, make_record("mmvae", 1, coherence=0.8))
    [board], _ = _boards(tmp_path)
    assert cell(board, "mvae", "coherence/unconditional") == "0.300"
    assert cell(board, "mvae", "fid/m0") == "42.00"
    assert cell(board, "mmvae", "fid/m0") == ""
    assert "±" in cell(board, "mmvae", "coherence/unconditional")


@pytest.mark.parametrize("fmt", ["markdown", "terminal", "latex"])
def test_a_board_where_every_model_is_at_chance_says_its_ranking_is_noise(tmp_path, fmt):
    """PolyMNIST's card states 10 labels: chance coherence is 0.1, and a model counts as having
    learnt the label above 0.15. One model above it silences the warning; a dataset whose card
    states no labels never gets it."""
    warning = "Every model with a coherence score is at chance (at most 0.15, chance 0.1)"
    for model, score in (("mvae", 0.11), ("mopoe", 0.15)):
        write(tmp_path / "chance", make_record(model, 0, metrics={"coherence/conditional": score}))
        write(tmp_path / "learnt", make_record(model, 0, metrics={"coherence/conditional": score}))
        write(tmp_path / "no_card", make_record(model, 0, dataset="no_card", metrics={"coherence/conditional": score}))
    write(tmp_path / "learnt", make_record("mmvae", 0, metrics={"coherence/conditional": 0.151}))
    text = {case: format_boards(_boards(tmp_path / case)[0], fmt) for case in ("chance", "learnt", "no_card")}
    assert warning in text["chance"]
    assert "at chance" not in text["learnt"] and "at chance" not in text["no_card"]


def test_ranking_puts_models_without_the_primary_metric_last(tmp_path):
    write(tmp_path, make_record("good", 0, coherence=0.9))
    write(tmp_path, make_record("bad", 0, coherence=0.2))
    headless = make_record("headless", 0)
    del headless["metrics"]["coherence/conditional"]
    write(tmp_path, headless)
    [board], _ = _boards(tmp_path)
    assert board.models == ["good", "bad", "headless"]
    assert [board.rank(m) for m in board.models] == [1, 2, None]


def test_different_metric_versions_are_never_pooled(tmp_path):
    write(tmp_path, make_record("mvae", 0, coherence=0.5))
    write(tmp_path, make_record("mvae", 1, coherence=0.9, metric_versions={"coherence/conditional": 2, "coherence/unconditional": 1}))
    boards, _ = _boards(tmp_path)
    assert len(boards) == 2
    assert sorted(int(b.seeds["mvae"]) for b in boards) == [1, 1]
    assert "coherence/conditional v2" in format_boards(boards, "markdown")


def test_a_model_without_some_metric_still_shares_the_board(tmp_path):
    """The unimodal VAE reports no quality gap; it must rank with the models that do."""
    write(tmp_path, make_record("unimodal", 0, coherence=0.3))
    write(tmp_path, make_record("mopoe", 0, coherence=0.6, metrics={"quality_gap/feature_distance/mean": 4.0},
                                metric_versions={"coherence/conditional": 1, "coherence/unconditional": 1, "quality_gap": 1}))
    [board], _ = _boards(tmp_path)
    assert board.models == ["mopoe", "unimodal"]
    assert board.versions["quality_gap"] == 1


def test_one_table_per_dataset_and_filters(tmp_path):
    write(tmp_path, make_record("mvae", 0, dataset="polymnist"))
    write(tmp_path, make_record("mvae", 0, dataset="translated_polymnist"))
    write(tmp_path, make_record("mvae", 0, dataset="polymnist", tier="full"))
    boards, _ = _boards(tmp_path)
    assert [b.title for b in boards] == ["polymnist / quick v1", "polymnist / full v1", "translated_polymnist / quick v1"]
    boards, _ = _boards(tmp_path, dataset="polymnist", tier="full")
    assert [b.title for b in boards] == ["polymnist / full v1"]


def test_duplicate_seed_keeps_the_newest_and_reports_the_other(tmp_path):
    old = make_record("mvae", 0, coherence=0.2)
    new = make_record("mvae", 0, coherence=0.6)
    new["provenance"]["created"] = "2026-01-01T00:00:00+00:00"
    write(tmp_path, old, "a-old")
    write(tmp_path, new, "b-new")
    [board], problems = _boards(tmp_path)
    assert board.seeds["mvae"] == 1 and board.mean.at["mvae", "coherence/unconditional"] == pytest.approx(0.3)
    assert [p.path for p in problems] == ["a-old/result.json"] and "duplicate" in problems[0].reason


def test_a_rerun_seed_that_adds_a_metric_is_counted_once(tmp_path):
    """Two records of one seed whose versions differ without clashing (the newer adds a metric)
    share a board; the newer stands for the seed, which is not counted twice."""
    old = make_record("mvae", 0, coherence=0.2)
    new = make_record("mvae", 0, coherence=0.6, metrics={"latent_probe/k=1": 0.5},
                      metric_versions={"coherence/conditional": 1, "coherence/unconditional": 1, "latent_probe": 2})
    new["provenance"]["created"] = "2026-01-01T00:00:00+00:00"
    write(tmp_path, old, "a-old")
    write(tmp_path, new, "b-new")
    [board], _ = _boards(tmp_path)
    assert board.seeds["mvae"] == 1 and board.mean.at["mvae", "coherence/unconditional"] == pytest.approx(0.3)


# --- text formats ---------------------------------------------------------------------------

GOLDEN_MARKDOWN = """\
Ranked by mean conditional coherence (coherence/conditional, higher is better); cells are the mean ± 95% t-interval over seeds (no interval with one seed).

## polymnist / quick v1

Versions: coherence/conditional v1, coherence/unconditional v1, networks v1, tier:quick v1. Higher is better: coh k=1, coh mean, coh uncond; lower is better: FID.

|   # | model          |       coh k=1 |      coh mean |    coh uncond |           FID |   train s |   seeds |
|-----|----------------|---------------|---------------|---------------|---------------|-----------|---------|
|   1 | mopoe          | 0.675 ± 0.124 | 0.712 ± 0.124 | 0.350 ± 0.062 | 31.00 ± 12.42 |        61 |       3 |
|   2 | mvae           |         0.475 |         0.512 |         0.250 |               |        60 |       1 |
|   3 | a\\|b &lt;i&gt; |         0.275 |         0.312 |         0.150 |               |        60 |       1 |

Every metric, one table per family:

### coh (coherence/conditional) — higher is better

|   # | model          |       coh k=1 |       coh k=2 |       coh k=3 |       coh k=4 |      coh mean |
|-----|----------------|---------------|---------------|---------------|---------------|---------------|
|   1 | mopoe          | 0.675 ± 0.124 | 0.700 ± 0.124 | 0.725 ± 0.124 | 0.750 ± 0.124 | 0.712 ± 0.124 |
|   2 | mvae           |         0.475 |         0.500 |         0.525 |         0.550 |         0.512 |
|   3 | a\\|b &lt;i&gt; |         0.275 |         0.300 |         0.325 |         0.350 |         0.312 |

### coh uncond (coherence/unconditional) — higher is better

|   # | model          |    coh uncond |
|-----|----------------|---------------|
|   1 | mopoe          | 0.350 ± 0.062 |
|   2 | mvae           |         0.250 |
|   3 | a\\|b &lt;i&gt; |         0.150 |

### FID (fid) — lower is better

|   # | model          |        FID m0 |           FID |
|-----|----------------|---------------|---------------|
|   1 | mopoe          | 31.00 ± 12.42 | 31.00 ± 12.42 |
|   2 | mvae           |               |               |
|   3 | a\\|b &lt;i&gt; |               |               |

### runs

|   # | model          |   train s |   params |   seeds |
|-----|----------------|-----------|----------|---------|
|   1 | mopoe          |        61 |  123,456 |       3 |
|   2 | mvae           |        60 |  123,456 |       1 |
|   3 | a\\|b &lt;i&gt; |        60 |  123,456 |       1 |
"""


def _golden_records(results):
    for seed in range(3):
        write(results, make_record("mopoe", seed, coherence=0.7 + 0.05 * (seed - 1), metrics={"fid/m0": 30.0 + 5 * (seed - 1) + 1}))
    write(results, make_record("mvae", 0, coherence=0.5))
    write(results, make_record("a|b <i>", 0, coherence=0.3), "odd-name")


def test_markdown_is_reproducible_byte_for_byte(tmp_path):
    _golden_records(tmp_path)
    first = format_boards(_boards(tmp_path)[0], "markdown")
    (tmp_path / INDEX_FILE).unlink()
    second = format_boards(_boards(tmp_path)[0], "markdown")
    assert first == second
    assert first == GOLDEN_MARKDOWN


def test_cli_formats(tmp_path):
    _golden_records(tmp_path)
    runner = CliRunner()
    latex = runner.invoke(leaderboard, ["--results", str(tmp_path), "--format", "latex"])
    assert latex.exit_code == 0, latex.output
    assert r"0.712 $\pm$ 0.124" in latex.output and r"a|b \ensuremath{<}i\ensuremath{>}" in latex.output
    csv = runner.invoke(leaderboard, ["--results", str(tmp_path), "--format", "csv", "--out", str(tmp_path / "b.csv")])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(tmp_path / "b.csv")
    row = frame[(frame.model == "mopoe") & (frame.metric == "fid/m0")].iloc[0]
    assert (row["n"], row["mean"], row["rank"]) == (3, pytest.approx(31.0), 1)
    terminal = runner.invoke(leaderboard, ["--results", str(tmp_path)])
    assert terminal.exit_code == 0 and "mopoe" in terminal.output


def test_bad_records_are_reported_not_fatal_unless_strict(tmp_path):
    write(tmp_path, make_record("mvae", 0))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text('{"model": ')
    bad = make_record("mmvae", 0, metrics={"coherence/conditional": 1.7})
    (tmp_path / "range").mkdir()
    (tmp_path / "range" / "result.json").write_text(json.dumps(bad))
    result = CliRunner().invoke(leaderboard, ["--results", str(tmp_path)])
    assert result.exit_code == 0
    assert "mvae" in result.stdout and "mmvae" not in result.stdout
    assert "broken/result.json: not valid JSON" in result.stderr
    assert "range/result.json: field 'metrics.coherence/conditional'" in result.stderr
    strict = CliRunner().invoke(leaderboard, ["--results", str(tmp_path), "--strict"])
    assert isinstance(strict.exception, MMBenchError) and "2 bad result record(s)" in str(strict.exception)


# --- store and index ------------------------------------------------------------------------

def test_index_follows_changes_deletions_and_survives_corruption(tmp_path):
    path = write(tmp_path, make_record("mvae", 0, coherence=0.5))
    with ResultStore(tmp_path) as store:
        store.refresh()
        assert [s.record["metrics"]["coherence/unconditional"] for s in store.records()] == [0.25]
        write(tmp_path, make_record("mvae", 0, coherence=0.8))
        store.refresh()
        assert [s.record["metrics"]["coherence/unconditional"] for s in store.records()] == [0.4]
        path.unlink()
        store.refresh()
        assert store.records() == []
    (tmp_path / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    write(tmp_path, make_record("mmvae", 0))
    records, _ = load_results(tmp_path)
    assert [s.record["model"] for s in records] == ["mmvae"]


def test_missing_results_directory_is_a_user_error(tmp_path):
    with pytest.raises(MMBenchError, match="does not exist"):
        load_results(tmp_path / "nope")


def _writer(results, worker: int, count: int) -> None:
    for i in range(count):
        write(results, make_record(f"model{worker}", i), f"w{worker}/r{i}")
        with ResultStore(results) as store:
            store.refresh()


def _refresher(results, rounds: int) -> None:
    for _ in range(rounds):
        with ResultStore(results) as store:
            store.refresh()


def test_concurrent_writers_and_indexers_lose_nothing(tmp_path):
    workers, count = 4, 6
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(tmp_path, w, count)) for w in range(workers)]
    procs += [ctx.Process(target=_refresher, args=(tmp_path, 10)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    with ResultStore(tmp_path) as store:  # no refresh: what the concurrent updates left in the index
        indexed = {(s.record["model"], s.record["seed"]) for s in store.records()}
    assert indexed == {(f"model{w}", i) for w in range(workers) for i in range(count)}


# --- plots and artefacts --------------------------------------------------------------------

def test_plots_are_made_where_the_metrics_exist_and_skipped_with_a_note(tmp_path):
    """Byte-for-byte determinism of the SVGs is checked by test_render_writes_reproducible_artefacts."""
    _golden_records(tmp_path)
    write(tmp_path, make_record("mvae", 0, dataset="other"))
    boards, _ = _boards(tmp_path)
    plots, notes = board_plots(boards)
    assert [p.name for p in plots] == ["other-quick-v1-coherence-by-k", "polymnist-quick-v1-tradeoff", "polymnist-quick-v1-coherence-by-k"]
    assert all(p.png.startswith(b"\x89PNG") and b"<dc:date>" not in p.svg for p in plots)
    assert b"a|b &lt;i&gt;" in plots[2].svg and b"<i>" not in plots[2].svg
    assert any(n.startswith("other / quick v1: no overall or per-modality FID") for n in notes)


def test_render_writes_reproducible_artefacts(tmp_path):
    results, site = tmp_path / "records", tmp_path / "site"
    _golden_records(results)
    args = ["--results", str(results), "--render", str(site)]
    first = CliRunner().invoke(leaderboard, args)
    assert first.exit_code == 0, first.output
    (site / "plots" / "stale.svg").write_text("<svg/>")
    snapshot = {p.relative_to(site): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
    os.remove(results / INDEX_FILE)
    assert CliRunner().invoke(leaderboard, args).exit_code == 0
    again = {p.relative_to(site): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
    del snapshot[next(k for k in snapshot if k.name == "stale.svg")]
    assert again == snapshot
    readme = (site / "README.md").read_text()
    assert GOLDEN_MARKDOWN in readme and "(plots/polymnist-quick-v1-tradeoff.svg)" in readme
    assert (site / "index.html").read_text().startswith("<!DOCTYPE html>")
    assert {p.suffix for p in (site / "plots").iterdir()} == {".svg", ".png"}


def test_records_of_other_networks_never_share_a_board(tmp_path):
    from mmbench.results.aggregate import build_boards
    from mmbench.results.store import load_results

    write(tmp_path, make_record("mvae", 0, coherence=0.6), "old")  # no score versions: networks v1
    write(tmp_path, make_record("mvae", 1, coherence=0.2, score_versions={"networks": 2, "tier:quick": 1, "model:mvae": 1}), "new")
    boards = build_boards(load_results(tmp_path)[0])
    assert len(boards) == 2 and sorted(b.versions["networks"] for b in boards) == [1, 2]
    assert all(int(b.seeds["mvae"]) == 1 for b in boards)


def test_boards_of_two_recipes_of_one_tier_say_which_they_are(tmp_path):
    from mmbench.results.aggregate import build_boards
    from mmbench.results.store import load_results

    for version in (1, 2):
        write(tmp_path, make_record("mvae", 0, score_versions={"networks": 2, "tier:quick": version, "model:mvae": 1}), f"v{version}")
    assert [b.title for b in build_boards(load_results(tmp_path)[0])] == ["polymnist / quick v2", "polymnist / quick v1"]


def test_runs_that_changed_the_tiers_settings_get_a_board_of_their_own(tmp_path):
    """A `--set train.epochs=3` try never pools with the tier's runs; the board it lands on names
    the change, and each board keeps its own sample grids. A record of an older recipe is told
    apart by its version alone (its config is that recipe's, not a change)."""
    from mmbench.results.records import score_versions
    from mmbench.training.config import TIER_VERSIONS

    current = score_versions("mvae", 1, "quick")
    for seed in (0, 1):
        write(tmp_path, make_record("mvae", seed, coherence=0.6, score_versions=current))
    short = make_record("mvae", 2, coherence=0.2, score_versions=current)
    short["config"]["train"]["epochs"] = 3
    write(tmp_path, short, "short")
    old = make_record("mvae", 0, score_versions={**current, "tier:quick": TIER_VERSIONS["quick"] - 1})
    old["config"]["train"]["epochs"] = 3
    write(tmp_path, old, "old")
    boards, _ = _boards(tmp_path)
    version = TIER_VERSIONS["quick"]
    assert [(b.title, int(b.seeds["mvae"])) for b in boards] == [
        (f"polymnist / quick v{version}", 2), (f"polymnist / quick v{version} with train.epochs=3", 1),
        (f"polymnist / quick v{version - 1}", 1)]
    assert boards[0].mean.at["mvae", "coherence/conditional/k=1"] == pytest.approx(0.575)

    for run in ("mvae-polymnist-quick-seed0", "short"):
        (tmp_path / run / "samples").mkdir()
        (tmp_path / run / "samples" / "given_m0.png").write_bytes(run.encode())
    site = tmp_path / "site"
    assert CliRunner().invoke(leaderboard, ["--results", str(tmp_path), "--render", str(site)]).exit_code == 0
    assert sorted(p.read_bytes() for p in (site / "samples").iterdir()) == [b"mvae-polymnist-quick-seed0", b"short"]


def test_a_seed_run_again_with_other_settings_is_another_run_not_a_duplicate(tmp_path):
    """Seed 0 of the tier's recipe and seed 0 with `--set train.epochs=3` are both kept, each on
    its own board, and neither is reported as a duplicate of the other."""
    from mmbench.results.records import score_versions

    current = score_versions("mvae", 1, "quick")
    write(tmp_path, make_record("mvae", 0, coherence=0.6, score_versions=current), "default")
    short = make_record("mvae", 0, coherence=0.2, score_versions=current)
    short["config"]["train"]["epochs"] = 3
    short["provenance"]["created"] = "2026-01-01T00:00:00+00:00"
    write(tmp_path, short, "short")
    boards, problems = _boards(tmp_path)
    assert problems == []
    assert [(b.title.endswith("with train.epochs=3"), b.mean.at["mvae", "coherence/unconditional"]) for b in boards] == [
        (False, pytest.approx(0.3)), (True, pytest.approx(0.1))]


def test_settings_that_leave_the_numbers_alone_keep_a_run_on_its_tiers_board_and_long_titles_make_short_files(tmp_path):
    """Which metrics ran and where MNIST was read from do not split a board; a run that changed a
    dozen settings gets a board whose files still fit a file name; a config section that is not a
    mapping is not a change (and no crash)."""
    from mmbench.results.records import score_versions

    current = score_versions("mvae", 1, "quick")
    plain = make_record("mvae", 0, score_versions=current)
    plain["config"]["eval"]["metrics"] = ["coherence"]
    plain["config"]["dataset"]["mnist_dir"] = "/data/somewhere/mnist"
    write(tmp_path, plain, "plain")
    odd = make_record("mvae", 1, score_versions=current)
    odd["config"]["train"] = ["not", "a", "mapping"]
    write(tmp_path, odd, "odd")
    many = make_record("mvae", 2, score_versions=current)
    many["config"]["train"].update(lr=0.123456789, batch_size=17, epochs=999, warmup_steps=12345, cooldown_epochs=77)
    many["config"]["eval"].update(batch_size=33, max_test_samples=4321, probe_train_samples=4321, unconditional_samples=4321,
                          likelihood_test_samples=4321, iwae_k=33)
    write(tmp_path, many, "many")
    (tmp_path / "many" / "samples").mkdir()
    (tmp_path / "many" / "samples" / "given_m0.png").write_bytes(b"grid")
    boards, _ = _boards(tmp_path)
    assert [int(b.seeds["mvae"]) for b in boards] == [2, 1] and "with" not in boards[0].title
    assert "train.lr=0.123456789" in boards[1].title and len(boards[1].title) > 255
    site = tmp_path / "site"
    assert CliRunner().invoke(leaderboard, ["--results", str(tmp_path), "--render", str(site)]).exit_code == 0
    names = [p.name for p in site.rglob("*") if p.is_file()]
    assert any(name.endswith("-mvae-given_m0.png") for name in names) and max(map(len, names)) < 150


def test_render_copies_each_models_sample_grids_next_to_the_page(tmp_path):
    """The page and README show each model's grids (given m0, unconditional) from its lowest-seed
    run directory, copied under samples/ with names safe for any model name."""
    results, site = tmp_path / "records", tmp_path / "site"
    _golden_records(results)
    grids = {}
    for run in ("mopoe-polymnist-quick-seed0", "odd-name"):  # the lowest-seed runs of two models
        folder = results / run / "samples"
        folder.mkdir()
        for file in ("given_m0.png", "unconditional.png", "given_m1.png"):
            (folder / file).write_bytes(f"{run}/{file}".encode())
            grids[(run, file)] = f"{run}/{file}".encode()
    assert CliRunner().invoke(leaderboard, ["--results", str(results), "--render", str(site)]).exit_code == 0
    copied = {p.name: p.read_bytes() for p in (site / "samples").iterdir()}
    assert len(copied) == 4 and set(copied.values()) <= set(grids.values())  # given_m1 is not shown
    assert all(name.endswith(".png") and "<" not in name and "|" not in name for name in copied)
    page, readme = (site / "index.html").read_text(), (site / "README.md").read_text()
    assert all(f'src="samples/{name}"' in page and f"(samples/{name})" in readme for name in copied)
    (results / "odd-name" / "samples" / "unconditional.png").unlink()
    assert CliRunner().invoke(leaderboard, ["--results", str(results), "--render", str(site)]).exit_code == 0
    assert len(list((site / "samples").iterdir())) == 3  # a grid no longer there is removed


def test_published_numbers_render_as_quoted_and_malformed_files_are_one_line_errors(tmp_path):
    results, site = tmp_path / "records", tmp_path / "site"
    _golden_records(results)
    quoted = tmp_path / "published.json"
    quoted.write_text(json.dumps({"entries": [{"dataset": "polymnist", "model": "mopoe <b>", "source": "Sutter et al. 2021",
                                               "metrics": {"coherence/conditional/k=1": 0.66}}]}))
    assert CliRunner().invoke(leaderboard, ["--results", str(results), "--render", str(site), "--published", str(quoted)]).exit_code == 0
    readme, page = (site / "README.md").read_text(), (site / "index.html").read_text()
    assert "## Published numbers (quoted, not measured)" in readme and "| mopoe &lt;b&gt; | 0.66 " in readme
    assert "mopoe &lt;b&gt;" in page and "<b>" not in page.split("Published numbers")[1]
    assert "--published" in readme  # the regeneration command names the file
    quoted.write_text(json.dumps({"entries": [{"dataset": "polymnist", "model": "x", "metrics": {"coh": "high"}}]}))
    bad = CliRunner().invoke(leaderboard, ["--results", str(results), "--render", str(site), "--published", str(quoted)])
    assert bad.exit_code != 0 and "entry 0 needs dataset, model, source" in str(bad.exception)
