"""Score a finished run's coherence on other tuples or with other judges, to tell a model's gain
from the measurement's.

The harness trains its judges on the dataset build's own training tuples, so two runs on builds of
different sizes are judged by different classifiers; and a run is scored on test tuples only, so
memorising the training tuples does not show. This script reruns the `coherence` evaluator of a
finished run (its record and checkpoint, loaded as `mmbench evaluate` loads them) on the first N tuples of either split, judged by the
judges of its own build or of the same build at another `n_train`:

    python benchmarks/rejudge.py RUN_DIR --split train            # memorising? train vs test
    python benchmarks/rejudge.py RUN_DIR --judges-n-train default  # the default build's judges

Prints coherence with one given modality, over all k, and the feature distance, for the test split
and the chosen one (test, own judges, reproduces the record's own scores).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from mmbench.api.registry import get_dataset
from mmbench.data.cache import default_data_root
from mmbench.errors import MMBenchError
from mmbench.evaluation.evaluators import EvalContext, evaluate
from mmbench.experiments.runner import load_finished_run


def _n_train(value: str) -> str | int:
    """'default' or a positive count (argparse turns the ValueError into a one-line usage error)."""
    if value == "default":
        return value
    if int(value) <= 0:
        raise ValueError(value)
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run directory (result.json, checkpoint.pt)")
    parser.add_argument("--split", choices=("test", "train"), default="test", help="tuples to score besides the test split")
    parser.add_argument("--judges-n-train", default=None, type=_n_train,
                        help="judge with the build of this n_train ('default': the dataset's default build, "
                             "10,000 tuples for PolyMNIST, whatever the run's tier)")
    parser.add_argument("--samples", type=int, default=1000, help="tuples scored per split")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()
    root = args.data_root or default_data_root()
    try:
        record, dataset, model = load_finished_run(args.run, root)
    except MMBenchError as exc:
        parser.error(str(exc))
    config = record["config"]
    judged_by = dataset
    if args.judges_n_train is not None:
        n_train = None if args.judges_n_train == "default" else args.judges_n_train
        judged_by = get_dataset(record["dataset"], root, **{**config["dataset"], "n_train": n_train})
    ctx = EvalContext(model=model.eval(), dataset=judged_by, train=dataset.train, test=dataset.test,
                      options=config["eval"], seed=record["seed"], device=torch.device("cpu"), data_root=root,
                      progress=False)
    ctx.classifiers()  # loaded before scoring, as the runner does, so the samples draw the same noise
    for name in dict.fromkeys(("test", args.split)):
        split = getattr(dataset, name)
        metrics = evaluate(replace(ctx, test=split.subset(slice(0, args.samples))), ["coherence"]).metrics
        print(f"{args.run.name} {name} ({args.samples} tuples, judges of n_train={args.judges_n_train or 'own'}): "
              f"coherence k=1 {metrics['coherence/conditional/k=1']:.3f}, all k {metrics['coherence/conditional']:.3f}, "
              f"feature distance {metrics['feature_distance/mean']:.1f}")


if __name__ == "__main__":
    main()
