"""Learning curves: how many optimizer steps (and seconds) until a model's scores leave chance.

Trains one model with the harness's own training loop and, every `--every` optimizer steps, scores
it with `mmbench.evaluation.evaluators.curve_point` (the harness's `coherence` and `latent_probe` evaluators
on the first `--test` test tuples): conditional coherence with one given modality (k=1) and its
mean over subset sizes, the classifier feature distance of prior samples, and the linear probe
from one modality. The RNG is left as found, so the trained weights equal those of a plain run.
(`mmbench run --set train.curve_every=N` records the same points every N epochs in a record.)

    python benchmarks/learning_curve.py --model mopoe --set latent_dim=32 --set beta=1 \\
        --set batch_size=64 --steps 4000 --every 500 --label mopoe-b64 --out benchmarks/curves
    python benchmarks/learning_curve.py --plot benchmarks/curves/*.json --out benchmarks/curves

Each run writes <out>/<label>.json (the recipe and one row per scoring, with the training seconds
spent so far); `--plot` draws coherence k=1 against steps, training seconds and tuples seen for any
number of these files and of result.json records with curve points (PNG and SVG). Tiers are
chosen from these curves. The script stops at `--steps`, not at the tier's epochs, so it trains at
a constant lr (after warm-up) unless `--set train.cooldown_epochs=N` asks for a decay.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from mmbench.training.config import resolve_config
from mmbench.data.cache import default_data_root
from mmbench.evaluation.evaluators import EvalContext, curve_point
from mmbench.api.registry import create_model, get_dataset
from mmbench.training.loop import stable_epochs, train

HEADLINE = "coherence/conditional/k=1"


def run_curve(args: argparse.Namespace) -> Path:
    config = resolve_config(args.model, args.dataset, args.tier, ["train.cooldown_epochs=0", *args.set])
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    dataset = get_dataset(args.dataset, data_root, **config["dataset"])
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = create_model(args.model, dataset.spec, **config["model"])
    ctx = EvalContext(model=model, dataset=dataset, train=dataset.train, test=dataset.test, options=config["eval"],
                      seed=args.seed, device=device, data_root=data_root, progress=False)
    ctx.classifiers()  # trained and cached before the clock starts
    train_cfg = config["train"]
    steps_per_epoch = -(-len(dataset.train) // train_cfg["batch_size"])
    epochs = -(-args.steps // steps_per_epoch)
    rows: list[dict] = []
    out = Path(args.out) / f"{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    clock = {"began": time.perf_counter(), "scoring": 0.0}

    def record(step: int) -> None:
        if step % args.every and step != args.steps:
            return
        began = time.perf_counter()
        row = {"step": step, "train_seconds": began - clock["began"] - clock["scoring"], **curve_point(ctx, args.test)}
        clock["scoring"] += time.perf_counter() - began
        rows.append(row)
        print(json.dumps(row), flush=True)
        out.write_text(json.dumps({"label": args.label, "model": args.model, "dataset": args.dataset, "seed": args.seed,
                                   "config": config, "test_tuples": args.test, "rows": rows}, indent=1))
        if step >= args.steps:
            raise _Done

    with tempfile.TemporaryDirectory() as run_dir:
        try:
            train(model, dataset.train, epochs=epochs, batch_size=train_cfg["batch_size"], lr=train_cfg["lr"],
                  seed=args.seed, run_dir=Path(run_dir), device=device, progress=False,
                  warmup_steps=train_cfg["warmup_steps"], cooldown_epochs=train_cfg["cooldown_epochs"],
                  on_step=record)
        except _Done:
            pass
    return out


class _Done(Exception):
    """Raised from the step hook to stop training at exactly --steps."""


def _curve(path: Path) -> dict:
    """A curve file of this script, or a run's result.json with curve points in its train_history."""
    data = json.loads(path.read_text())
    if "rows" in data:
        return data
    epochs, seconds = data["config"]["train"]["epochs"], data["timing"]["train_seconds"]
    # history rows are deterministic (no clock); epochs take equal time, so spread the total evenly
    rows = [{"train_seconds": seconds * r["epoch"] / epochs, **r} for r in data["train_history"] if HEADLINE in r]
    cooldown = epochs - stable_epochs(epochs, data["config"]["train"].get("cooldown_epochs", 0))
    schedule = f"lr decaying over the last {cooldown}" if cooldown else "constant lr"
    n_train = data["config"]["dataset"].get("n_train")
    tuples = f", {n_train:,} training tuples" if n_train else ""
    return {"label": f"{data['model']} on {data['dataset']}, {data['tier']} tier{tuples}, {epochs} epochs, {schedule} (seed {data['seed']})",
            "config": data["config"], "rows": rows}


def plot(paths: list[Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "mmbench"  # fixed ids and no date below: redrawing unchanged curves rewrites the same files
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    axes = axes.ravel()
    paired = plt.get_cmap("tab20").colors  # a board has more curves than the default cycle's 10 colours:
    colours = paired[0::2] + paired[1::2]  # the 10 strong ones first, then their light twins
    for i, path in enumerate(paths):
        curve = _curve(Path(path))
        rows = curve["rows"]
        steps = [r["step"] for r in rows]
        minutes = [r["train_seconds"] / 60 for r in rows]
        tuples = [step * curve["config"]["train"]["batch_size"] / 1000 for step in steps]
        style = {"marker": "o", "color": colours[i % len(colours)], "label": curve["label"]}
        axes[0].plot(steps, [r[HEADLINE] for r in rows], **style)
        axes[1].plot(minutes, [r[HEADLINE] for r in rows], **style)
        axes[2].plot(tuples, [r[HEADLINE] for r in rows], **style)
        axes[3].plot(steps, [r["latent_probe/k=1"] for r in rows], **style)
    axes[0].set(xlabel="optimizer steps", ylabel="coherence, one given modality", title="coherence vs steps")
    axes[1].set(xlabel="training minutes (2 CPU cores)", ylabel="coherence, one given modality", title="coherence vs time")
    axes[2].set(xlabel="training tuples seen (thousands: steps x batch size)", ylabel="coherence, one given modality",
                title="coherence vs data seen")
    axes[3].set(xlabel="optimizer steps", ylabel="linear probe accuracy, one modality", title="latent probe vs steps")
    for ax in axes:
        ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    rows_of_legend = -(-len(paths) // 2)
    fig.tight_layout(rect=(0, (0.2 * rows_of_legend + 0.1) / fig.get_figheight(), 1, 1))  # room in inches per legend row
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "learning-curves.png", dpi=110, metadata={"Software": None})
    fig.savefig(out / "learning-curves.svg", metadata={"Date": None, "Creator": None})
    print(f"wrote {out / 'learning-curves.png'} and .svg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mopoe")
    parser.add_argument("--dataset", default="polymnist")
    parser.add_argument("--tier", default="quick")
    parser.add_argument("--set", action="append", default=[], help="config override, as in `mmbench run --set`")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--test", type=int, default=500, help="test tuples scored at each point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--label", default=None)
    parser.add_argument("--out", default="benchmarks/curves")
    parser.add_argument("--plot", nargs="+", type=Path, help="draw these curve files instead of training")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, Path(args.out))
        return
    args.label = args.label or f"{args.model}-{args.dataset}-" + "-".join(s.replace("=", "") for s in args.set)
    print(f"wrote {run_curve(args)}")


if __name__ == "__main__":
    main()
