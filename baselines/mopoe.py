"""MoPoE-VAE (Sutter et al., ICLR 2021): a uniform mixture over the products of experts of all
2^M - 1 non-empty subsets of modalities.

Reference: thomassutter/MoPoE (commit 477a441), `BaseMMVae` with `--method joint_elbo`; its loss
is pinned by tests/test_golden_losses.py. Known deviation, which leaves the objective's
expectation unchanged: the reference assigns the batch's data points to subsets in contiguous
blocks (`mixture_component_selection`), mmbench draws one subset per data point at random. Both
average the closed-form KL over all subsets (`calc_group_divergence_moe` there).
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from mmbench import DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import (
    all_subsets,
    mean_product_kl,
    product_of_experts,
    product_of_experts_per_point,
    reparameterize,
)


class MoPoE(ExpertsVAE):
    """q(z | X) = 1/K sum_S PoE({q(z | x_m)}_{m in S}); the PoE of S alone is q(z | x_S).

    As in the reference (thomassutter/MoPoE, `BaseMMVae.poe_fusion`), the product over the full
    set of modalities also multiplies in the N(0, I) prior expert; smaller subsets do not."""

    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim, beta)
        self.register_buffer("components", all_subsets(spec.num_modalities), persistent=False)
        self.register_buffer("component_prior", self.components.all(1), persistent=False)

    @property
    def mixture_subsets(self) -> torch.Tensor:
        """The mixture components of the objective (read by the discrepancy metrics)."""
        return self.components

    def encode(self, xs, subsets):
        subsets = subsets.to(self.components.device)
        mu, logvar = product_of_experts(*self.experts(xs), subsets, prior_expert=subsets.all(1))
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def objective(self, xs):
        """The stratified mixture ELBO: the KL averaged over all subsets in closed form, the
        reconstruction from one sampled subset per data point (unbiased, at 1/K of the decoder
        cost). Neither forms the (K, B, D) products of all subsets."""
        mu, logvar = self.experts(xs)
        component = torch.randint(len(self.components), (mu.shape[1],), device=mu.device)
        mu_c, logvar_c = product_of_experts_per_point(mu, logvar, self.components[component], self.component_prior[component])
        kl = mean_product_kl(mu, logvar, self.components, self.component_prior)
        return self.log_likelihood(reparameterize(mu_c, logvar_c), xs) - self.beta * kl


@register_model("mopoe")
def mopoe(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5) -> MoPoE:
    return MoPoE(spec, latent_dim, beta)
