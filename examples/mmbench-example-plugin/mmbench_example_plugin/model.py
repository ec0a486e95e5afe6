"""`example_poe`: a product-of-experts VAE without a prior expert, trained on the joint ELBO only.

It is the smallest useful multimodal VAE, written only against mmbench's public API:

- `mmbench.MultimodalVAE`, the base class whose three methods the harness drives;
- `mmbench.nn.image`, the standard per-modality encoders and decoders, so a comparison with the
  baselines differs in the posterior and objective, not in the networks;
- `mmbench.objectives.elbo` and `mmbench.objectives.subsets`, the ELBO pieces and the all-subsets-at-once
  Gaussian product of experts.

Unlike the MVAE baseline there is no standard-normal prior expert in the product and no ELBO
sub-sampling, so the unimodal posteriors are never trained on their own: expect good joint
reconstructions and weak cross-modal coherence.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from mmbench import DatasetSpec, MultimodalVAE, register_model
from mmbench.nn.image import build_decoder, build_encoder
from mmbench.objectives.elbo import kl_standard_normal, reparameterize
from mmbench.objectives.subsets import joint_subset, product_of_experts


class ExamplePoE(MultimodalVAE):
    """q(z | x_S) = prod_{m in S} q(z | x_m); objective E_q(z|X)[log p(X | z)] - beta KL(q(z|X) || p)."""

    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim)
        self.beta = beta
        self.encoders = nn.ModuleList(build_encoder(m, latent_dim) for m in spec.modalities)
        self.decoders = nn.ModuleList(build_decoder(m, latent_dim) for m in spec.modalities)
        # A buffer moves with the model between devices; not persistent, so it stays out of checkpoints.
        self.register_buffer("joint", joint_subset(spec.num_modalities), persistent=False)

    def experts(self, xs: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, B, D) expert means and log-variances. An absent modality (None) gets a placeholder
        that the subset masks leave out: the contract only passes None where no subset needs it."""
        outputs = [encoder(x) if x is not None else None for encoder, x in zip(self.encoders, xs)]
        present = next((o for o in outputs if o is not None), None)
        if present is None:
            raise ValueError("encode needs at least one modality")
        placeholder = torch.zeros_like(present[0])
        mu = torch.stack([o[0] if o is not None else placeholder for o in outputs])
        logvar = torch.stack([o[1] if o is not None else placeholder for o in outputs])
        return mu, logvar

    def encode(self, xs: Sequence[torch.Tensor | None], subsets: torch.Tensor) -> Distribution:
        mu, logvar = product_of_experts(*self.experts(xs), subsets.to(self.joint.device))
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def decode(self, z: torch.Tensor, m: int) -> Distribution:
        return self.decoders[m](z)

    def objective(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        mu, logvar = product_of_experts(*self.experts(xs), self.joint)  # (1, B, D)
        mu, logvar = mu[0], logvar[0]
        z = reparameterize(mu, logvar)
        reconstruction = sum(decoder(z).log_prob(x) for decoder, x in zip(self.decoders, xs))
        return reconstruction - self.beta * kl_standard_normal(mu, logvar)


# The decorator makes `import mmbench_example_plugin.model` enough in a notebook; an installed
# package is found through the entry point alone. Both use the same name.
@register_model("example_poe")
def example_poe(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 1.0) -> ExamplePoE:
    """Keyword-only options with defaults become `--set` keys (`--set beta=2.5`)."""
    return ExamplePoE(spec, latent_dim, beta)
