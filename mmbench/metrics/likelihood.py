"""Importance-sampled log-likelihoods: the joint log p(x) and cross-modal conditionals.

Joint (IWAE, Burda et al. 2016): with proposal q(z | X), the model's own posterior for the full
set of modalities,

    log p(x) ~= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | X),   z_k ~ q(z | X).

Its expectation is a lower bound on the model's log p_theta(x) that rises monotonically to it as
K grows (exact for any K when q is the true posterior).

Conditional: for a subset S, with the subset posterior as proposal and no importance weights,

    log p(x_notS | x_S) ~= log (1/K) sum_k p(x_notS | z_k),   z_k ~ q(z | x_S).

This estimates log q~(x_notS | x_S) where q~ = int q(z | x_S) p(x_notS | z) dz is the cross-modal
predictive distribution, the one conditional generation samples from. By Jensen its expectation is
a lower bound on log q~ that rises to it as K grows. It equals the model's own conditional
p_theta(x_notS | x_S) only where q(z | x_S) is the model's true posterior p_theta(z | x_S).
All values are in nats per tuple (summed over a modality's dimensions and over the modalities).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch.distributions import Distribution

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.metrics.base import Metric
from mmbench.metrics.passes import EvalPass
from mmbench.objectives.subsets import all_subsets, joint_subset

Batch = Sequence[torch.Tensor | None]


def restrict(xs: Batch, subset: torch.Tensor) -> list[torch.Tensor | None]:
    """The inputs of the modalities in `subset` (an (M,) mask), None elsewhere, so an encoder
    cannot see what it is meant to predict."""
    return [x if keep else None for x, keep in zip(xs, subset.tolist())]


def sampled_logmeanexp(
    proposal: Distribution,
    log_weight: Callable[[torch.Tensor], torch.Tensor],
    num_samples: int,
    chunk_size: int,
) -> torch.Tensor:
    """log (1/K) sum_k exp(log_weight(z_k)), z_k ~ proposal of batch shape (1, B); K samples
    drawn `chunk_size` at a time to bound memory. `log_weight` maps (k, 1, B, D) to (k, B)."""
    if num_samples < 1 or chunk_size < 1:
        raise ValueError(f"num_samples and chunk_size must be positive, not {num_samples}, {chunk_size}")
    parts = []
    for start in range(0, num_samples, chunk_size):
        parts.append(log_weight(proposal.sample((min(chunk_size, num_samples - start),))))
    return torch.logsumexp(torch.cat(parts), 0) - math.log(num_samples)


def iwae_log_likelihood(
    model: MultimodalVAE, xs: Batch, *, num_samples: int = 100, chunk_size: int = 50
) -> torch.Tensor:
    """(B,) IWAE estimate of log p(x) with K = num_samples, proposal q(z | X)."""
    full = joint_subset(model.num_modalities)[0]
    proposal = model.encode(xs, full[None].to(_device(xs)))
    prior = model.prior()
    everything = range(model.num_modalities)

    def log_weight(z: torch.Tensor) -> torch.Tensor:
        return (model.log_likelihood(z[:, 0], xs, everything) + prior.log_prob(z[:, 0]) - proposal.log_prob(z)[:, 0])

    return sampled_logmeanexp(proposal, log_weight, num_samples, chunk_size)


def conditional_log_likelihood(
    model: MultimodalVAE, xs: Batch, subsets: torch.Tensor, *, num_samples: int = 100, chunk_size: int = 50
) -> torch.Tensor:
    """(K, B) estimates of log q~(x_notS | x_S) for each row S of `subsets`; 0 for the full set."""
    rows = []
    for subset in subsets.cpu():
        targets = torch.nonzero(~subset).flatten().tolist()
        if not targets:
            rows.append(torch.zeros(len(_present(xs)), device=_device(xs)))
            continue
        proposal = model.encode(restrict(xs, subset), subset[None].to(_device(xs)))
        rows.append(
            sampled_logmeanexp(
                proposal, lambda z: model.log_likelihood(z[:, 0], xs, targets), num_samples, chunk_size
            )
        )
    return torch.stack(rows)


def _present(xs: Batch) -> torch.Tensor:
    return next(x for x in xs if x is not None)


def _device(xs: Batch) -> torch.device:
    return _present(xs).device


class Likelihood(Metric):
    """Mean joint log-likelihood and mean conditional log-likelihood per conditioning size k.

    Keys: "likelihood/joint" and "likelihood/conditional/k=<k>" for k = 1..M-1, the mean over
    all subsets S of size k of the estimate of log q~(x_notS | x_S), in nats per tuple.
    """

    name = "likelihood"
    version = 1
    higher_is_better = True
    label = "LL"
    digits = 2

    def __init__(self, subsets: torch.Tensor):
        self.subsets = subsets.cpu()
        super().__init__()

    def reset(self) -> None:
        self.joint_sum = 0.0
        self.conditional_sum = torch.zeros(len(self.subsets), dtype=torch.float64)
        self.count = 0

    def update(self, joint: torch.Tensor, conditional: torch.Tensor) -> None:
        """joint (B,), conditional (K, B) per-tuple estimates for the K subsets of this metric."""
        self.joint_sum += joint.double().sum().item()
        self.conditional_sum += conditional.double().sum(1).cpu()
        self.count += joint.shape[0]

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {}
        out = {f"{self.name}/joint": self.joint_sum / self.count}
        sizes = self.subsets.sum(1)
        mean = self.conditional_sum / self.count
        for k in sorted(set(sizes.tolist()) - {self.subsets.shape[1]}):
            out[f"{self.name}/conditional/k={k}"] = mean[sizes == k].mean().item()
        return out


@torch.no_grad()
def evaluate_likelihood(
    model: MultimodalVAE, test: MultimodalSplit, *, num_samples: int = 100, chunk_size: int = 50, walk: EvalPass = EvalPass()
) -> dict[str, float]:
    """Joint and conditional log-likelihoods of `test` under `model`, K = num_samples each."""
    model.eval()
    subsets = all_subsets(model.num_modalities)
    subsets = subsets[subsets.sum(1) < model.num_modalities]
    metric = Likelihood(subsets)
    for _, xs in walk.batches(test, "likelihood"):
        joint = iwae_log_likelihood(model, xs, num_samples=num_samples, chunk_size=chunk_size)
        metric.update(joint, conditional_log_likelihood(model, xs, subsets, num_samples=num_samples, chunk_size=chunk_size))
    return metric.compute()
