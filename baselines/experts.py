"""Shared machinery of the baselines: one Gaussian expert encoder and one decoder per modality."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mmbench import DatasetSpec, MultimodalVAE
from mmbench.networks import LaplaceDecoder, build_decoder, build_encoder
from mmbench.subsets import to_full_precision


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

    def decode(self, z: torch.Tensor, m: int):
        return self.decoders[m](z)

    def log_likelihood(self, z: torch.Tensor, xs: Sequence[torch.Tensor], modalities: Sequence[int] | None = None) -> torch.Tensor:
        """sum_m log p(x_m | z) for latents (..., B, D); returns (..., B)."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        total = torch.zeros(flat.shape[0], device=z.device)
        for m in range(self.num_modalities) if modalities is None else modalities:
            x, decoder = xs[m], self.decoders[m]
            if isinstance(decoder, LaplaceDecoder):  # direct density, x broadcast (not repeated)
                total = total + decoder.log_likelihood(flat, x)
                continue
            repeats = flat.shape[0] // x.shape[0]
            target = x.repeat(repeats, *([1] * (x.dim() - 1))) if repeats > 1 else x
            total = total + decoder(flat).log_prob(target)
        return total.reshape(lead)
