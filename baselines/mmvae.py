"""MMVAE (Shi et al., NeurIPS 2019): a uniform mixture of the unimodal experts.

Objectives: "elbo" (the stratified mixture ELBO, one sampled expert per data point for the
reconstruction: the MoPoE paper's MMVAE, `moe` in thomassutter/MoPoE, the default), "iwae" and
"dreg" (Shi et al.'s importance-weighted bound with K samples per expert, averaged over the
experts: iffsid/mmvae `m_iwae_looser` / `m_dreg_looser`; both use beta = 1 by construction).

MMVAE as Shi et al. published it (iffsid/mmvae README, "used in paper": `--obj dreg --looser
--K 30 --learn-prior`): `--set objective=dreg --set k=30 --set posterior=laplace --set learn_prior=true` and their
optimizer, `--set train.lr=0.001 --set train.amsgrad=true`. `posterior=laplace` makes the experts
Laplace with scale softmax(h)·D + 1e-6 over the latent dimensions (h the encoder's second head),
and the prior Laplace(0, softmax(p)·D) with p zeros (scale 1), learnt with `learn_prior`.

DReG: mmbench weights the encoder's gradient through z by the squared normalised weights w̃², as
Tucker et al.'s estimator has it (the hook is on the sampled z, which receives the gradient of
the w̃-weighted surrogate). iffsid/mmvae registers its hook on a tensor that never receives a
gradient, so there the encoder gradients are weighted by w̃ alone; mmbench computes the
estimator as published rather than that slip. The loss value of "dreg" is the IWAE bound.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Independent, Laplace, Normal

from mmbench import ConfigError, DatasetSpec, ExpertsVAE, register_model
from mmbench.objectives import (
    log_mixture_density,
    log_standard_normal,
    mixture_elbo,
    reparameterize,
    unimodal_subsets,
)

OBJECTIVES = ("elbo", "iwae", "dreg")


POSTERIORS = ("normal", "laplace")
LAPLACE_ETA = 1e-6  # iffsid/mmvae Constants.eta, added to every Laplace scale


class MMVAE(ExpertsVAE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, beta: float, objective: str, k: int,
                 posterior: str = "normal", learn_prior: bool = False):
        if objective not in OBJECTIVES:
            raise ConfigError(f"mmvae objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if posterior not in POSTERIORS:
            raise ConfigError(f"mmvae posterior must be one of {', '.join(POSTERIORS)}, not {posterior!r}")
        if posterior == "laplace" and objective == "elbo":
            raise ConfigError("mmvae posterior=laplace needs objective=iwae or dreg (as Shi et al. train it)")
        super().__init__(spec, latent_dim, beta)
        self.objective_name = objective
        self.k = k
        self.posterior = posterior
        self.learn_prior = learn_prior
        if posterior == "laplace" or learn_prior:
            self.prior_logits = nn.Parameter(torch.zeros(latent_dim), requires_grad=learn_prior)

    def expert_distribution(self, mu, logvar):
        if self.posterior == "normal":
            return super().expert_distribution(mu, logvar)
        return Independent(Laplace(mu, self._laplace_scale(logvar)), 1)

    @staticmethod
    def _laplace_scale(logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, -1) * logits.shape[-1] + LAPLACE_ETA

    def prior(self):
        """N(0, I), or Shi et al.'s prior with scales softmax(p)·D (learnt with learn_prior)."""
        if not hasattr(self, "prior_logits"):
            return super().prior()
        scale = torch.softmax(self.prior_logits, -1) * self.latent_dim
        family = Laplace if self.posterior == "laplace" else Normal
        return Independent(family(torch.zeros_like(scale), scale), 1)

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
        q_mu, q_logvar = (mu.detach(), logvar.detach()) if dreg else (mu, logvar)
        if self.posterior == "normal" and not self.learn_prior:
            z = reparameterize(mu.expand(self.k, *mu.shape), logvar.expand(self.k, *logvar.shape))  # (K, M, B, D)
            weights = torch.full((self.num_modalities,), 1.0 / self.num_modalities, device=mu.device)
            log_prior, log_q = log_standard_normal(z), log_mixture_density(z, q_mu, q_logvar, weights)
        else:
            z = self.expert_distribution(mu, logvar).rsample((self.k,))  # (K, M, B, D)
            per_expert = self.expert_distribution(q_mu, q_logvar).log_prob(z.unsqueeze(2))  # (K, M, M', B)
            log_prior, log_q = self.prior().log_prob(z), torch.logsumexp(per_expert, 2) - math.log(self.num_modalities)
        log_w = self.log_likelihood(z, xs) + log_prior - log_q
        bound = (torch.logsumexp(log_w, 0) - math.log(self.k)).mean(0)  # (B,)
        if not dreg:
            return bound
        normalized = torch.softmax(log_w, 0).detach()
        if z.requires_grad:
            z.register_hook(lambda grad: normalized.unsqueeze(-1) * grad)
        surrogate = (normalized * log_w).sum(0).mean(0)
        return bound.detach() + surrogate - surrogate.detach()


@register_model("mmvae")
def mmvae(spec: DatasetSpec, *, latent_dim: int = 512, beta: float = 2.5, objective: str = "elbo", k: int = 10,
          posterior: str = "normal", learn_prior: bool = False) -> MMVAE:
    return MMVAE(spec, latent_dim, beta, objective, k, posterior, learn_prior)
