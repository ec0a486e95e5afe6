"""MVAE (Wu & Goodman, NeurIPS 2018): a product of experts with a standard-normal prior expert.

With `subsample=True` the objective adds the unimodal ELBOs to the joint ELBO (ELBO
sub-sampling); with `subsample=False` it is the joint ELBO only, the variant that Daunhawer et al.
show has no generative discrepancy.
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from mmbench import DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import joint_subset, kl_standard_normal, product_of_experts, reparameterize, unimodal_subsets


class MVAE(ExpertsVAE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float, subsample: bool):
        super().__init__(spec, latent_dim, beta)
        self.subsample = subsample
        m = spec.num_modalities
        terms = torch.cat([joint_subset(m), unimodal_subsets(m)]) if subsample else joint_subset(m)
        self.register_buffer("terms", terms, persistent=False)

    @property
    def mixture_subsets(self) -> torch.Tensor | None:
        """The joint-only objective is a one-component mixture ELBO; with sub-sampling it is none
        (its unimodal terms reconstruct only their own modality), so no discrepancy is defined."""
        return None if self.subsample else self.terms

    def encode(self, xs, subsets):
        mu, logvar = product_of_experts(*self.experts(xs), subsets.to(self.terms.device), prior_expert=True)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def objective(self, xs):
        """Joint ELBO, plus sum_m ELBO(x_m) when sub-sampling; each term reconstructs its subset."""
        mu, logvar = product_of_experts(*self.experts(xs), self.terms, prior_expert=True)  # (T, B, D)
        z = reparameterize(mu, logvar)
        total = -self.beta * kl_standard_normal(mu, logvar).sum(0)
        for m in range(self.num_modalities):
            rows = torch.nonzero(self.terms[:, m]).flatten()  # the terms that reconstruct x_m
            z_m = z[rows].reshape(-1, z.shape[-1])
            x = xs[m].repeat(len(rows), *([1] * (xs[m].dim() - 1)))
            total = total + self.decoders[m](z_m).log_prob(x).reshape(len(rows), -1).sum(0)
        return total


@register_model("mvae")
def mvae(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5, subsample: bool = True) -> MVAE:
    return MVAE(spec, latent_dim, beta, subsample)
