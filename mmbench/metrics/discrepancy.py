"""The generative discrepancy of mixture-based multimodal VAEs (Daunhawer et al., ICLR 2022).

A mixture-based model optimises sum_S w_S ELBO(x; q(z | x_S)): every component reconstructs all
modalities from a subset S. Its discrepancy is

    Delta(X, w) = sum_S w_S H(X_notS | X_S),

the entropy of what a component must predict but cannot see (H of the empty set is 0, so the
full set and joint-only models contribute nothing).

Here: (a) `closed_form_delta`, exact for data whose conditional entropies are known, such as the
`synthetic` dataset, where H(X_notS | X_S) = sum_{m not in S} log L_m for every non-empty S;
(b) two estimators for any dataset and model that declares its mixture (`mixture_weighting`):

- `conditional_entropy`: sum_S w_S -log (1/K) sum_k p(x_notS | z_k), z_k ~ q(z | x_S). For each
  S its expectation is at least the cross-entropy E[-log q~(x_notS | x_S)] of the model's
  cross-modal predictive q~ = int q(z | x_S) p(x_notS | z) dz (Jensen; the excess shrinks as K
  grows), which in turn is at least H(X_notS | X_S) (cross-entropy >= entropy). So it estimates
  Delta from above: it equals Delta when conditional generation matches the data conditionals
  and K -> infinity, and its excess over Delta is the model's cross-modal prediction error. As
  K -> infinity it is also a lower bound (Jensen) on the cross-modal reconstruction loss
  E_q(z|x_S)[-log p(x_notS | z)] inside the model's own objective, which Delta bounds from below
  (z depends on x_S only, so H(X_notS | Z) >= H(X_notS | X_S)).
- `elbo_gap`: the IWAE estimate of log p_theta(x) minus the stratified mixture ELBO at beta = 1
  (all components, not one sampled). The true gap is sum_S w_S KL(q(z | x_S) || p_theta(z | x))
  >= 0, the looseness of the model's bound against its *own* likelihood; the estimate converges
  to it from below as K grows (the IWAE estimate is a lower bound on log p_theta(x)). It is not
  bounded below by Delta in general: a decoder that can express the unpredictable part of
  x_notS as likelihood noise (on `synthetic`: fair coins on the private bits, z carrying only
  the class) lets every component's ELBO approach log p_theta(x) = -H(X), because the model's
  own likelihood then pays the same cross-modal cost. It can reflect Delta only where the
  decoders cannot do that, i.e. where modality-specific variation must pass through z. On
  `synthetic` it measures the Gaussian-posterior approximation gap instead, for any weighting
  (benchmarks/validate_discrepancy.py).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.distributions import Distribution, kl_divergence

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.errors import ConfigError
from mmbench.metrics.base import Metric
from mmbench.metrics.passes import EvalPass
from mmbench.metrics.likelihood import (
    Batch,
    conditional_log_likelihood,
    iwae_log_likelihood,
    restrict,
)
from mmbench.objectives.subsets import all_subsets, joint_subset, unimodal_subsets

Weighting = tuple[torch.Tensor, torch.Tensor]
"""(K, M) bool subset masks and (K,) mixture weights summing to one."""


def check_weighting(subsets: torch.Tensor, weights: torch.Tensor) -> Weighting:
    """Validated (bool subsets, float64 weights): non-empty subsets, weights >= 0 summing to 1."""
    subsets = torch.as_tensor(subsets).cpu().bool()
    weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
    if subsets.dim() != 2 or weights.shape != (len(subsets),):
        raise ConfigError(f"subsets must be (K, M) and weights (K,), not {tuple(subsets.shape)} and {tuple(weights.shape)}")
    if not subsets.any(1).all():
        raise ConfigError("a mixture component conditions on the empty subset")
    if (weights < 0).any() or abs(weights.sum().item() - 1.0) > 1e-6:
        raise ConfigError(f"mixture weights must be non-negative and sum to 1, not {weights.tolist()}")
    return subsets, weights


def uniform_weighting(subsets: torch.Tensor) -> Weighting:
    return check_weighting(subsets, torch.full((len(subsets),), 1.0 / len(subsets), dtype=torch.float64))


def mmvae_weighting(num_modalities: int) -> Weighting:
    """MMVAE: uniform over the M unimodal subsets."""
    return uniform_weighting(unimodal_subsets(num_modalities))


def mopoe_weighting(num_modalities: int) -> Weighting:
    """MoPoE-VAE: uniform over all 2^M - 1 non-empty subsets."""
    return uniform_weighting(all_subsets(num_modalities))


def joint_weighting(num_modalities: int) -> Weighting:
    """Joint-only ELBO (MVAE without sub-sampling): the full set alone, so Delta = 0."""
    return uniform_weighting(joint_subset(num_modalities))


def mixture_weighting(model: MultimodalVAE) -> Weighting | None:
    """The mixture a model optimises, as it declares through `MultimodalVAE.mixture_subsets` and
    `mixture_weights` (uniform if None); None when it declares none (its objective is then not a
    mixture ELBO over all modalities, so Delta is undefined for it)."""
    subsets = model.mixture_subsets
    if subsets is None:
        return None
    weights = model.mixture_weights
    return uniform_weighting(subsets) if weights is None else check_weighting(subsets, weights)


def closed_form_delta(private_entropies: Sequence[float], subsets: torch.Tensor, weights: torch.Tensor) -> float:
    """sum_S w_S sum_{m not in S} h_m, with h_m = H(X_m | X_S) for any non-empty S.

    That identity holds for data whose modalities are conditionally independent given a shared
    factor readable from every modality (e.g. `synthetic`, where h_m = log L_m nats).
    """
    subsets, weights = check_weighting(subsets, weights)
    h = torch.as_tensor(private_entropies, dtype=torch.float64)
    if h.shape != (subsets.shape[1],):
        raise ConfigError(f"{len(h)} private entropies for {subsets.shape[1]} modalities")
    return float((weights * ((~subsets).double() @ h)).sum())


def _kl_to_prior(proposal: Distribution, prior: Distribution, z: torch.Tensor) -> torch.Tensor:
    """(B,) KL(q || p) for a proposal of batch shape (1, B): closed form where torch has one
    (Gaussian posteriors), else a Monte Carlo estimate from the samples z (n, 1, B, D)."""
    try:
        return kl_divergence(proposal, prior)[0]
    except NotImplementedError:
        return (proposal.log_prob(z) - prior.log_prob(z)).mean(0)[0]


def stratified_elbo(model: MultimodalVAE, xs: Batch, weighting: Weighting, *, num_samples: int = 16) -> torch.Tensor:
    """(B,) sum_S w_S (E_q(z|x_S)[log p(X | z)] - KL(q(z | x_S) || p(z))), beta = 1, every
    component evaluated with `num_samples` latent samples (an unbiased estimate)."""
    subsets, weights = weighting
    device = next(x for x in xs if x is not None).device
    prior = model.prior()
    total = 0.0
    for subset, weight in zip(subsets, weights.tolist()):
        proposal = model.encode(restrict(xs, subset), subset[None].to(device))
        z = proposal.sample((num_samples,))
        reconstruction = model.log_likelihood(z[:, 0], xs).mean(0)
        total = total + weight * (reconstruction - _kl_to_prior(proposal, prior, z))
    return total


def elbo_gap(
    model: MultimodalVAE,
    xs: Batch,
    weighting: Weighting,
    *,
    num_samples: int = 1000,
    elbo_samples: int = 16,
    chunk_size: int = 50,
) -> torch.Tensor:
    """(B,) IWAE log p(x) (K = num_samples) minus the stratified mixture ELBO; see module doc."""
    log_px = iwae_log_likelihood(model, xs, num_samples=num_samples, chunk_size=chunk_size)
    return log_px - stratified_elbo(model, xs, weighting, num_samples=elbo_samples)


def conditional_entropy(
    model: MultimodalVAE, xs: Batch, weighting: Weighting, *, num_samples: int = 1000, chunk_size: int = 50
) -> torch.Tensor:
    """(B,) sum_S w_S -log (1/K) sum_k p(x_notS | z_k), z_k ~ q(z | x_S); see module doc."""
    subsets, weights = weighting
    log_q = conditional_log_likelihood(model, xs, subsets, num_samples=num_samples, chunk_size=chunk_size)
    return -(weights.to(log_q) @ log_q)


class Discrepancy(Metric):
    """Means of the per-tuple estimates: "discrepancy/elbo_gap", "discrepancy/conditional_entropy"
    (nats per tuple), plus "discrepancy/closed_form" when the data's entropies are known."""

    name = "discrepancy"
    version = 1
    higher_is_better = False
    label = "Δ"

    def __init__(self, closed_form: float | None = None):
        self.closed_form = closed_form
        super().__init__()

    def reset(self) -> None:
        self.sums = {"elbo_gap": 0.0, "conditional_entropy": 0.0}
        self.count = 0

    def update(self, gap: torch.Tensor, entropy: torch.Tensor) -> None:
        self.sums["elbo_gap"] += gap.double().sum().item()
        self.sums["conditional_entropy"] += entropy.double().sum().item()
        self.count += gap.shape[0]

    def compute(self) -> dict[str, float]:
        out = {f"{self.name}/{key}": value / self.count for key, value in self.sums.items()} if self.count else {}
        if self.closed_form is not None:
            out[f"{self.name}/closed_form"] = self.closed_form
        return out


@torch.no_grad()
def evaluate_discrepancy(
    model: MultimodalVAE,
    test: MultimodalSplit,
    *,
    weighting: Weighting | None = None,
    private_entropies: Sequence[float] | None = None,
    num_samples: int = 1000,
    elbo_samples: int = 16,
    chunk_size: int = 50,
    walk: EvalPass = EvalPass(),
) -> dict[str, float]:
    """Both estimators over `test` under the model's declared mixture (or `weighting`), and the
    closed form when `private_entropies` (e.g. a synthetic dataset's info) are given."""
    weighting = weighting or mixture_weighting(model)
    if weighting is None:
        raise ConfigError(f"{type(model).__name__} declares no mixture_subsets, so its discrepancy is undefined")
    metric = Discrepancy(None if private_entropies is None else closed_form_delta(private_entropies, *weighting))
    model.eval()
    for _, xs in walk.batches(test, "discrepancy"):
        gap = elbo_gap(model, xs, weighting, num_samples=num_samples, elbo_samples=elbo_samples, chunk_size=chunk_size)
        metric.update(gap, conditional_entropy(model, xs, weighting, num_samples=num_samples, chunk_size=chunk_size))
    return metric.compute()
