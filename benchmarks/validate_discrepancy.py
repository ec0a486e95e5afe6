"""Check the discrepancy estimators against the closed form on the `synthetic` dataset.

Trains MMVAE, MoPoE-VAE and the joint-only MVAE (beta = 1) for each private-entropy setting
and prints, per model: the closed-form Delta under the model's own mixture weighting, the
conditional-entropy estimate (at K and K/10, to show it has converged in K), the ELBO-gap
estimate, their errors, and the model's ELBO next to -H(X) (the best any model can reach on
this data) and -H(X) - Delta (the paper's Theorem 1 bound on a mixture-based ELBO). On this
data a Bernoulli decoder can model the private bits as fair coins whatever z is, and a model
doing so has an ELBO up to -H(X): the MMVAE's ELBO lies above -H(X) - Delta here, so neither the
ELBO nor the ELBO gap tracks Delta on this data (see the `elbo_gap` note in
mmbench.metrics.discrepancy); the conditional-entropy estimate does.

The defaults (300 epochs, batch 64, latent 32) are where the MoPoE estimate at L = 4 comes within
5% of Delta; at 150 epochs, batch 128, latent 16 it stays about 0.1 nats (6%) above, the misfit
of the model's conditionals, which K does not change. Not a test: it trains six models, about
4-5 minutes each on one CPU thread (the networks are tiny, so more threads only add overhead).
Usage: python benchmarks/validate_discrepancy.py [--private-levels 4 16] [--epochs 300]
[--latent-dim 32] [--batch-size 64] [--models mmvae mopoe mvae]
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from mmbench.data.synthetic import synthetic
from mmbench.metrics.discrepancy import closed_form_delta, conditional_entropy, mixture_weighting, stratified_elbo
from mmbench.metrics.likelihood import iwae_log_likelihood
from mmbench.api.registry import create_model
from mmbench.training.loop import train

MODELS = (("mmvae", {}), ("mopoe", {}), ("mvae", {"subsample": False}))


def mean_and_stderr(values: torch.Tensor) -> tuple[float, float]:
    return values.mean().item(), values.std().item() / math.sqrt(len(values))


@torch.no_grad()
def estimate(model, xs: list[torch.Tensor], num_samples: int, chunk_size: int) -> dict[str, torch.Tensor]:
    """Per-tuple IWAE log p(x), stratified ELBO and conditional-entropy estimates (K and K/10)."""
    weighting = mixture_weighting(model)
    log_px = torch.cat([iwae_log_likelihood(model, part, num_samples=num_samples, chunk_size=chunk_size)
                        for part in _parts(xs)])
    elbo = torch.cat([stratified_elbo(model, part, weighting, num_samples=64) for part in _parts(xs)])
    entropy = {
        k: torch.cat([conditional_entropy(model, part, weighting, num_samples=k, chunk_size=chunk_size)
                      for part in _parts(xs)])
        for k in (num_samples, max(1, num_samples // 10))
    }
    return {"log_px": log_px, "elbo": elbo, "gap": log_px - elbo, "entropy": entropy[num_samples],
            "entropy_k10": entropy[max(1, num_samples // 10)]}


def _parts(xs: list[torch.Tensor], size: int = 250) -> list[list[torch.Tensor]]:
    return [[x[i:i + size] for x in xs] for i in range(0, len(xs[0]), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--private-levels", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-samples", type=int, default=1000, help="K of both estimators")
    parser.add_argument("--eval-tuples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", choices=[name for name, _ in MODELS], default=[name for name, _ in MODELS])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.data_root or Path(tempfile.mkdtemp(prefix="mmbench-synthetic-"))

    rows = []
    for level in args.private_levels:
        dataset = synthetic(root, private_levels=level)
        entropy_x = math.log(dataset.spec.num_classes) + sum(dataset.info["private_entropies"])
        xs = dataset.test.batch(slice(0, args.eval_tuples))
        for name, options in (entry for entry in MODELS if entry[0] in args.models):
            torch.manual_seed(args.seed)
            model = create_model(name, dataset.spec, latent_dim=args.latent_dim, beta=1.0, **options)
            with tempfile.TemporaryDirectory() as run_dir:
                began = time.perf_counter()
                result = train(model, dataset.train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               seed=args.seed, run_dir=Path(run_dir), device=torch.device("cpu"), progress=False)
                seconds = time.perf_counter() - began
            model.eval()
            torch.manual_seed(args.seed + 1)
            values = estimate(model, xs, args.num_samples, chunk_size=100)
            delta = closed_form_delta(dataset.info["private_entropies"], *mixture_weighting(model))
            row = {"model": name, "L": level, "delta": delta, "H(X)": entropy_x, "train_s": seconds,
                   "final_loss": result.history[-1]["loss"]}
            for key, tensor in values.items():
                row[key], row[key + "_se"] = mean_and_stderr(tensor)
            rows.append(row)
            _print_row(row)
    print("\nsummary (nats per tuple; rel = (estimate - Delta) / Delta)")
    print(f"{'model':6} {'L':>3} {'Delta':>6} {'condH':>14} {'rel':>7} {'condH K/10':>10} "
          f"{'ELBO gap':>14} {'rel':>7} {'ELBO':>7} {'-H(X)':>7} {'-H-Delta':>8} {'train s':>7}")
    for row in rows:
        print(f"{row['model']:6} {row['L']:>3} {row['delta']:6.3f} {row['entropy']:7.3f}±{row['entropy_se']:.3f} "
              f"{_relative(row['entropy'], row['delta'])} {row['entropy_k10']:10.3f} {row['gap']:7.3f}±{row['gap_se']:.3f} "
              f"{_relative(row['gap'], row['delta'])} {row['elbo']:7.3f} {-row['H(X)']:7.3f} {-row['H(X)'] - row['delta']:8.3f} "
              f"{row['train_s']:7.1f}")


def _relative(value: float, delta: float) -> str:
    return f"{(value - delta) / delta:+7.1%}" if delta else f"{'n/a':>7}"


def _print_row(row: dict) -> None:
    print(f"{row['model']} L={row['L']}: trained {row['train_s']:.0f}s (final loss {row['final_loss']:.3f}); "
          f"Delta {row['delta']:.3f}, condH {row['entropy']:.3f}, ELBO gap {row['gap']:.3f}, "
          f"log p(x) {row['log_px']:.3f}, ELBO {row['elbo']:.3f}", flush=True)


if __name__ == "__main__":
    main()
