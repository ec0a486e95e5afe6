"""Recompute the golden losses of tests/test_golden_losses.py from the reference implementations'
formulas, written out here in the references' own structure with torch.distributions and using
nothing from mmbench but the networks' forward passes (encoders -> (mu, logvar), decoder nets ->
Laplace loc). Run `python tests/golden/reference_losses.py` and paste what it prints.

Shared setting (`setting()`): 3 modalities of 3x28x28, latent 8, beta 2.5, batch 6 of uniform
pixels from torch.Generator seed 0, weights from torch.manual_seed(0) before the model is built,
noise from torch.manual_seed(1) before the loss. Each reference formula draws its noise in the
order mmbench does (stated per function), which is what "fixed noise" means here.

References (file, function, commit):
- MoPoE, MMVAE `moe`, joint-only MVAE `poe`: thomassutter/MoPoE 477a441ecb6c735a0b8af4d643fe3ac04c58171f,
  mmnist/networks/ConvNetworksImgCMNIST.py (networks; Laplace scale 0.75), utils/BaseMMVae.py
  (`poe_fusion` with the prior expert on the full set, `moe_fusion`), run_epochs.py (`basic_routine`,
  `calc_log_probs`, `calc_klds`: rec + beta * KL, each summed over dimensions and averaged over the batch).
- MVAE with ELBO sub-sampling: mhw32/multimodal-vae-public (Wu & Goodman), `elbo_loss` summed
  over the joint term and one term per single modality, each with the prior expert in the product.
- MMVAE IWAE: iffsid/mmvae, src/objectives.py `m_iwae`: per modality m, K samples of q(z | x_m),
  log w = log p(z) + sum_d log p(x_d | z) - log (1/M sum_m' q(z | x_m')); logsumexp over K minus
  log K, averaged over m (`m_iwae` sums over the batch; mmbench averages, so the loss is that / B).
- Unimodal VAE: the per-modality ELBO of the same recipe (Laplace 0.75, beta * KL to N(0, I)).
"""
from __future__ import annotations

import itertools
import math

import torch
from torch.distributions import Laplace, Normal, kl_divergence

LATENT, BETA, BATCH, M, SCALE = 8, 2.5, 6, 3, 0.75


def setting(name: str, **options):
    from mmbench import DatasetSpec, ModalitySpec, create_model

    spec = DatasetSpec("toy", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(M)), 10)
    g = torch.Generator().manual_seed(0)
    batch = [torch.rand(BATCH, 3, 28, 28, generator=g) for _ in range(M)]
    torch.manual_seed(0)
    model = create_model(name, spec, latent_dim=LATENT, beta=BETA, **options)
    return model, batch


def experts(model, batch):
    outs = [enc(x) for enc, x in zip(model.encoders, batch)]
    return [o[0] for o in outs], [o[1] for o in outs]


def log_px(model, m, z, x):
    """sum over pixels of log Laplace(x; loc = decoder(z), 0.75)."""
    return Laplace(model.decoders[m].net(z), SCALE).log_prob(x).sum((-3, -2, -1))


def kl_to_prior(mu, logvar):
    return kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)


def poe(mus, logvars, prior: bool):
    """thomassutter/MoPoE `poe`: precision-weighted product (with a N(0, I) expert if `prior`)."""
    if prior:
        mus = mus + [torch.zeros_like(mus[0])]
        logvars = logvars + [torch.zeros_like(logvars[0])]
    precision = torch.stack([(-lv).exp() for lv in logvars])
    var = 1.0 / precision.sum(0)
    return var * (precision * torch.stack(mus)).sum(0), var.log()


def unimodal_loss(model, batch):
    """Noise: one (M, B, D) standard normal draw."""
    mus, logvars = experts(model, batch)
    eps = torch.randn(M, BATCH, LATENT)
    total = 0.0
    for m in range(M):
        z = mus[m] + (0.5 * logvars[m]).exp() * eps[m]
        total = total + log_px(model, m, z, batch[m]) - BETA * kl_to_prior(mus[m], logvars[m])
    return -total.mean()


def mvae_loss(model, batch, subsample: bool):
    """Terms: the joint, then (sub-sampling) each single modality, each a product with the prior
    expert; each term reconstructs the modalities it holds. Noise: one (T, B, D) draw."""
    mus, logvars = experts(model, batch)
    terms = [list(range(M))] + ([[m] for m in range(M)] if subsample else [])
    eps = torch.randn(len(terms), BATCH, LATENT)
    total = 0.0
    for t, subset in enumerate(terms):
        mu, logvar = poe([mus[m] for m in subset], [logvars[m] for m in subset], prior=True)
        z = mu + (0.5 * logvar).exp() * eps[t]
        total = total + sum(log_px(model, m, z, batch[m]) for m in subset) - BETA * kl_to_prior(mu, logvar)
    return -total.mean()


def subsets_by_size():
    return [list(c) for k in range(1, M + 1) for c in itertools.combinations(range(M), k)]


def mixture_loss(model, batch, subsets, prior_on_full: bool):
    """MoPoE (subsets = all 2^M - 1, prior expert on the full set) and MMVAE `moe` (subsets = the
    singletons): KL averaged over the components; the reconstruction of every modality from z of
    one component per data point. Noise: the component of each data point (randint over the
    components, size B), then one (B, D) standard normal draw."""
    mus, logvars = experts(model, batch)
    params = [poe([mus[m] for m in s], [logvars[m] for m in s], prior=prior_on_full and len(s) == M) for s in subsets]
    kl = sum(kl_to_prior(mu, lv) for mu, lv in params) / len(subsets)
    component = torch.randint(len(subsets), (BATCH,))
    eps = torch.randn(BATCH, LATENT)
    mu = torch.stack([params[c][0][b] for b, c in enumerate(component.tolist())])
    logvar = torch.stack([params[c][1][b] for b, c in enumerate(component.tolist())])
    z = mu + (0.5 * logvar).exp() * eps
    rec = sum(log_px(model, m, z, batch[m]) for m in range(M))
    return -(rec - BETA * kl).mean()


def mmvae_iwae_loss(model, batch, k: int):
    """iffsid/mmvae `m_iwae` (beta = 1 by construction). Noise: one (K, M, B, D) draw."""
    mus, logvars = experts(model, batch)
    eps = torch.randn(k, M, BATCH, LATENT)
    qs = [Normal(mu, (0.5 * lv).exp()) for mu, lv in zip(mus, logvars)]
    bounds = []
    for m in range(M):
        z = mus[m] + (0.5 * logvars[m]).exp() * eps[:, m]  # (K, B, D)
        lpz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        lqz = torch.logsumexp(torch.stack([q.log_prob(z).sum(-1) for q in qs]), 0) - math.log(M)
        lpx = sum(log_px(model, d, z.reshape(-1, LATENT), batch[d].repeat(k, 1, 1, 1)).reshape(k, BATCH) for d in range(M))
        bounds.append(torch.logsumexp(lpz + lpx - lqz, 0) - math.log(k))
    return -torch.stack(bounds).mean(0).mean()


CASES = {
    "unimodal": (dict(), unimodal_loss),
    "mvae": (dict(subsample=True), lambda model, batch: mvae_loss(model, batch, subsample=True)),
    "mvae-joint": (dict(subsample=False), lambda model, batch: mvae_loss(model, batch, subsample=False)),
    "mmvae": (dict(objective="elbo"), lambda model, batch: mixture_loss(model, batch, [[m] for m in range(M)], False)),
    "mmvae-iwae": (dict(objective="iwae", k=4), lambda model, batch: mmvae_iwae_loss(model, batch, k=4)),
    "mopoe": (dict(), lambda model, batch: mixture_loss(model, batch, subsets_by_size(), True)),
}


def reference_loss(case: str) -> float:
    options, formula = CASES[case]
    model, batch = setting(case.split("-")[0], **options)
    torch.manual_seed(1)
    with torch.no_grad():
        return float(formula(model, batch))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for case in CASES:
        print(f'"{case}": {reference_loss(case)!r},')
