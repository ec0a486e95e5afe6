"""Building blocks of multimodal ELBOs, shared by the baselines and open to plugins.

All functions work per data point (no reduction over the batch) so a caller can both average a
loss and report per-sample bounds (e.g. for the ELBO-gap estimator).
"""
from __future__ import annotations

import math

import torch


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One sample z = mu + sigma * eps, differentiable in mu and logvar."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over the last dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def kl_normal(mu0: torch.Tensor, logvar0: torch.Tensor, mu1: torch.Tensor, logvar1: torch.Tensor) -> torch.Tensor:
    """KL(N(mu0, exp(logvar0)) || N(mu1, exp(logvar1))) in closed form, summed over the last
    dimension; arguments broadcast (e.g. (1, B, D) against (M, B, D) gives (M, B))."""
    return 0.5 * (logvar1 - logvar0 + (logvar0.exp() + (mu0 - mu1).pow(2)) * torch.exp(-logvar1) - 1.0).sum(-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dimension."""
    return -0.5 * (
        (z - mu).pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi)
    ).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def select_component(
    mu: torch.Tensor, logvar: torch.Tensor, component: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick, for each data point b, the parameters of mixture component `component[b]`.

    mu, logvar: (K, B, D); component: (B,) long. Returns (B, D) each.
    """
    index = component.view(1, -1, 1).expand(1, mu.shape[1], mu.shape[2])
    return mu.gather(0, index).squeeze(0), logvar.gather(0, index).squeeze(0)


def log_mixture_density(
    z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """log sum_k w_k N(z; mu_k, var_k) for z (..., B, D), components (K, B, D), weights (K,)."""
    per_component = log_normal(z.unsqueeze(-3), mu, logvar)  # (..., K, B)
    return torch.logsumexp(per_component + weights.log().view(-1, 1), dim=-2)


def mixture_elbo(
    log_likelihood,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
    component: torch.Tensor | None = None,
) -> torch.Tensor:
    """ELBO of a uniform mixture of Gaussian posteriors, per data point, shape (B,).

    Computes sum_k (1/K) (E_{q_k}[log p(x | z)] - beta * KL(q_k || p)), the stratified bound that
    mixture-based models (MMVAE, MoPoE) optimise. With `component` (B,) given, the
    reconstruction uses one sampled component per data point (an unbiased estimate at 1/K of the
    decoder cost) while the closed-form KL still averages all components.

    Args:
        log_likelihood: maps latents (..., B, D) to log p(x | z) of shape (..., B).
        mu, logvar: (K, B, D) component parameters.
    """
    kl = kl_standard_normal(mu, logvar).mean(0)
    if component is None:
        return log_likelihood(reparameterize(mu, logvar)).mean(0) - beta * kl
    mu_c, logvar_c = select_component(mu, logvar, component)
    return log_likelihood(reparameterize(mu_c, logvar_c)) - beta * kl
