"""`mmbench reproduce limitations`: the experiments of Daunhawer et al. (ICLR 2022), claim by claim.

Six claims are checked, each from result records of runs this module plans:
1. models that sub-sample modalities (MMVAE, MoPoE) generate worse samples than unimodal VAEs;
2. that quality gap grows with the number of modalities;
3. over a beta sweep, generative quality trades off against coherence;
4. coherence drops on Translated-PolyMNIST, where shared information is not predictable in
   expectation, compared with PolyMNIST;
5. on the synthetic set, where the discrepancy Δ is known in closed form, the mixture models'
   estimate of Δ matches it, the joint-only MVAE has Δ ≈ 0, and Δ grows with the number of modalities;
6. the MMVM VAE (Sutter et al., 2024), which regularises each unimodal posterior towards a mixture
   prior instead of sub-sampling modalities, keeps a smaller quality gap than MMVAE and MoPoE at
   every number of modalities (the question the paper leaves to later models).
The quick tier trains on 5,000 tuples for 3 epochs and scores 500 test tuples with the one
evaluator the claims read (coherence and classifier feature distance), so the whole plan (31
runs) fits in about an hour on 2 CPU cores; its numbers are indicative, not the paper's.
The runs go through `mmbench sweep`'s executors (here one after another, a process pool, a SLURM array) and
each claim gets a figure (mmbench/experiments/figures.py).
Longer than most modules because the plan and the claims read the same run names and constants:
one short function per claim, kept beside the runs it judges.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mmbench.api.options import parse_assignments
from mmbench.data.cards import label_classes
from mmbench.errors import ConfigError, MMBenchError
from mmbench.experiments import sweep
from mmbench.experiments.runner import RunRequest, requested_config
from mmbench.experiments.sweep import ExecutorSettings, Outcome, SweepSpec
from mmbench.metrics.coherence import at_chance, chance_ceiling
from mmbench.results.records import RESULT_FILE, read_record
from mmbench.training.config import resolve_config, with_added_settings

QUALITY = "feature_distance/mean"  # lower is better; FID where the tier computes it
QUALITY_OF_MODALITY = "feature_distance/m{}"
"""QUALITY of one PolyMNIST modality (named m0..m4); QUALITY is their mean."""
COHERENCE = "coherence/conditional"
NAME = "reproduce-limitations"

TIER_OVERRIDES = {
    "quick": ("train.epochs=3", "train.cooldown_epochs=0", "train.max_train_samples=5000", "eval.max_test_samples=500", "eval.unconditional_samples=500",
              'eval.metrics=["coherence"]'),
    "cpu": (),
    "cpu40k": (),
    "full": (),
}
SUBSAMPLING = ("mmvae", "mopoe")
"""The mixture-based models whose sub-sampling the paper blames for the quality gap."""
WITHOUT_SUBSAMPLING = ("mmvm",)
"""Claim 6's models: multimodal without sub-sampling modalities in the paper's sense."""
JOINT_ONLY = ("subsample=false",)
"""The MVAE trained on the joint posterior alone, without its sub-sampled subsets."""
GAP_MODELS = (("mmvae", ()), ("mopoe", ()), ("mvae", ()), ("mvae", JOINT_ONLY), ("mmjsd", ()), ("mvtcae", ()))
"""(model, overrides) compared with the unimodal VAE in claim 1; the verdict reads SUBSAMPLING's,
the others (mmJSD, also mixture-based; MVTCAE and the MVAEs, products of experts) are shown beside them."""
MODALITIES = (2, 3, 4, 5)
"""Numbers of modalities of claim 2; 5, all of PolyMNIST's, is what every other run uses."""
BETAS = (0.25, 1.0, 2.5)
"""The beta sweep of claim 3; the run at the tier's own beta (1 below the full tier, the models'
2.5 in it) is the one every other claim uses."""
TRANSLATED_MODELS = ("mvae", "mmvae", "mopoe")
SYNTHETIC_MODALITIES = (2, 3, 4)
"""Numbers of modalities of the synthetic set in claim 5."""
SYNTHETIC_TOLERANCE = 0.25
"""Claim 5 accepts an estimate of Δ within 25% of the closed form: the estimator is an upper bound
that tightens as the model fits (benchmarks/validate_discrepancy.py reaches 5% after 300 epochs)."""
SYNTHETIC_JOINT_MAX = 0.1
"""... and a joint-only MVAE estimate below 10% of the smallest mixture model's closed-form Δ."""
DELTA, DELTA_CLOSED = "discrepancy/conditional_entropy", "discrepancy/closed_form"


@dataclass(frozen=True)
class PlannedRun:
    experiment: str
    label: str
    request: RunRequest


Executor = Callable[[list[RunRequest]], list[Outcome]]
"""Runs the requests still to do and says how each went (`mmbench.experiments.sweep.execute` bound to settings)."""


def run_name(model: str, dataset: str = "polymnist", sets: tuple[str, ...] = ()) -> str:
    """Directory name of a planned run, from what sets it apart; claims and figures find runs by it.
    Only letters, digits, `_` and `-`, so shells and file systems take it as it is."""
    return re.sub(r"[^A-Za-z0-9_-]", "", "-".join([model, dataset, *[s.replace("=", "") for s in sets]]).replace(".", "_"))


def synthetic_sets(m: int) -> tuple[str, ...]:
    """The synthetic runs train on the whole set for 20 epochs at a constant learning rate and
    score the discrepancy alone, whatever the tier's sample caps, schedule and metric list."""
    return (f"dataset.num_modalities={m}", "train.epochs=20", "train.cooldown_epochs=0", "train.max_train_samples=null",
            'eval.metrics=["discrepancy"]')


def modality_sets(m: int) -> tuple[str, ...]:
    return () if m == 5 else (f"dataset.num_modalities={m}",)


def beta_sets(model: str, beta: float, tier: str) -> tuple[str, ...]:
    """No override where `beta` is what the tier trains `model` with anyway."""
    return () if beta == resolve_config(model, "polymnist", tier, [])["model"]["beta"] else (f"beta={beta}",)


def gap_label(model: str, sets: tuple[str, ...]) -> str:
    return f"{model} (joint only)" if sets == JOINT_ONLY else model


def plan(tier: str, results: Path, seed: int = 0, extra: tuple[str, ...] = ()) -> list[PlannedRun]:
    """Every run the claims need; runs shared by several claims appear once."""
    base = TIER_OVERRIDES[tier] + tuple(extra)
    runs: dict[str, PlannedRun] = {}

    def add(experiment: str, model: str, dataset: str = "polymnist", sets: tuple[str, ...] = (), label: str | None = None):
        name = run_name(model, dataset, sets)
        if name not in runs:
            request = RunRequest(model, dataset, tier, seed, base + sets, results / name, progress=False)
            runs[name] = PlannedRun(experiment, label or model, request)

    add("quality_gap", "unimodal")
    for model, sets in GAP_MODELS:
        add("quality_gap", model, sets=sets, label=gap_label(model, sets))
    for m in MODALITIES:  # the unimodal VAEs' run on all five modalities serves every M (unimodal_quality)
        for model in SUBSAMPLING:
            add("modalities", model, sets=modality_sets(m))
    for m in MODALITIES:
        for model in WITHOUT_SUBSAMPLING:
            add("without_subsampling", model, sets=modality_sets(m))
    for beta in BETAS:
        for model in SUBSAMPLING:
            add("tradeoff", model, sets=beta_sets(model, beta, tier))
    for model in TRANSLATED_MODELS:
        add("translated", model, "translated_polymnist")
    for m in SYNTHETIC_MODALITIES:
        for model in SUBSAMPLING:
            add("synthetic", model, "synthetic", synthetic_sets(m))
    add("synthetic", "mvae", "synthetic", synthetic_sets(3) + JOINT_ONLY, label=gap_label("mvae", JOINT_ONLY))
    return list(runs.values())


def value(records: dict[str, dict | None], metric: str, model: str, dataset: str = "polymnist", sets: tuple[str, ...] = ()) -> float:
    """One planned run's score; NaN when the run failed, has not run, or did not compute `metric`."""
    record = records.get(run_name(model, dataset, sets))
    return record["metrics"].get(metric, math.nan) if record else math.nan


def _spearman(xs: list[float], ys: list[float]) -> float:
    """Rank correlation (no ties expected in continuous scores); NaN with fewer than 3 points."""
    pairs = [(x, y) for x, y in zip(xs, ys) if not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3:
        return math.nan
    rank = lambda v: {value: i for i, value in enumerate(sorted(v))}
    rx, ry = rank([p[0] for p in pairs]), rank([p[1] for p in pairs])
    n = len(pairs)
    d2 = sum((rx[x] - ry[y]) ** 2 for x, y in pairs)
    return 1 - 6 * d2 / (n * (n * n - 1))


def _at_chance(records: dict[str, dict | None], runs: list[tuple[str, str, tuple[str, ...]]]) -> list[str]:
    """The runs (model, dataset, sets) whose coherence does not beat chance (1 / the labels their
    dataset card states; `mmbench.metrics.coherence.at_chance`): a claim is only judged on runs
    that learnt the shared label, since a verdict drawn from noise is no evidence."""
    unlearned = []
    for model, dataset, sets in runs:
        classes = label_classes(dataset)
        if classes and at_chance(value(records, COHERENCE, model, dataset, sets), classes):
            unlearned.append(run_name(model, dataset, sets))
    return unlearned


def _verdict(checks: list[bool | None], at_chance: list[str]) -> str:
    if not checks or None in checks:
        return "inconclusive (runs missing)"
    if at_chance:
        return (f"inconclusive ({len(at_chance)} of the runs it compares are at chance coherence, "
                f"<= {chance_ceiling(label_classes('polymnist')):g}: not trained far enough to encode the digit)")  # PolyMNIST's runs
    return "supported" if all(checks) else "not supported"


def _rising(xs: list[float], ys: list[float]) -> tuple[bool | None, float]:
    """(does ys rise with xs, Spearman's rho over the pairs without NaN). None while any point is
    missing: three of four points always give rho = +-0.5 or +-1, so a trend read off a partial
    series would turn one noisy run into a verdict."""
    rho = _spearman(xs, ys)
    return (None if any(math.isnan(v) for v in (*xs, *ys)) else rho > 0), rho


Evidence = tuple[list[bool | None], list[str], list[tuple[str, str, tuple[str, ...]]]]
"""A claim's checks (None: a run is missing), evidence lines, and the runs (model, dataset, sets)
whose chance-level coherence would make it inconclusive. Each claim reads the records and the
tier, whose defaults decide which runs need no override."""


def _quality_gap(records: dict[str, dict | None], tier: str) -> Evidence:
    uni = value(records, QUALITY, "unimodal")
    lines, gaps = [f"unimodal: {QUALITY} = {uni:.4f}"], {}
    for model, sets in GAP_MODELS:
        quality = value(records, QUALITY, model, sets=sets)
        gaps[(model, sets)] = quality - uni
        lines.append(f"{gap_label(model, sets)}: {QUALITY} = {quality:.4f}, gap {quality - uni:+.4f}")
    checks = [None if math.isnan(gaps[(model, ())]) else gaps[(model, ())] > 0 for model in SUBSAMPLING]
    return checks, lines, [(model, "polymnist", ()) for model in SUBSAMPLING]  # the runs the verdict reads


def unimodal_quality(records: dict[str, dict | None], m: int) -> float:
    """The unimodal VAEs' quality on the first m modalities, from their one run on all five: the
    mean of its first m per-modality scores. That is what an m-modality unimodal run would measure,
    up to seed noise, so claims 2 and 6 need no such runs: each VAE trains on its own terms alone
    (tests/test_reproduce.py checks its gradients ignore the other modalities; Adam is per
    parameter), an m-modality build's modalities equal the first m of the five-modality build
    (mmbench.data.polymnist.build_split), and they share their judges, which are keyed by content."""
    return sum(value(records, QUALITY_OF_MODALITY.format(k), "unimodal") for k in range(m)) / m


def gap_by_modalities(records: dict[str, dict | None], model: str) -> list[float]:
    """The model's quality gap to the unimodal VAE at each of MODALITIES (NaN where a run is missing)."""
    return [value(records, QUALITY, model, sets=modality_sets(m)) - unimodal_quality(records, m) for m in MODALITIES]


def _gap_grows(records: dict[str, dict | None], tier: str) -> Evidence:
    series = {model: gap_by_modalities(records, model) for model in SUBSAMPLING}
    trends = {model: _rising(list(MODALITIES), gaps) for model, gaps in series.items()}
    unimodal = ", ".join(f"{unimodal_quality(records, m):.4f}" for m in MODALITIES)
    lines = [f"unimodal: {QUALITY} over the first M modalities of its run on all five = {unimodal}"]
    lines += [f"{model}: gap for M=2..5 = {', '.join(f'{g:+.4f}' for g in series[model])} (Spearman {trends[model][1]:+.2f})"
              for model in SUBSAMPLING]
    return [check for check, _ in trends.values()], lines, [(model, "polymnist", modality_sets(m)) for model in SUBSAMPLING for m in MODALITIES]


def _tradeoff(records: dict[str, dict | None], tier: str) -> Evidence:
    checks, lines = [], []
    for model in SUBSAMPLING:
        quality = [value(records, QUALITY, model, sets=beta_sets(model, beta, tier)) for beta in BETAS]
        coherence = [value(records, COHERENCE, model, sets=beta_sets(model, beta, tier)) for beta in BETAS]
        check, rho = _rising(coherence, quality)
        checks.append(check)
        lines.append(f"{model}: beta {list(BETAS)} -> coherence {[round(c, 3) for c in coherence]}, {QUALITY} {[round(q, 3) for q in quality]} (Spearman {rho:+.2f})")
    return checks, lines, [(model, "polymnist", beta_sets(model, beta, tier)) for model in SUBSAMPLING for beta in BETAS]


def _translated(records: dict[str, dict | None], tier: str) -> Evidence:
    checks, lines = [], []
    for model in TRANSLATED_MODELS:
        poly, trans = value(records, COHERENCE, model), value(records, COHERENCE, model, "translated_polymnist")
        checks.append(None if math.isnan(poly) or math.isnan(trans) else trans < poly)
        lines.append(f"{model}: {COHERENCE} PolyMNIST {poly:.3f}, Translated-PolyMNIST {trans:.3f}")
    # only the PolyMNIST runs must have learned: a translated run at chance is the drop at its fullest,
    # but then the report cannot tell the paper's limitation from too short a training
    unlearned = _at_chance(records, [(model, "translated_polymnist", ()) for model in TRANSLATED_MODELS])
    if unlearned:
        lines.append(f"at chance on Translated-PolyMNIST ({', '.join(unlearned)}): no digit encoded at this tier's budget, "
                     f"so how far longer training would close the drop is not measured here")
    return checks, lines, [(model, "polymnist", ()) for model in TRANSLATED_MODELS]


def _synthetic(records: dict[str, dict | None], tier: str) -> Evidence:
    checks, lines = [], []
    for model in SUBSAMPLING:
        estimates = [value(records, DELTA, model, "synthetic", synthetic_sets(m)) for m in SYNTHETIC_MODALITIES]
        closed = [value(records, DELTA_CLOSED, model, "synthetic", synthetic_sets(m)) for m in SYNTHETIC_MODALITIES]
        errors = [(e - c) / c for e, c in zip(estimates, closed)]
        checks += [None if math.isnan(r) else abs(r) <= SYNTHETIC_TOLERANCE for r in errors]
        checks.append(None if any(math.isnan(c) for c in estimates + closed) else
                      all(a < b for a, b in zip(closed, closed[1:])) and all(a < b for a, b in zip(estimates, estimates[1:])))
        lines.append(f"{model}: M={list(SYNTHETIC_MODALITIES)} closed-form Δ {[round(c, 3) for c in closed]}, "
                     f"estimate {[round(e, 3) for e in estimates]} (relative error {', '.join(f'{r:+.1%}' for r in errors)})")
    joint = value(records, DELTA, "mvae", "synthetic", synthetic_sets(3) + JOINT_ONLY)
    smallest = min(value(records, DELTA_CLOSED, model, "synthetic", synthetic_sets(3)) for model in SUBSAMPLING)
    checks.append(None if math.isnan(joint) or math.isnan(smallest) else joint <= SYNTHETIC_JOINT_MAX * smallest)
    lines.append(f"mvae (joint only), M=3: estimate {joint:.3f} (accepted below {SYNTHETIC_JOINT_MAX:g} x {smallest:.3f})")
    return checks, lines, []  # the synthetic set has no coherence to be at chance on


def _without_subsampling(records: dict[str, dict | None], tier: str) -> Evidence:
    mixtures = [gap_by_modalities(records, model) for model in SUBSAMPLING]
    checks, lines = [], []
    for model in WITHOUT_SUBSAMPLING:
        gaps = gap_by_modalities(records, model)
        for gap, others in zip(gaps, zip(*mixtures)):
            checks.append(None if math.isnan(gap) or any(math.isnan(o) for o in others) else gap < min(others))
        smallest = [min((g for g in others if not math.isnan(g)), default=math.nan) for others in zip(*mixtures)]
        lines.append(f"{model}: gap for M=2..5 = {', '.join(f'{g:+.4f}' for g in gaps)}; smallest of "
                     f"{'/'.join(SUBSAMPLING)}: {', '.join(f'{g:+.4f}' for g in smallest)}")
    return checks, lines, [(model, "polymnist", modality_sets(m)) for model in (*SUBSAMPLING, *WITHOUT_SUBSAMPLING) for m in MODALITIES]


CLAIMS: tuple[tuple[str, Callable[[dict[str, dict | None], str], Evidence]], ...] = (
    ("1. MMVAE and MoPoE generate worse samples than the unimodal VAE", _quality_gap),
    ("2. The quality gap grows with the number of modalities", _gap_grows),
    ("3. Higher coherence comes with worse quality over a beta sweep (trade-off)", _tradeoff),
    ("4. Coherence drops on Translated-PolyMNIST", _translated),
    ("5. On the synthetic set the estimated Δ matches its closed form, is ≈ 0 for the joint-only MVAE and grows with M",
     _synthetic),
    ("6. MMVM, which does not sub-sample modalities, keeps a smaller quality gap than MMVAE and MoPoE at every M",
     _without_subsampling),
)


def claims(records: dict[str, dict | None], tier: str) -> list[tuple[str, str, list[str]]]:
    """(claim, verdict, evidence lines) for each claim, from records keyed by run dir name."""
    out = []
    for title, evidence in CLAIMS:
        checks, lines, compared = evidence(records, tier)
        out.append((title, _verdict(checks, _at_chance(records, compared)), lines))
    return out


def _span(low: float, high: float, spec: str) -> str:
    """"low-high", or one number where both read the same at this precision."""
    fast, slow = format(low, spec), format(high, spec)
    return fast if fast == slow else f"{fast}-{slow}"


def still_to_run(planned: list[PlannedRun], records: dict[str, dict | None]) -> list[str]:
    """One line per planned run without a usable record, with how long its model's recorded runs
    on the same dataset took (those at the same number of modalities where there are any), then
    their total: what settling the inconclusive claims costs on the machine that made the records."""
    modalities = lambda p: next((s for s in p.request.overrides if s.startswith("dataset.num_modalities=")), "")
    took: dict[tuple[str, str, str], list[float]] = {}
    for p in planned:
        record = records.get(p.request.out.name)
        if record and "timing" in record:
            seconds = record["timing"].get("train_seconds", 0.0) + record["timing"].get("eval_seconds", 0.0)
            for key in ((p.request.model, p.request.dataset, modalities(p)), (p.request.model, p.request.dataset, "any")):
                took.setdefault(key, []).append(seconds)
    lines, low, high, untimed = [], 0.0, 0.0, 0
    for p in planned:
        if records.get(p.request.out.name) is not None:
            continue
        model, dataset = p.request.model, p.request.dataset
        alike = took.get((model, dataset, modalities(p)))
        times = alike or took.get((model, dataset, "any"))
        if times:
            low, high = low + min(times), high + max(times)
            which = "at the same number of modalities" if alike else "at other numbers of modalities"
            lines.append(f"{p.request.out.name}: {model}'s {len(times)} {dataset} run{'s' * (len(times) > 1)} {which} here "
                         f"took {_span(min(times) / 60, max(times) / 60, '.0f')} min")
        else:
            untimed += 1
            lines.append(f"{p.request.out.name}: no {model} run on {dataset} here to time it by")
    if lines:
        lines.append(f"{len(lines)} runs, about {_span(low / 3600, high / 3600, '.1f')} h one after another"
                     + (f", plus {untimed} not timed" if untimed else ""))
    return lines


def report(records: dict[str, dict | None], failures: dict[str, str], tier: str, figures: list[str],
           to_run: list[str]) -> str:
    """Markdown report: one section per claim with its verdict, the numbers behind it and its
    figure (`figures`: one markdown line per claim, a link or why there is none), then the runs
    still to do (`to_run`, from `still_to_run`) and the failed or stale ones."""
    parts = [f"# Reproducing *On the Limitations of Multimodal VAEs* ({tier} tier)\n",
             f"Quality is `{QUALITY}` (lower is better), coherence `{COHERENCE}`.\n"]
    for (claim, verdict, lines), figure in zip(claims(records, tier), figures, strict=True):
        parts.append(f"## {claim}\n\n**{verdict}**\n")
        parts.extend(f"- {line}" for line in lines)
        parts.append(f"\n{figure}\n")
    if to_run:
        parts.append("## Runs still to do\n")
        parts.extend(f"- {line}" for line in to_run)
        parts.append("")
    if failures:
        parts.append("## Failed or stale runs\n")
        parts.extend(f"- {name}: {error}" for name, error in sorted(failures.items()))
    return "\n".join(parts) + "\n"


def executor_settings(name: str, workers: int, slurm: tuple[str, ...]) -> ExecutorSettings:
    """Settings as a sweep spec's `executor` would give them, checked by the sweep's own rules;
    `slurm` holds KEY=VALUE pairs named like the spec's `executor.slurm` keys."""
    if slurm and name != "slurm":
        raise ConfigError("--slurm resources need --executor slurm")
    return sweep.executor_settings({"name": name, "workers": workers, "slurm": parse_assignments(slurm, "--slurm")}, "--slurm")


def sweep_executor(settings: ExecutorSettings, results: Path, report: Callable[[Outcome], None],
                   announce: Callable[[str], None]) -> Executor:
    """`mmbench sweep`'s executors, so a reproduction runs wherever a sweep does (submitit logs go
    under RESULTS/.submitit); `report` sees each outcome as it arrives."""
    spec = SweepSpec(NAME, (), (), (), (), {}, results, executor=settings)  # sweep.execute reads only name, results, executor
    return lambda todo: sweep.execute(spec, todo, report, announce)


def execute(planned: list[PlannedRun], executor: Executor) -> tuple[dict[str, dict | None], dict[str, str], dict[str, str]]:
    """Run what is not finished yet through `executor` (finished runs skipped, started ones resumed)
    and return records, stale runs and failures by run name (see `collect`). Records are read back
    from the run directories, so every executor, a SLURM array included, ends the same way."""
    done, todo = sweep.triage([p.request for p in planned])
    outcomes = done + executor(todo)
    return *collect(planned), {o.name: o.error for o in outcomes if o.state == "failed"}


STALE = "stale: its record was made with another config (an older tier recipe?); continue it with `mmbench run ... --resume` or rerun it"


def collect(planned: list[PlannedRun]) -> tuple[dict[str, dict | None], dict[str, str]]:
    """The records of the planned runs by run name, None for each run without one (failed, not
    run) or with a stale one, whose config is not what the plan asks for now: a claim must not
    compare a 60-epoch run with a 100-epoch one. Also the stale runs, each with why."""
    records, stale = {}, {}
    for p in planned:
        name, record = p.request.out.name, _record(p.request.out)
        if record is not None and with_added_settings(record["config"]) != json.loads(json.dumps(requested_config(p.request))):
            record, stale[name] = None, STALE
        records[name] = record
    return records, stale


def _record(run_dir: Path) -> dict | None:
    """The run's result record; None for a run without a valid one (failed, not run)."""
    try:
        return read_record(run_dir / RESULT_FILE)
    except MMBenchError:
        return None
