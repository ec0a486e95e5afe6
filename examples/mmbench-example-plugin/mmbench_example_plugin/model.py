"""`example_poe`: a product-of-experts VAE without a prior expert, trained on the joint ELBO only.

It is the smallest useful multimodal VAE, written only against names `mmbench` exports:

- `mmbench.ExpertsVAE`, the `MultimodalVAE` base class with one Gaussian expert encoder and one
  standard decoder per modality (the baselines' networks, so a comparison differs in the posterior
  and objective, not in the networks), full-precision posterior arithmetic and a fast likelihood;
- `mmbench.objectives`, the ELBO pieces and the all-subsets-at-once Gaussian product of experts;
- `mixture_subsets`, the declaration that tells the discrepancy metric which mixture ELBO the
  objective is (here the joint one alone, so the paper's Delta is zero for it).

Unlike the MVAE baseline there is no standard-normal prior expert in the product and no ELBO
sub-sampling, so the unimodal posteriors are never trained on their own: expect good joint
reconstructions and weak cross-modal coherence.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch.distributions import Distribution, Independent, Normal

from mmbench import DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import joint_subset, kl_standard_normal, product_of_experts, reparameterize


class ExamplePoE(ExpertsVAE):
    """q(z | x_S) = prod_{m in S} q(z | x_m); objective E_q(z|X)[log p(X | z)] - beta KL(q(z|X) || p)."""

    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim, beta)
        # A buffer moves with the model between devices; not persistent, so it stays out of checkpoints.
        self.register_buffer("joint", joint_subset(spec.num_modalities), persistent=False)

    @property
    def mixture_subsets(self) -> torch.Tensor:
        """The objective is the joint ELBO alone: a one-component mixture over the full set."""
        return self.joint

    def encode(self, xs: Sequence[torch.Tensor | None], subsets: torch.Tensor) -> Distribution:
        mu, logvar = product_of_experts(*self.experts(xs), subsets.to(self.joint.device))
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def objective(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        mu, logvar = product_of_experts(*self.experts(xs), self.joint)  # (1, B, D)
        z = reparameterize(mu, logvar)
        return self.log_likelihood(z, xs)[0] - self.beta * kl_standard_normal(mu[0], logvar[0])


# The decorator makes `import mmbench_example_plugin.model` enough in a notebook; an installed
# package is found through the entry point alone. Both use the same name.
@register_model("example_poe")
def example_poe(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 1.0) -> ExamplePoE:
    """Keyword-only options with defaults become `--set` keys (`--set beta=2.5`)."""
    return ExamplePoE(spec, latent_dim, beta)
