import math
from pathlib import Path

from mmbench.reproduce import COHERENCE, QUALITY, _spearman, claims, plan, report


def _records(planned, quality, coherence):
    out = {}
    for p in planned:
        req = p.request
        overrides = dict(s.split("=") for s in req.overrides)
        m = int(overrides.get("dataset.num_modalities", 5))
        beta = float(overrides.get("beta", 2.5))
        out[Path(req.out).name] = {"metrics": {QUALITY: quality(req.model, m, beta, req.dataset, overrides),
                                               COHERENCE: coherence(req.model, m, beta, req.dataset)}}
    return out


def test_plan_has_each_run_once_and_quick_overrides():
    planned = plan("quick", Path("/tmp/x"))
    names = [Path(p.request.out).name for p in planned]
    assert len(names) == len(set(names)) == 21
    assert all("train.epochs=3" in p.request.overrides for p in planned)


def test_claims_supported_when_numbers_follow_the_paper():
    planned = plan("quick", Path("/tmp/x"))
    quality = lambda model, m, beta, ds, o: 1.0 if model == "unimodal" else 1.0 + 0.1 * m + (0.5 if model != "mvae" else 0) + 1 / beta
    coherence = lambda model, m, beta, ds: (0.3 if ds == "translated_polymnist" else 0.6) + 0.1 / beta
    verdicts = [v for _, v, _ in claims(_records(planned, quality, coherence), planned)]
    assert verdicts == ["supported"] * 4


def test_claims_not_supported_or_inconclusive():
    planned = plan("quick", Path("/tmp/x"))
    flat = lambda *a: 1.0
    records = _records(planned, flat, lambda model, m, beta, ds: 0.5)
    verdicts = [v for _, v, _ in claims(records, planned)]
    assert verdicts[0] == "not supported" and verdicts[3] == "not supported"
    records.pop(Path(planned[0].request.out).name)  # the unimodal run failed
    text = report({k: v for k, v in records.items()}, planned, {"unimodal-polymnist": "boom"}, "quick")
    assert "inconclusive" in text and "boom" in text


def test_spearman_matches_hand_values():
    assert _spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert _spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert math.isnan(_spearman([1, 2], [1, 2]))
