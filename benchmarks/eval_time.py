"""Wall time of one evaluation in each tier, per evaluator, on PolyMNIST (CPU by default).

quick: the quick tier's evaluation exactly as `mmbench run` scores a run (every metric), timed.
full:  the full tier's evaluation (Inception FID on 10,000 images for each of 25 image sets, IWAE
       with K = 1000, ...) takes hours on a CPU, so it runs with every sample count scaled by
       two factors s1 < s2, fits t = a + b * s per evaluator (a: fixed costs such as loading
       Inception and fitting the probe; b: the per-sample work) and prints t(1), the full-size
       time *extrapolated* from those two measured runs. The full tier's 10,000 test tuples are
       not on this machine, so its scaled test sets are cut from the offline quick data.

The model is an untrained MoPoE (or --model): the cost of an evaluation does not depend on the
weights. Coherence classifiers come from the data root (trained there on first use, which is not
timed); FID reference statistics are computed afresh in a temporary folder, as on a first run.
Usage: python benchmarks/eval_time.py [--model mopoe] [--scales 0.004 0.008] [--device cpu]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from tabulate import tabulate

from mmbench.training.config import TIERS
from mmbench.data.cache import default_data_root
from mmbench.evaluation.evaluators import EvalContext, evaluate
from mmbench.evaluation.classifiers import load_or_train_classifiers
from mmbench.api.registry import create_model, get_dataset

SCALED = ("fid_samples", "unconditional_samples", "likelihood_test_samples", "max_test_samples")
FULL_TEST_TUPLES = 10_000  # PolyMNIST's full test split, which max_test_samples=None means


def timed_evaluation(model, dataset, options: dict, classifiers, device: torch.device) -> dict[str, float]:
    """Seconds per evaluator of one evaluation with `options`, FID statistics not cached."""
    test = dataset.test
    if options["max_test_samples"] is not None:
        test = test.subset(slice(0, options["max_test_samples"]))
    with tempfile.TemporaryDirectory() as fresh_root:
        ctx = EvalContext(model, dataset, dataset.train, test, options, 0, device, Path(fresh_root), progress=False,
                          extras=dict(zip(("classifiers", "classifier_manifest"), classifiers)))
        seconds = evaluate(ctx).seconds
    return {**seconds, "total": sum(seconds.values())}


def scaled_full_options(scale: float, test_tuples: int) -> dict:
    options = dict(TIERS["full"]["eval"])
    options["max_test_samples"] = options["max_test_samples"] or FULL_TEST_TUPLES
    for key in SCALED:
        options[key] = max(1, round(options[key] * scale))
    if options["max_test_samples"] > test_tuples:
        raise SystemExit(f"scale {scale} needs {options['max_test_samples']} test tuples; the quick data has {test_tuples}")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mopoe")
    parser.add_argument("--scales", type=float, nargs=2, default=(0.004, 0.008))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--skip-quick", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = args.data_root or default_data_root()
    dataset = get_dataset("polymnist", root, tier="quick")
    torch.manual_seed(0)
    model = create_model(args.model, dataset.spec).to(device)
    classifiers = load_or_train_classifiers(dataset, root, device, progress=False)
    print(f"{args.model}, {torch.get_num_threads()} threads on {device}; quick test split {len(dataset.test)} tuples")

    if not args.skip_quick:
        quick = timed_evaluation(model, dataset, dict(TIERS["quick"]["eval"]), classifiers, device)
        print("\nquick tier, measured (s)")
        print(tabulate(sorted(quick.items(), key=lambda kv: kv[0] == "total"), headers=["evaluator", "seconds"], floatfmt=".1f"))

    small, large = sorted(args.scales)
    runs = [timed_evaluation(model, dataset, scaled_full_options(s, len(dataset.test)), classifiers, device)
            for s in (small, large)]
    rows = []
    for name in (n for n in runs[0] if n != "total"):
        full, how = extrapolate(small, runs[0][name], large, runs[1][name])
        rows.append([name, runs[0][name], runs[1][name], full, full / 3600, how])
    total = sum(row[3] for row in rows)
    rows.append(["total", runs[0]["total"], runs[1]["total"], total, total / 3600, ""])
    print(f"\nfull tier: measured at scales {small} and {large}, extrapolated to scale 1")
    print(tabulate(rows, headers=["evaluator", f"s={small} (s)", f"s={large} (s)", "full (s)", "(h)", "from"],
                   floatfmt=".1f"))


def extrapolate(small: float, t_small: float, large: float, t_large: float) -> tuple[float, str]:
    """t(1) of the line through both measurements; where the time did not grow with the scale
    (a fixed cost, such as the probe's fit on a fixed number of training samples, under timing
    noise) the larger measurement instead, as a cost cannot shrink with the sample count."""
    slope = (t_large - t_small) / (large - small)
    if slope <= 0:
        return t_large, "fixed cost: larger measurement"
    return t_small + slope * (1 - small), "linear fit"


if __name__ == "__main__":
    main()
