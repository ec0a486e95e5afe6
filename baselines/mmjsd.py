"""mmJSD (Sutter, Daunhawer & Vogt, NeurIPS 2020): a mixture-of-experts VAE regularised by a
Jensen-Shannon divergence towards a dynamic prior.

Reference: thomassutter/mmjsd (commit 29d925d; networks/VAEtrimodalSVHNMNIST.py `divergence_jsd`,
`moe_fusion`; divergence_measures/mm_div.py `alpha_poe`, `calc_alphaJSD_modalities`). With the
unimodal posteriors q_m = q(z | x_m), the prior q_0 = N(0, I) and weights pi_k = 1/(M+1), the
dynamic prior is their weighted geometric mean f = PoE_k q_k^{pi_k} and, per data point,

    objective = E_{m ~ U(1..M), z ~ q_m}[sum_d log p(x_d | z)] - beta * sum_{k=0..M} pi_k KL(q_k || f)

Every modality is reconstructed from one unimodal posterior's sample: a mixture ELBO over the
singletons, so the paper's bound applies (declared through `mixture_subsets`). Conditioning on
a subset S uses the uniform mixture of S's experts (as MoPoE's port does). Defaults as the
reference's runs: beta 2.5, latent 512 (its PolyMNIST port), no modality-specific latents.

Known deviations: the reference assigns the batch's rows to components in contiguous blocks,
mmbench draws one component per row at random (same expectation, as for MoPoE); the reference
adds 1e-8 to each variance inside the geometric mean. The PolyMNIST port in MoPoE/MVTCAE also
decodes 1/(M+1) of the rows from N(0, I) samples scored against the data; mmbench follows the
original, which gives the prior no reconstruction rows. Pinned by tests/test_golden_losses.py.
"""
from __future__ import annotations

import torch

from mmbench import DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import kl_normal, product_of_experts, reparameterize, select_component, unimodal_subsets


class MMJSD(ExpertsVAE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float):
        super().__init__(spec, latent_dim, beta)
        views = spec.num_modalities
        self.register_buffer("components", unimodal_subsets(views), persistent=False)
        self.register_buffer("prior_weights", torch.full((1, views + 1), 1.0 / (views + 1)), persistent=False)

    @property
    def mixture_subsets(self) -> torch.Tensor:
        """The mixture components of the objective (read by the discrepancy metrics)."""
        return self.components

    def encode(self, xs, subsets):
        return self.mixture_posterior(xs, subsets)

    def dynamic_prior(self, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1+M, B, D) experts (prior first) -> the weighted geometric mean f, (B, D) each."""
        f_mu, f_logvar = product_of_experts(mu, logvar, self.prior_weights)
        return f_mu[0], f_logvar[0]

    def objective(self, xs):
        mu, logvar = self.experts(xs)  # (M, B, D)
        zeros = torch.zeros_like(mu[:1])
        experts_mu, experts_logvar = torch.cat([zeros, mu]), torch.cat([zeros, logvar])
        f_mu, f_logvar = self.dynamic_prior(experts_mu, experts_logvar)
        js = (self.prior_weights[0, :, None] * kl_normal(experts_mu, experts_logvar, f_mu, f_logvar)).sum(0)
        component = torch.randint(self.num_modalities, (mu.shape[1],), device=mu.device)
        z = reparameterize(*select_component(mu, logvar, component))
        return self.log_likelihood(z, xs) - self.beta * js


@register_model("mmjsd")
def mmjsd(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5) -> MMJSD:
    return MMJSD(spec, latent_dim, beta)
