"""MMVAE+ (Palumbo, Daunhawer & Vogt, ICLR 2023): MMVAE with modality-specific latents.

Each modality m has a shared latent z, whose posterior is the MMVAE mixture of the unimodal
experts q(z | x_m), and a private latent w_m with posterior q(w_m | x_m). Within the component of
modality m there is no posterior for the private latent w_n of another modality, so the cross-
reconstruction of x_n draws w_n from an auxiliary prior r(w_n) = N(0, diag(s_n^2)) with a wider,
learnable scale (p(w) itself stays N(0, I)). Noise from r cannot tell x_n's content, so the
decoder has to read the shared content from z; this is how MMVAE+ keeps the private latents from
becoming a shortcut that hurts coherence.

Objectives, with q(z | X) = (1/M) sum_m q(z | x_m) and w_n ~ r(w_n) for n != m:
  (1/M) sum_m E[log p(x_m | z, w_m) + sum_{n != m} log p(x_n | z, w_n)
                + beta (log p(z) + log p(w_m) - log q(z | X) - log q(w_m | x_m))],
- "elbo": one sampled component per data point for the reconstructions (as MMVAE's elbo), the
  regularisers averaged over all components with KL(q(z|x_m) || p), KL(q(w_m|x_m) || p) in closed
  form plus a one-sample estimate of log q(z | X) / q(z | x_m);
- "iwae" / "dreg": the paper's K-sample version (log-mean-exp over K inside the average over m,
  beta kept on the regulariser as in the paper), the latter with doubly reparameterized gradients.

For the mmbench contract the latent is the concatenation [z, w_1, ..., w_M]: `encode` gives a
mixture over the experts in S whose private blocks are q(w_m | x_m) for m in S and r(w_m) for m
outside S, so the generic `generate` cross-generates with the auxiliary prior, and the standard
normal prior over the concatenation makes the generic `sample` draw z ~ p(z), w_m ~ p(w).

Known deviations from the reference (epalu/mmvaeplus d83dcf8, read side by side; not yet fixed, so
this is not the published model): its posteriors are Laplace with scales softmax(logits)·D + 1e-6
and its priors p(z), p(w) a fixed Laplace(0, 1); its r(w_d) is Laplace(0, softmax(θ_d)·D), learnt,
starting equal to p(w), not wider; its `m_elbo` (K=1) scores all M components by Monte Carlo
instead of one sampled component with closed-form KLs; it cross-generates with one p(w) sample
shared by all targets and samples unconditionally with one shared [w, z]; its networks are ResNets;
it trains with Adam (amsgrad) lr 1e-3, batch 128, 150 epochs; its `dreg` detaches nothing and its
gradient hook never fires, so it computes the IWAE gradient, while mmbench's `dreg` is DReG.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from mmbench import ConfigError, DatasetSpec, MultimodalVAE, build_decoder, build_encoder, register_model
from mmbench.objectives import (
    kl_standard_normal,
    log_mixture_density,
    log_normal,
    log_standard_normal,
    reparameterize,
)

OBJECTIVES = ("elbo", "iwae", "dreg")

Experts = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class MMVAEPlus(MultimodalVAE):
    def __init__(
        self,
        spec: DatasetSpec,
        shared_dim: int,
        private_dim: int,
        beta: float,
        objective: str,
        k: int,
        aux_scale: float,
        learn_aux_scale: bool,
    ):
        if objective not in OBJECTIVES:
            raise ConfigError(f"mmvaeplus objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if aux_scale <= 0:
            raise ConfigError(f"mmvaeplus aux_scale must be positive, not {aux_scale}")
        super().__init__(spec, shared_dim + spec.num_modalities * private_dim)
        self.shared_dim = shared_dim
        self.private_dim = private_dim
        self.beta = beta
        self.objective_name = objective
        self.k = k
        # Two standard encoders per modality (as the paper's separate z and w branches), so the
        # networks stay those of mmbench.nn and comparisons differ only in the model.
        self.shared_encoders = nn.ModuleList(build_encoder(m, shared_dim) for m in spec.modalities)
        self.private_encoders = nn.ModuleList(build_encoder(m, private_dim) for m in spec.modalities)
        self.decoders = nn.ModuleList(build_decoder(m, shared_dim + private_dim) for m in spec.modalities)
        self.aux_log_scale = nn.Parameter(
            torch.full((spec.num_modalities, private_dim), math.log(aux_scale)), requires_grad=learn_aux_scale
        )

    @property
    def aux_scale(self) -> torch.Tensor:
        """(M, private_dim) standard deviations of the auxiliary priors r(w_m)."""
        return self.aux_log_scale.exp()

    def experts(self, xs: Sequence[torch.Tensor | None]) -> Experts:
        """(M, B, .) means and log-variances of q(z | x_m), then of q(w_m | x_m); zeros where x_m
        is absent (mask them out)."""
        if all(x is None for x in xs):
            raise ValueError("encode needs at least one modality")
        shared = [enc(x) if x is not None else None for enc, x in zip(self.shared_encoders, xs)]
        private = [enc(x) if x is not None else None for enc, x in zip(self.private_encoders, xs)]
        return (*_stack(shared), *_stack(private))

    def encode(self, xs, subsets):
        """q(z, w_1..w_M | x_S): mixture over the experts j in S of q(z | x_j) times the private
        blocks, q(w_m | x_m) for m in S and r(w_m) otherwise (the same in every component)."""
        z_mu, z_logvar, w_mu, w_logvar = self.experts(xs)
        subsets = subsets.to(z_mu.device)
        present = torch.tensor([x is not None for x in xs], device=subsets.device)
        if (subsets & ~present).any():
            raise ValueError("a subset holds a modality that is missing from the inputs")
        k, (m, b, _) = len(subsets), z_mu.shape
        inside = subsets[:, :, None, None]  # (K, M, 1, 1)
        private_loc = torch.where(inside, w_mu, 0.0)  # (K, M, B, dp)
        private_scale = torch.where(inside, torch.exp(0.5 * w_logvar), self.aux_scale[:, None, :])
        private_loc, private_scale = (t.permute(0, 2, 1, 3).flatten(2).unsqueeze(2).expand(-1, -1, m, -1)
                                      for t in (private_loc, private_scale))  # (K, B, M, M*dp)
        shared_loc = z_mu.permute(1, 0, 2).expand(k, -1, -1, -1)  # (K, B, M, ds): component j = expert j
        shared_scale = torch.exp(0.5 * z_logvar).permute(1, 0, 2).expand(k, -1, -1, -1)
        components = Independent(
            Normal(torch.cat([shared_loc, private_loc], -1), torch.cat([shared_scale, private_scale], -1)), 1
        )
        logits = torch.where(subsets, 0.0, -math.inf).unsqueeze(1).expand(-1, b, -1)
        return MixtureSameFamily(Categorical(logits=logits), components)

    def decode(self, z, m):
        """p(x_m | z, w_m) from the shared block and modality m's private block."""
        start = self.shared_dim + m * self.private_dim
        return self.decoders[m](torch.cat([z[..., :self.shared_dim], z[..., start:start + self.private_dim]], -1))

    def objective(self, xs):
        experts = self.experts(xs)
        if self.objective_name == "elbo":
            component = torch.randint(self.num_modalities, (experts[0].shape[1],), device=experts[0].device)
            return self.elbo(xs, experts, component)
        return self._importance_weighted(xs, experts, dreg=self.objective_name == "dreg")

    def elbo(self, xs: Sequence[torch.Tensor], experts: Experts, component: torch.Tensor) -> torch.Tensor:
        """(B,) one-sample MMVAE+ ELBO: reconstructions from component `component` (B,) long, the
        beta-weighted regulariser averaged over all M components."""
        z_mu, z_logvar, w_mu, w_logvar = experts
        z = reparameterize(z_mu, z_logvar)  # (M, B, ds): one draw from each expert
        w = reparameterize(w_mu, w_logvar)
        uniform = torch.full((self.num_modalities,), 1.0 / self.num_modalities, device=z.device)
        # E_{q(z|x_m)}[log q(z|X) - log p(z)] = KL(q(z|x_m) || p) + E[log q(z|X) / q(z|x_m)]
        mixture_gap = log_mixture_density(z, z_mu, z_logvar, uniform) - log_normal(z, z_mu, z_logvar)
        regulariser = kl_standard_normal(z_mu, z_logvar) + mixture_gap + kl_standard_normal(w_mu, w_logvar)
        index = component.view(1, -1, 1)
        z_c = z.gather(0, index.expand(1, -1, z.shape[-1])).squeeze(0)
        w_c = w.gather(0, index.expand(1, -1, w.shape[-1])).squeeze(0)
        return self._reconstruction(xs, z_c, w_c, component) - self.beta * regulariser.mean(0)

    def _importance_weighted(self, xs: Sequence[torch.Tensor], experts: Experts, dreg: bool) -> torch.Tensor:
        """(1/M) sum_m log (1/K) sum_k w_mk with (z, w_m)_k ~ q(z | x_m) q(w_m | x_m)."""
        k, m = self.k, self.num_modalities
        z_mu, z_logvar, w_mu, w_logvar = experts
        z = reparameterize(z_mu.expand(k, *z_mu.shape), z_logvar.expand(k, *z_logvar.shape))  # (K, M, B, ds)
        w = reparameterize(w_mu.expand(k, *w_mu.shape), w_logvar.expand(k, *w_logvar.shape))
        if dreg:
            z_mu, z_logvar, w_mu, w_logvar = (t.detach() for t in experts)
        uniform = torch.full((m,), 1.0 / m, device=z.device)
        log_prior = log_standard_normal(z) + log_standard_normal(w)
        log_posterior = log_mixture_density(z, z_mu, z_logvar, uniform) + log_normal(w, w_mu, w_logvar)
        own = torch.arange(m, device=z.device).view(m, 1)
        log_w = self._reconstruction(xs, z, w, own) + self.beta * (log_prior - log_posterior)  # (K, M, B)
        bound = (torch.logsumexp(log_w, 0) - math.log(k)).mean(0)
        if not dreg:
            return bound
        normalized = torch.softmax(log_w, 0).detach()
        if z.requires_grad:
            for sample in (z, w):
                sample.register_hook(lambda grad: normalized.unsqueeze(-1) * grad)
        surrogate = (normalized * log_w).sum(0).mean(0)
        return bound.detach() + surrogate - surrogate.detach()

    def _reconstruction(self, xs: Sequence[torch.Tensor], z: torch.Tensor, w: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """sum_n log p(x_n | z, w_n) for latents (..., B, .) of the components `own` (broadcast
        to (..., B)): w_n is the posterior draw `w` where n == own, a draw from r(w_n) elsewhere."""
        total = torch.zeros(z.shape[:-1], device=z.device)
        for n in range(self.num_modalities):
            w_n = torch.where((own == n).unsqueeze(-1), w, self.aux_scale[n] * torch.randn_like(w))
            total = total + self._log_likelihood(n, torch.cat([z, w_n], -1), xs[n])
        return total

    def _log_likelihood(self, n: int, latent: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x_n | latent) for latents (..., B, ds + dp); returns (..., B)."""
        lead = latent.shape[:-1]
        flat = latent.reshape(-1, latent.shape[-1])
        target = x.expand(*lead[:-1], *x.shape).reshape(flat.shape[0], *x.shape[1:])
        return self.decoders[n](flat).log_prob(target).reshape(lead)


def _stack(outputs: list[tuple[torch.Tensor, torch.Tensor] | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, B, d) means and log-variances from per-modality outputs, zeros for absent ones."""
    zeros = torch.zeros_like(next(o for o in outputs if o is not None)[0])
    return (torch.stack([o[0] if o is not None else zeros for o in outputs]),
            torch.stack([o[1] if o is not None else zeros for o in outputs]))


@register_model("mmvaeplus")
def mmvaeplus(
    spec: DatasetSpec,
    *,
    shared_dim: int = 32,
    private_dim: int = 32,
    beta: float = 2.5,
    objective: str = "elbo",
    k: int = 10,
    aux_scale: float = 2.0,
    learn_aux_scale: bool = True,
) -> MMVAEPlus:
    """`aux_scale`: initial standard deviation of r(w_m) (p(w) has 1), learnt unless
    `learn_aux_scale` is false (the authors' code learns it)."""
    return MMVAEPlus(spec, shared_dim, private_dim, beta, objective, k, aux_scale, learn_aux_scale)
