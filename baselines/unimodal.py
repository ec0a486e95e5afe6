"""Unimodal VAEs: one independent VAE per modality, the generative-quality reference.

Its latent is the concatenation of the M per-modality latents; a modality outside the
conditioning subset keeps its prior block, so cross-modal generation is (honestly) at chance.
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, Normal

from mmbench import DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import kl_standard_normal, reparameterize


class UnimodalVAEs(ExpertsVAE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim, beta)
        self.block = latent_dim
        self.latent_dim = latent_dim * spec.num_modalities
        self._prior_loc = torch.zeros(self.latent_dim)

    def encode(self, xs, subsets):
        mu, logvar = self.experts(xs)  # (M, B, d)
        keep = subsets.to(mu.device).unsqueeze(-1).unsqueeze(-1)  # (K, M, 1, 1)
        mu = torch.where(keep, mu, 0.0).permute(0, 2, 1, 3).flatten(2)  # (K, B, M*d)
        logvar = torch.where(keep, logvar, 0.0).permute(0, 2, 1, 3).flatten(2)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def decoder_latent(self, z, m):
        return z[..., m * self.block:(m + 1) * self.block]

    def objective(self, xs):
        mu, logvar = self.experts(xs)
        z = reparameterize(mu, logvar)
        total = -self.beta * kl_standard_normal(mu, logvar).sum(0)
        for m in range(self.num_modalities):
            total = total + self.decoders[m](z[m]).log_prob(xs[m])
        return total


@register_model("unimodal")
def unimodal(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5) -> UnimodalVAEs:
    return UnimodalVAEs(spec, latent_dim, beta)
