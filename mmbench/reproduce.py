"""`mmbench reproduce limitations`: the experiments of Daunhawer et al. (ICLR 2022), claim by claim.

Four claims are checked, each from result records of runs this module plans:
1. models that sub-sample modalities (MMVAE, MoPoE) generate worse samples than unimodal VAEs;
2. that quality gap grows with the number of modalities;
3. over a beta sweep, generative quality trades off against coherence;
4. coherence drops on Translated-PolyMNIST, where shared information is not predictable in
   expectation, compared with PolyMNIST.
The quick tier trains on 5,000 tuples for 3 epochs and scores 500 test tuples, so the whole plan
(21 runs) fits in about an hour on 2 CPU cores; its numbers are indicative, not the paper's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mmbench.runner import RunRequest

QUALITY = "feature_distance/mean"  # lower is better; FID where the tier computes it
COHERENCE = "coherence/conditional"

TIER_OVERRIDES = {
    "quick": ("train.epochs=3", "train.max_train_samples=5000", "eval.max_test_samples=500", "eval.unconditional_samples=500"),
    "full": (),
}


@dataclass(frozen=True)
class PlannedRun:
    experiment: str
    label: str
    request: RunRequest


def plan(tier: str, results: Path, seed: int = 0, extra: tuple[str, ...] = ()) -> list[PlannedRun]:
    """Every run the four claims need; runs shared by several claims appear once."""
    base = TIER_OVERRIDES[tier] + tuple(extra)
    runs: dict[str, PlannedRun] = {}

    def add(experiment: str, model: str, dataset: str = "polymnist", sets: tuple[str, ...] = (), label: str | None = None):
        name = "-".join([model, dataset, *[s.replace("=", "") for s in sets]]).replace(".", "_")
        if name not in runs:
            request = RunRequest(model, dataset, tier, seed, base + sets, results / name, progress=False)
            runs[name] = PlannedRun(experiment, label or model, request)

    for model in ("unimodal", "mvae", "mmvae", "mopoe"):
        add("quality_gap", model)
    add("quality_gap", "mvae", sets=("subsample=false",), label="mvae (joint only)")
    for m in (2, 3, 4):
        for model in ("unimodal", "mmvae", "mopoe"):
            add("modalities", model, sets=(f"dataset.num_modalities={m}",))
    for beta in (0.25, 1.0):
        for model in ("mmvae", "mopoe"):
            add("tradeoff", model, sets=(f"beta={beta}",))
    for model in ("mvae", "mmvae", "mopoe"):
        add("translated", model, "translated_polymnist")
    return list(runs.values())


def _metric(record: dict | None, name: str) -> float:
    return record["metrics"].get(name, math.nan) if record else math.nan


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


def _verdict(ok: bool | None) -> str:
    return "inconclusive (runs missing)" if ok is None else ("supported" if ok else "not supported")


def claims(records: dict[str, dict | None], planned: list[PlannedRun]) -> list[tuple[str, str, list[str]]]:
    """(claim, verdict, evidence lines) for each of the four claims, from records keyed by run dir name."""
    by_name = {p.request.out.name: p for p in planned}

    def get(model: str, dataset: str = "polymnist", sets: tuple[str, ...] = ()) -> dict | None:
        name = "-".join([model, dataset, *[s.replace("=", "") for s in sets]]).replace(".", "_")
        return records.get(name) if name in by_name else None

    out = []
    uni = _metric(get("unimodal"), QUALITY)
    lines, ok = [f"unimodal: {QUALITY} = {uni:.4f}"], None
    gaps = {}
    for model, sets in (("mmvae", ()), ("mopoe", ()), ("mvae", ()), ("mvae", ("subsample=false",))):
        value = _metric(get(model, sets=sets), QUALITY)
        gaps[(model, sets)] = value - uni
        lines.append(f"{model}{' (joint only)' if sets else ''}: {QUALITY} = {value:.4f}, gap {value - uni:+.4f}")
    sub = [gaps[("mmvae", ())], gaps[("mopoe", ())]]
    if not any(math.isnan(g) for g in sub):
        ok = all(g > 0 for g in sub)
    out.append(("1. MMVAE and MoPoE generate worse samples than the unimodal VAE", _verdict(ok), lines))

    lines, checks = [], []
    for model in ("mmvae", "mopoe"):
        series = []
        for m in (2, 3, 4, 5):
            sets = () if m == 5 else (f"dataset.num_modalities={m}",)
            series.append(_metric(get(model, sets=sets), QUALITY) - _metric(get("unimodal", sets=sets), QUALITY))
        rho = _spearman([2, 3, 4, 5], series)
        checks.append(None if math.isnan(rho) else rho > 0)
        lines.append(f"{model}: gap for M=2..5 = {', '.join(f'{g:+.4f}' for g in series)} (Spearman {rho:+.2f})")
    ok = None if None in checks else all(checks)
    out.append(("2. The quality gap grows with the number of modalities", _verdict(ok), lines))

    lines, checks = [], []
    for model in ("mmvae", "mopoe"):
        points = [(beta, get(model, sets=() if beta == 2.5 else (f"beta={beta}",))) for beta in (0.25, 1.0, 2.5)]
        quality = [_metric(r, QUALITY) for _, r in points]
        coherence = [_metric(r, COHERENCE) for _, r in points]
        rho = _spearman(coherence, quality)
        checks.append(None if math.isnan(rho) else rho > 0)
        lines.append(f"{model}: beta {[b for b, _ in points]} -> coherence {[round(c, 3) for c in coherence]}, {QUALITY} {[round(q, 3) for q in quality]} (Spearman {rho:+.2f})")
    ok = None if None in checks else all(checks)
    out.append(("3. Higher coherence comes with worse quality over a beta sweep (trade-off)", _verdict(ok), lines))

    lines, checks = [], []
    for model in ("mvae", "mmvae", "mopoe"):
        poly, trans = _metric(get(model), COHERENCE), _metric(get(model, "translated_polymnist"), COHERENCE)
        checks.append(None if math.isnan(poly) or math.isnan(trans) else trans < poly)
        lines.append(f"{model}: {COHERENCE} PolyMNIST {poly:.3f}, Translated-PolyMNIST {trans:.3f}")
    ok = None if None in checks else all(checks)
    out.append(("4. Coherence drops on Translated-PolyMNIST", _verdict(ok), lines))
    return out


def report(records: dict[str, dict | None], planned: list[PlannedRun], failures: dict[str, str], tier: str) -> str:
    """Markdown report: one section per claim with its verdict and the numbers behind it."""
    parts = [f"# Reproducing *On the Limitations of Multimodal VAEs* ({tier} tier)\n",
             f"Quality is `{QUALITY}` (lower is better), coherence `{COHERENCE}`.\n"]
    for claim, verdict, lines in claims(records, planned):
        parts.append(f"## {claim}\n\n**{verdict}**\n")
        parts.extend(f"- {line}" for line in lines)
        parts.append("")
    if failures:
        parts.append("## Failed runs\n")
        parts.extend(f"- {name}: {error}" for name, error in sorted(failures.items()))
    return "\n".join(parts) + "\n"


def execute(planned: list[PlannedRun], executor=None) -> tuple[dict[str, dict | None], dict[str, str]]:
    """Run what is not finished yet (resuming unfinished runs); returns records and failures."""
    from mmbench.errors import MMBenchError
    from mmbench.records import RESULT_FILE, read_record
    from mmbench.runner import CONFIG_FILE, run

    records: dict[str, dict | None] = {}
    failures: dict[str, str] = {}
    todo = []
    for p in planned:
        out = Path(p.request.out)
        if (out / RESULT_FILE).exists():
            records[out.name] = read_record(out / RESULT_FILE)
        else:
            todo.append(RunRequest(**{**p.request.__dict__, "resume": (out / CONFIG_FILE).exists()}))
    if executor is not None:
        outcomes = executor(todo)
    else:
        outcomes = []
        for request in todo:
            try:
                outcomes.append((request, run(request), None))
            except MMBenchError as exc:
                outcomes.append((request, None, str(exc)))
    for request, record, error in outcomes:
        records[Path(request.out).name] = record
        if error:
            failures[Path(request.out).name] = error
    return records, failures
