"""`mmbench reproduce limitations`: the plan, the claims' verdicts, the figures, and the CLI run
through the sweep's executors (a fake run, so no training)."""
from __future__ import annotations

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mmbench import DatasetSpec, ModalitySpec
from mmbench.api.registry import create_model
from mmbench.experiments import sweep
from mmbench.cli import cli
from mmbench.errors import ConfigError, MMBenchError
from mmbench.results.records import write_record
from mmbench.experiments.reproduce import (
    BETAS, COHERENCE, DELTA, DELTA_CLOSED, MODALITIES, QUALITY, QUALITY_OF_MODALITY, _spearman, beta_sets, claims,
    executor_settings, gap_by_modalities, plan, report, run_name, still_to_run,
)
from mmbench.experiments.figures import FOLDER, draw, write
from mmbench.experiments.runner import CONFIG_FILE, plan as plan_config, requested_config
from mmbench.experiments.sweep import SlurmSettings
from record_factory import make_record

FIGURES = ("quality-gap", "gap-by-modalities", "tradeoff", "translated-coherence", "synthetic-discrepancy",
           "gap-without-subsampling")
TRANSLATED = [run_name(model, "translated_polymnist") for model in ("mvae", "mmvae", "mopoe")]


def paper_quality(model, m, beta, ds, o):
    if model == "unimodal":
        return 1.0
    return 1.0 + 0.05 * m + 1 / beta if model == "mmvm" else 1.0 + 0.1 * m + (0.5 if model != "mvae" else 0) + 1 / beta


def paper_coherence(model, m, beta, ds):
    return (0.3 if ds == "translated_polymnist" else 0.6) + 0.1 / beta


def paper_delta(model, m, joint_only):
    """(estimate, closed form) of Δ on the synthetic set: M log 4 - ..., 5% above for the estimate."""
    closed = (m - 1) * math.log(4) * (1.0 if model == "mmvae" else 0.6)
    return (0.0, 0.0) if joint_only else (closed * 1.05, closed)


def _scores(model: str, dataset: str, overrides: tuple[str, ...], quality=paper_quality, coherence=paper_coherence,
            delta=paper_delta) -> dict:
    sets = dict(s.split("=", 1) for s in overrides)
    m, beta = int(sets.get("dataset.num_modalities", 5)), float(sets.get("beta", 1.0))  # the quick tier trains at beta 1
    if dataset == "synthetic":
        estimate, closed = delta(model, m, sets.get("subsample") == "false")
        return {DELTA: estimate, DELTA_CLOSED: closed}
    scores = {QUALITY: quality(model, m, beta, dataset, sets), COHERENCE: coherence(model, m, beta, dataset)}
    if model == "unimodal":  # claims 2 and 6 read its per-modality scores
        scores.update({QUALITY_OF_MODALITY.format(k): quality(model, m, beta, dataset, sets) for k in range(m)})
    return scores


def _records(planned, quality=paper_quality, coherence=paper_coherence, delta=paper_delta):
    return {Path(p.request.out).name: {"metrics": _scores(p.request.model, p.request.dataset, p.request.overrides, quality,
                                                          coherence, delta)}
            for p in planned}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_plan_has_each_run_once_and_quick_overrides():
    planned = plan("quick", Path("/tmp/x"))
    names = [Path(p.request.out).name for p in planned]
    assert len(names) == len(set(names)) == 31
    assert all("train.epochs=3" in p.request.overrides for p in planned if p.request.dataset != "synthetic")
    synthetic = [p for p in planned if p.request.dataset == "synthetic"]
    assert len(synthetic) == 7 and all('eval.metrics=["discrepancy"]' in p.request.overrides for p in synthetic)


@pytest.mark.parametrize("tier, own_beta", [("quick", 1.0), ("cpu", 1.0), ("full", 2.5)])
def test_the_beta_sweep_reads_runs_trained_at_its_betas(tier, own_beta):
    planned = {p.request.out.name: p.request for p in plan(tier, Path("/tmp/x"))}
    for model in ("mmvae", "mopoe"):
        names = [run_name(model, sets=beta_sets(model, beta, tier)) for beta in BETAS]
        assert [plan_config(planned[name])["model"]["beta"] for name in names] == list(BETAS)
        assert names[BETAS.index(own_beta)] == run_name(model)  # the run every other claim reads, not a copy


def test_claims_supported_when_numbers_follow_the_paper():
    planned = plan("quick", Path("/tmp/x"))
    verdicts = [v for _, v, _ in claims(_records(planned), "quick")]
    assert verdicts == ["supported"] * 6


def test_claims_not_supported_or_inconclusive():
    planned = plan("quick", Path("/tmp/x"))
    flat = lambda *a: 1.0
    records = _records(planned, flat, lambda model, m, beta, ds: 0.5)
    verdicts = [v for _, v, _ in claims(records, "quick")]
    assert verdicts[0] == "not supported" and verdicts[3] == "not supported" and verdicts[5] == "not supported"
    mmvm_worst = lambda model, *a: paper_quality(model, *a) + (2.0 if model == "mmvm" and a[0] == 3 else 0.0)
    assert [v for _, v, _ in claims(_records(planned, mmvm_worst), "quick")] == ["supported"] * 5 + ["not supported"]
    records.pop(Path(planned[0].request.out).name)  # the unimodal run failed
    text = report(records, {"unimodal-polymnist": "boom"}, "quick", ["(figure)"] * 6, [])
    assert "inconclusive" in text and "boom" in text


def test_a_trend_waits_for_every_point_of_its_series():
    planned = plan("cpu", Path("/tmp/x"))
    records = _records(planned)
    records.pop(run_name("mmvae", sets=("dataset.num_modalities=4",)))  # the other three still rise
    verdict, lines = {c[:2]: (v, e) for c, v, e in claims(records, "cpu")}["2."]
    assert verdict == "inconclusive (runs missing)" and any("+nan" in line and "Spearman +1.00" in line for line in lines)


def test_the_report_says_what_its_missing_runs_cost_from_the_times_of_the_runs_it_has():
    planned = plan("cpu", Path("/tmp/x"))
    records = _records(planned)
    minutes = {"mmvae-polymnist": 60, "mmvae-polymnist-dataset_num_modalities2": 30, "mmvae-polymnist-dataset_num_modalities3": 40,
               "mopoe-polymnist": 90}
    for name, m in minutes.items():
        records[name]["timing"] = {"train_seconds": 60.0 * m - 120, "eval_seconds": 120.0}
    for name in ("mmvae-polymnist-beta0_25", "mopoe-polymnist-beta2_5", "mmvm-polymnist", "mmvae-polymnist-dataset_num_modalities4"):
        records[name] = None
    lines = still_to_run(planned, records)
    assert lines == [  # in plan order
        "mmvae-polymnist-dataset_num_modalities4: mmvae's 3 polymnist runs at other numbers of modalities here took 30-60 min",
        "mmvm-polymnist: no mmvm run on polymnist here to time it by",
        "mmvae-polymnist-beta0_25: mmvae's 1 polymnist run at the same number of modalities here took 60 min",
        "mopoe-polymnist-beta2_5: mopoe's 1 polymnist run at the same number of modalities here took 90 min",
        "4 runs, about 3.0-3.5 h one after another, plus 1 not timed"]
    text = report(records, {}, "cpu", [""] * len(FIGURES), lines)
    assert "## Runs still to do" in text and "- mmvm-polymnist: no mmvm run" in text
    records["mmvm-polymnist"] = records["mmvae-polymnist-dataset_num_modalities4"] = {"metrics": {}}
    assert still_to_run(planned, records)[-1] == "2 runs, about 2.5 h one after another"  # 60 + 90 min, one reading each
    assert still_to_run(planned, _records(planned)) == [] and "still to do" not in report(_records(planned), {}, "cpu", [""] * len(FIGURES), [])


@pytest.mark.parametrize("delta, why", [
    (lambda model, m, joint: (0.0, 0.0) if joint else (1.5 * (m - 1), (m - 1)), "estimate 50% off"),
    (lambda model, m, joint: (0.5, 0.0) if joint else (1.05 * (m - 1), (m - 1)), "joint-only MVAE far from 0"),
    (lambda model, m, joint: (0.0, 0.0) if joint else (1.05 * (5 - m), 5 - m), "Δ shrinking with M"),
])
def test_the_synthetic_claim_fails_when_its_numbers_do_not_follow_the_theory(delta, why):
    verdicts = [v for _, v, _ in claims(_records(plan("quick", Path("/tmp/x")), delta=delta), "quick")]
    assert verdicts[4] == "not supported", why


def test_claims_on_models_at_chance_coherence_are_inconclusive():
    planned = plan("quick", Path("/tmp/x"))
    at_chance = lambda model, m, beta, ds: 0.116 - 0.001 / beta  # the quick tier's untrained models
    verdicts = [v for _, v, _ in claims(_records(planned, coherence=at_chance), "quick")]
    assert all(v.startswith("inconclusive") and "chance" in v for v in verdicts[:4]), verdicts
    assert verdicts[4] == "supported"  # the synthetic claim reads no coherence
    assert verdicts[5].startswith("inconclusive") and "chance" in verdicts[5]
    one_trained = lambda model, m, beta, ds: paper_coherence(model, m, beta, ds) if model != "mvae" else 0.11
    verdicts = [v for _, v, _ in claims(_records(planned, coherence=one_trained), "quick")]
    assert verdicts[:3] == ["supported"] * 3  # claims 1-3 judge only MMVAE and MoPoE runs (claim 1 shows the MVAEs beside them)
    assert "1 of the runs" in verdicts[3]  # claim 4 compares the MVAE across datasets


def test_the_gap_by_modalities_reads_the_unimodal_runs_first_m_modalities():
    planned = plan("quick", Path("/tmp/x"))
    per_modality = [3.0, 1.0, 4.0, 1.0, 5.0]  # the unimodal VAEs' score on m0..m4
    gap = {2: 0.5, 3: 0.7, 4: 0.9, 5: 1.1}
    first_m = lambda m: sum(per_modality[:m]) / m
    quality = lambda model, m, beta, ds, sets: first_m(m) + (0.0 if model == "unimodal" else gap[m])
    records = _records(planned, quality)
    records[run_name("unimodal")]["metrics"].update({QUALITY_OF_MODALITY.format(k): v for k, v in enumerate(per_modality)})
    assert gap_by_modalities(records, "mopoe") == pytest.approx([gap[m] for m in MODALITIES])
    assert not any("unimodal" in p.request.out.name and "num_modalities" in p.request.out.name for p in planned)
    del records[run_name("unimodal")]["metrics"][QUALITY_OF_MODALITY.format(3)]  # M=4 and 5 need m3
    assert [math.isnan(g) for g in gap_by_modalities(records, "mopoe")] == [False, False, True, True]


def test_the_unimodal_vaes_learn_each_modality_from_its_own_terms_alone():
    """What lets claims 2 and 6 read the unimodal run on all modalities for every M: the loss
    gradient of modality 0's VAE does not change when the other modalities' data does."""
    spec = DatasetSpec("toy", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(3)), 10)
    torch.manual_seed(0)
    model = create_model("unimodal", spec, latent_dim=8)
    own = [*model.encoders[0].parameters(), *model.decoders[0].parameters()]
    data = torch.rand(2, 3, 4, 3, 28, 28, generator=torch.Generator().manual_seed(1))  # two versions of 3 modalities

    def gradients(xs):
        torch.manual_seed(2)  # the same noise draws
        return torch.autograd.grad(model.loss(list(xs)), own)

    same = gradients(data[0])
    other = gradients([data[0][0], data[1][1], data[1][2]])
    changed = gradients([data[1][0], data[0][1], data[0][2]])
    for a, b, c in zip(same, other, changed, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, c) for a, c in zip(same, changed))  # and it does see its own data


def test_spearman_matches_hand_values():
    assert _spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert _spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert math.isnan(_spearman([1, 2], [1, 2]))


def test_figures_are_written_linked_and_byte_identical_when_regenerated(tmp_path):
    records = _records(plan("quick", tmp_path))
    lines = write(draw(records, "quick"), tmp_path / "a")
    first = _bytes(tmp_path / "a" / FOLDER)
    assert sorted(first) == sorted(f"{name}.{suffix}" for name in FIGURES for suffix in ("png", "svg"))
    assert all(data.startswith(b"\x89PNG") for name, data in first.items() if name.endswith(".png"))
    assert not any(b"dc:date" in data for name, data in first.items() if name.endswith(".svg"))
    text = report(records, {}, "quick", lines, [])
    links = re.findall(r"\]\((figures/[^)]+)\)", text)
    assert sorted(links) == sorted(f"{FOLDER}/{name}" for name in first)
    assert all((tmp_path / "a" / link).is_file() for link in links)

    write(draw(records, "quick"), tmp_path / "b")
    assert _bytes(tmp_path / "b" / FOLDER) == first
    lower = lambda model, m, beta, ds: paper_coherence(model, m, beta, ds) - (0.1 if ds == "translated_polymnist" else 0)
    write(draw(_records(plan("quick", tmp_path), coherence=lower), "quick"), tmp_path / "c")
    changed = {name for name, data in _bytes(tmp_path / "c" / FOLDER).items() if data != first[name]}
    assert changed == {"translated-coherence.png", "translated-coherence.svg"}


def test_claim_4_says_when_its_translated_runs_learned_nothing(tmp_path):
    """A translated run at chance still supports the drop, and the report says it measured no more."""
    claim4 = lambda records: report(records, {}, "quick", [""] * len(FIGURES), []).split("## 4.")[1].split("## 5.")[0]
    learned = claim4(_records(plan("quick", tmp_path)))
    at_chance = lambda model, m, beta, ds: 0.1 if ds == "translated_polymnist" else paper_coherence(model, m, beta, ds)
    unlearned = claim4(_records(plan("quick", tmp_path), coherence=at_chance))
    assert "**supported**" in learned and "**supported**" in unlearned
    assert "at chance on Translated-PolyMNIST" not in learned
    assert "at chance on Translated-PolyMNIST" in unlearned and all(name in unlearned for name in TRANSLATED)


def test_a_missing_experiment_skips_its_figure_with_a_note(tmp_path):
    records = _records(plan("quick", tmp_path))
    for name in TRANSLATED[1:]:
        del records[name]
    records[TRANSLATED[0]]["metrics"].pop(COHERENCE)
    drawn = draw(records, "quick")
    assert [d.name for d in drawn[:3]] == list(FIGURES[:3])
    assert isinstance(drawn[3], str) and all(name in drawn[3] for name in TRANSLATED)
    text = report(records, {}, "quick", write(drawn, tmp_path), [])
    assert sorted(p.stem for p in (tmp_path / FOLDER).iterdir()) == sorted((FIGURES[:3] + FIGURES[4:]) * 2)
    claim4 = text.split("## 4.")[1].split("## 5.")[0]
    assert "inconclusive" in claim4 and drawn[3] in claim4 and "figures/" not in claim4

    complete = _records(plan("quick", tmp_path))
    write(draw(complete, "quick"), tmp_path / "b")
    write(draw({name: r for name, r in complete.items() if name not in TRANSLATED}, "quick"), tmp_path / "b")  # claim 4's runs went stale
    assert sorted(p.stem for p in (tmp_path / "b" / FOLDER).iterdir()) == sorted((FIGURES[:3] + FIGURES[4:]) * 2)
    nothing = draw({}, "quick")
    assert all(isinstance(d, str) for d in nothing)
    assert write(nothing, tmp_path / "empty") == [f"*{note}*" for note in nothing] and not (tmp_path / "empty").exists()


def test_executor_settings_follow_the_sweep_spec_rules():
    settings = executor_settings("slurm", 2, ("partition=gpu", "time=04:00:00", "gpus_per_node=1", "mem_gb=32"))
    assert settings.name == "slurm" and settings.slurm == SlurmSettings(partition="gpu", time=240, gpus_per_node=1, mem_gb=32)
    assert executor_settings("pool", 3, ()).workers == 3
    with pytest.raises(ConfigError, match="unknown key.*nodes"):
        executor_settings("slurm", 2, ("nodes=2",))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        executor_settings("slurm", 2, ("partition",))
    with pytest.raises(ConfigError, match="need --executor slurm"):
        executor_settings("pool", 2, ("partition=gpu",))


def test_cli_pool_executor_runs_only_unfinished_runs_and_resumes(tmp_path, monkeypatch):
    results = tmp_path / "results"
    runs = plan("quick", results)
    planned = {p.request.out.name: p.request for p in runs}
    finished = [p.request.out.name for p in runs if p.experiment == "quality_gap"]
    for name in finished:
        r = planned[name]
        write_record(r.out, make_record(r.model, dataset=r.dataset, metrics=_scores(r.model, r.dataset, r.overrides),
                                        config=requested_config(r)))
    started = run_name("mopoe", sets=("beta=0.25",))
    planned[started].out.mkdir(parents=True)
    (planned[started].out / CONFIG_FILE).write_text(json.dumps(plan_config(planned[started])))
    ran, pools, broken = [], [], {TRANSLATED[2]}

    def fake_run(request):
        ran.append((request.out.name, request.resume))
        if request.out.name in broken:
            raise MMBenchError("boom")
        write_record(request.out, make_record(request.model, dataset=request.dataset, config=requested_config(request),
                                              metrics=_scores(request.model, request.dataset, request.overrides)))

    monkeypatch.setattr(sweep, "run", fake_run)
    monkeypatch.setattr(sweep, "ProcessPoolExecutor", lambda workers, mp_context: pools.append(workers) or ThreadPoolExecutor(workers))
    monkeypatch.setattr(sweep.torch, "set_num_threads", lambda n: None)  # the fake pool's workers are this process's threads
    args = ["reproduce", "limitations", "--results", str(results), "--executor", "pool", "--workers", "3"]

    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1, first.output
    assert len(finished) == 7 and pools == [3] and f"running {31 - 7} run(s) in 3 worker process(es)" in first.output
    assert sorted(ran) == sorted((name, name == started) for name in planned if name not in finished)
    assert f"failed {TRANSLATED[2]}: boom" in first.output
    text = (results / "REPORT.md").read_text()
    assert text.count("**supported**") == 5 and f"- {TRANSLATED[2]}: boom" in text
    assert sorted(p.stem for p in (results / FOLDER).iterdir()) == sorted((FIGURES[:3] + FIGURES[4:]) * 2)

    ran.clear()
    broken.clear()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert ran == [(TRANSLATED[2], False)] and pools == [3, 1]
    assert (results / "REPORT.md").read_text().count("**supported**") == 6
    figures = _bytes(results / FOLDER)
    assert sorted(figures) == sorted(f"{name}.{suffix}" for name in FIGURES for suffix in ("png", "svg"))

    ran.clear()
    assert CliRunner().invoke(cli, args).exit_code == 0 and ran == [] and pools == [3, 1]
    assert _bytes(results / FOLDER) == figures


def test_report_only_reports_the_finished_runs_and_runs_nothing(tmp_path, monkeypatch):
    results = tmp_path / "results"
    runs = plan("quick", results)
    for p in runs:
        if p.experiment == "quality_gap":
            r = p.request
            write_record(r.out, make_record(r.model, dataset=r.dataset, metrics=_scores(r.model, r.dataset, r.overrides),
                                            config=requested_config(r)))
    monkeypatch.setattr(sweep, "run", lambda request: pytest.fail(f"--report-only ran {request.out.name}"))
    args = ["reproduce", "limitations", "--results", str(results), "--report-only"]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    verdicts = re.findall(r"\*\*(.+?)\*\*", (results / "REPORT.md").read_text())
    assert verdicts == ["supported"] + ["inconclusive (runs missing)"] * 5
    assert sorted(p.stem for p in (results / FOLDER).iterdir()) == ["quality-gap", "quality-gap"]

    # a record made under another recipe (here: fewer epochs than the tier's) is left out and named
    unimodal = results / run_name("unimodal") / "result.json"
    record = json.loads(unimodal.read_text())
    record["config"]["train"]["epochs"] -= 1
    unimodal.write_text(json.dumps(record))
    assert CliRunner().invoke(cli, args).exit_code == 0
    text = (results / "REPORT.md").read_text()
    assert re.findall(r"\*\*(.+?)\*\*", text) == ["inconclusive (runs missing)"] * 6
    assert f"- {run_name('unimodal')}: stale" in text.split("## Failed or stale runs")[1]


def test_plan_only_lists_run_directories_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "run", lambda request: pytest.fail(f"--plan-only ran {request.out.name}"))
    outcome = CliRunner().invoke(cli, ["reproduce", "limitations", "--tier", "cpu", "--results", str(tmp_path), "--plan-only"])
    assert outcome.exit_code == 0, outcome.output
    rows = [line.split("\t") for line in outcome.output.splitlines()]
    assert [row[0] for row in rows] == [p.request.out.name for p in plan("cpu", tmp_path)]
    assert ["unimodal-polymnist", "quality_gap", "unimodal", "polymnist", ""] in rows
    assert not any(tmp_path.iterdir())
