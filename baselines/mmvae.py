"""MMVAE (Shi et al., NeurIPS 2019): a uniform mixture of the unimodal experts.

Objectives: "elbo" (the stratified mixture ELBO, one sampled expert per data point for the
reconstruction), "iwae" and "dreg" (Shi et al.'s importance-weighted bound with K samples per
expert, the latter with doubly reparameterized gradients; both use beta = 1 by construction).
"""
from __future__ import annotations

import math

import torch

from mmbench import ConfigError, DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import (
    log_mixture_density,
    log_standard_normal,
    mixture_elbo,
    reparameterize,
    unimodal_subsets,
)

OBJECTIVES = ("elbo", "iwae", "dreg")


class MMVAE(ExpertsVAE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float, objective: str, k: int):
        if objective not in OBJECTIVES:
            raise ConfigError(f"mmvae objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        super().__init__(spec, latent_dim, beta)
        self.objective_name = objective
        self.k = k

    @property
    def mixture_subsets(self) -> torch.Tensor:
        """The mixture components of the objective (read by the discrepancy metrics)."""
        return unimodal_subsets(self.num_modalities)

    def encode(self, xs, subsets):
        return self.mixture_posterior(xs, subsets)

    def objective(self, xs):
        mu, logvar = self.experts(xs)
        if self.objective_name == "elbo":
            component = torch.randint(self.num_modalities, (mu.shape[1],), device=mu.device)
            return mixture_elbo(lambda z: self.log_likelihood(z, xs), mu, logvar, self.beta, component)
        return self._importance_weighted(xs, mu, logvar, dreg=self.objective_name == "dreg")

    def _importance_weighted(self, xs, mu, logvar, dreg: bool) -> torch.Tensor:
        """(1/M) sum_m log (1/K) sum_k p(x, z_mk) / q(z_mk | X), z_mk ~ q(z | x_m)."""
        z = reparameterize(mu.expand(self.k, *mu.shape), logvar.expand(self.k, *logvar.shape))  # (K, M, B, D)
        q_mu, q_logvar = (mu.detach(), logvar.detach()) if dreg else (mu, logvar)
        weights = torch.full((self.num_modalities,), 1.0 / self.num_modalities, device=mu.device)
        log_w = self.log_likelihood(z, xs) + log_standard_normal(z) - log_mixture_density(z, q_mu, q_logvar, weights)
        bound = (torch.logsumexp(log_w, 0) - math.log(self.k)).mean(0)  # (B,)
        if not dreg:
            return bound
        normalized = torch.softmax(log_w, 0).detach()
        if z.requires_grad:
            z.register_hook(lambda grad: normalized.unsqueeze(-1) * grad)
        surrogate = (normalized * log_w).sum(0).mean(0)
        return bound.detach() + surrogate - surrogate.detach()


@register_model("mmvae")
def mmvae(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5, objective: str = "elbo", k: int = 10) -> MMVAE:
    return MMVAE(spec, latent_dim, beta, objective, k)
