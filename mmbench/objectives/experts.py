"""The experts base class: one Gaussian expert encoder and one standard decoder per modality.

Public (`mmbench.ExpertsVAE`): baselines and plugins subclass it, so they share the networks, the
full-precision posterior arithmetic and the fast image likelihood."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import DatasetSpec
from mmbench.nn import LaplaceDecoder, build_decoder, build_encoder
from mmbench.objectives.subsets import to_full_precision


class ExpertsVAE(MultimodalVAE):
    """A multimodal VAE whose posteriors are built from per-modality Gaussian experts."""

    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim)
        self.beta = beta
        self.encoders = nn.ModuleList(build_encoder(m, latent_dim) for m in spec.modalities)
        self.decoders = nn.ModuleList(build_decoder(m, latent_dim) for m in spec.modalities)

    def experts(self, xs: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, B, D) expert means and log-variances, fp32 even under autocast (the posterior
        arithmetic needs it); absent modalities get zeros (mask them out)."""
        outputs = [tuple(to_full_precision(t) for t in enc(x)) if x is not None else None for enc, x in zip(self.encoders, xs)]
        present = [o[0] for o in outputs if o is not None]
        if not present:
            raise ValueError("encode needs at least one modality")
        zeros = torch.zeros_like(present[0])
        mu = torch.stack([o[0] if o is not None else zeros for o in outputs])
        logvar = torch.stack([o[1] if o is not None else zeros for o in outputs])
        return mu, logvar

    def expert_distribution(self, mu: torch.Tensor, logvar: torch.Tensor) -> Distribution:
        """The experts' distribution from their parameters, Gaussian here (MMVAE's Laplace
        variant overrides it); batch shape of mu, event (latent_dim,)."""
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def mixture_posterior(self, xs: Sequence[torch.Tensor | None], subsets: torch.Tensor) -> Distribution:
        """q(z | x_S) as the uniform mixture of the experts in S (a single expert when |S| = 1),
        for every row of `subsets` (K, M): batch shape (K, B). How mixture-of-experts models
        (MMVAE, mmJSD, MMVM) condition on a subset."""
        mu, logvar = self.experts(xs)  # (M, B, D)
        subsets = subsets.to(mu.device)
        logits = torch.where(subsets, 0.0, -math.inf).unsqueeze(1).expand(-1, mu.shape[1], -1)
        shape = (len(subsets), *mu.permute(1, 0, 2).shape)  # (K, B, M, D)
        components = self.expert_distribution(mu.permute(1, 0, 2).expand(shape), logvar.permute(1, 0, 2).expand(shape))
        return MixtureSameFamily(Categorical(logits=logits), components)

    def decoder_latent(self, z: torch.Tensor, m: int) -> torch.Tensor:
        """The part of z that decoder m reads: all of it here (the unimodal VAEs give each decoder
        its own block). `decode` and the direct density of `log_likelihood` both go through it."""
        return z

    def decode(self, z: torch.Tensor, m: int):
        return self.decoders[m](self.decoder_latent(z, m))

    def log_likelihood(self, z: torch.Tensor, xs: Sequence[torch.Tensor], modalities: Sequence[int] | None = None) -> torch.Tensor:
        """sum_m log p(x_m | z) for latents (..., B, D), returns (..., B): Laplace images by their
        direct density (x broadcast over the samples, not repeated), other modalities as the base class does."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        total = torch.zeros(flat.shape[0], device=z.device)
        others = []
        for m in range(self.num_modalities) if modalities is None else modalities:
            if isinstance(self.decoders[m], LaplaceDecoder):  # direct density, x broadcast (not repeated)
                total = total + self.decoders[m].log_likelihood(self.decoder_latent(flat, m), xs[m])
            else:
                others.append(m)
        if others:
            total = total + super().log_likelihood(flat, xs, others).reshape(-1)
        return total.reshape(lead)
