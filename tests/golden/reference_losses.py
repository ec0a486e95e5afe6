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
- MMVAE as Shi et al. published it: iffsid/mmvae 54398d75c144e9b6c06ef5c33a0ee9a162638b7d,
  src/objectives.py `m_iwae_looser` (log-mean-exp over K, mean over modalities), src/models/vae_mnist.py
  (`Enc`: Laplace scale softmax(h)·D + 1e-6), src/models/mmvae_mnist_svhn.py (`pz_params`: softmax(p)·D).
- MMVAE+: epalu/mmvaeplus d83dcf86c7d86e2c776610a561d437ceeaa6b5b3, src/objectives.py `_m_iwae` / `m_elbo`
  (lw per encoder m; log-mean-exp over K, mean over m), src/models/mmvae.py `forward` (cross-reconstruction
  with a fresh r(w_d) sample per (m, d)), src/models/vae_polymnist.py (`Enc`, `Dec`: Laplace scales
  softmax·D + 1e-6, r scales softmax(θ)·D, likelihood Laplace(loc, 0.75)), mmvae_polymnist.py (p(u) = Laplace(0, 1)).
- Unimodal VAE: the per-modality ELBO of the same recipe (Laplace 0.75, beta * KL to N(0, I)).
- MVTCAE: gr8joo/MVTCAE 8a0e23c6398566474cffc52b7ca19c0f2be6a856, run_epochs.py (the `tc` branch:
  rec_weight (M - alpha)/M, vib_weight 1 - alpha, cvib_weight alpha/M, `calc_klds_cvib`),
  utils/BaseMMVae.py `ivw_fusion` (product without a prior expert, 1e-8 added to each variance).
- mmJSD: thomassutter/mmjsd 29d925d640f1899e87dc5e1c5540315307b56279, divergence_measures/mm_div.py
  (`alpha_poe`, `calc_alphaJSD_modalities`: prior and unimodal experts weighted 1/(M+1)),
  networks/VAEtrimodalSVHNMNIST.py (`divergence_jsd`, `moe_fusion` with the prior's rows at 0).
- MMVM: thomassutter/mmvmvae 0bcc1f82323bbf5c83008bc65d3e3d834cafd558, mv_vaes/mv_mixedprior_vae.py
  `compute_loss`: each modality reconstructed from its own sample; beta * [alpha KL(q_m || N(0, I))
  + (1 - alpha)/M sum_m' KL(q_m || q_m')].
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
    sizes = {"shared_dim": 4, "private_dim": 4} if name == "mmvaeplus" else {"latent_dim": LATENT}
    model = create_model(name, spec, beta=BETA, **sizes, **options)
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


def ivw_poe(mus, logvars, weights=None):
    """gr8joo/MVTCAE `ivw_fusion` and thomassutter/mmjsd `alpha_poe`: a (weighted) product of
    Gaussian experts, 1e-8 added to each variance, no prior expert unless passed in."""
    weights = weights or [1.0] * len(mus)
    precision = torch.stack([w / (lv.exp() + 1e-8) for w, lv in zip(weights, logvars)])
    var = 1.0 / precision.sum(0)
    return var * (precision * torch.stack(mus)).sum(0), var.log()


def gaussian_kl(mu0, lv0, mu1, lv1):
    return kl_divergence(Normal(mu0, (0.5 * lv0).exp()), Normal(mu1, (0.5 * lv1).exp())).sum(-1)


def mvtcae_loss(model, batch, alpha: float):
    """Noise: one (B, D) draw for the sample of the joint posterior."""
    mus, logvars = experts(model, batch)
    mu, logvar = ivw_poe(mus, logvars)
    z = mu + (0.5 * logvar).exp() * torch.randn(BATCH, LATENT)
    nll = -sum(log_px(model, m, z, batch[m]) for m in range(M))
    kl_prior = kl_to_prior(mu, logvar)
    kl_cvib = sum(gaussian_kl(mu, logvar, mus[m], logvars[m]) for m in range(M))
    return ((M - alpha) / M * nll + BETA * ((1 - alpha) * kl_prior + alpha / M * kl_cvib)).mean()


def mmjsd_loss(model, batch):
    """Noise: the unimodal component of each data point (randint over M, size B), then one (B, D) draw."""
    mus, logvars = experts(model, batch)
    experts_mu = [torch.zeros_like(mus[0])] + mus
    experts_lv = [torch.zeros_like(logvars[0])] + logvars
    pi = [1.0 / (M + 1)] * (M + 1)
    f_mu, f_lv = ivw_poe(experts_mu, experts_lv, pi)
    js = sum(w * gaussian_kl(mu, lv, f_mu, f_lv) for w, mu, lv in zip(pi, experts_mu, experts_lv))
    component = torch.randint(M, (BATCH,)).tolist()
    eps = torch.randn(BATCH, LATENT)
    mu = torch.stack([mus[c][b] for b, c in enumerate(component)])
    logvar = torch.stack([logvars[c][b] for b, c in enumerate(component)])
    z = mu + (0.5 * logvar).exp() * eps
    rec = sum(log_px(model, m, z, batch[m]) for m in range(M))
    return -(rec - BETA * js).mean()


def mmvm_loss(model, batch, alpha: float):
    """Noise: one (M, B, D) draw, one sample per modality."""
    mus, logvars = experts(model, batch)
    eps = torch.randn(M, BATCH, LATENT)
    rec = sum(log_px(model, m, mus[m] + (0.5 * logvars[m]).exp() * eps[m], batch[m]) for m in range(M))
    regulariser = sum(alpha * kl_to_prior(mus[m], logvars[m])
                      + (1 - alpha) / M * sum(gaussian_kl(mus[m], logvars[m], mus[n], logvars[n]) for n in range(M))
                      for m in range(M))
    return -(rec - BETA * regulariser).mean()


def mmvae_shi_iwae_loss(model, batch, k: int):
    """iffsid/mmvae (commit 54398d7) `m_iwae_looser` as its README's paper runs use it: Laplace
    experts with scales softmax(h)·D + 1e-6 (`Constants.eta`), the learnt Laplace prior with
    scales softmax(p)·D (p = `_pz_params[1]`, zeros at the start). Noise: one Laplace draw of
    shape (K, M, B, D), as mmbench draws it."""
    mus, hs = experts(model, batch)
    scales = [torch.softmax(h, -1) * LATENT + 1e-6 for h in hs]
    z_all = Laplace(torch.stack(mus), torch.stack(scales)).rsample((k,))
    prior = Laplace(torch.zeros(LATENT), torch.softmax(model.prior_logits, -1) * LATENT)
    qs = [Laplace(mu, scale) for mu, scale in zip(mus, scales)]
    bounds = []
    for m in range(M):
        z = z_all[:, m]  # (K, B, D)
        lpz = prior.log_prob(z).sum(-1)
        lqz = torch.logsumexp(torch.stack([q.log_prob(z).sum(-1) for q in qs]), 0) - math.log(M)
        lpx = sum(log_px(model, d, z.reshape(-1, LATENT), batch[d].repeat(k, 1, 1, 1)).reshape(k, BATCH) for d in range(M))
        bounds.append(torch.logsumexp(lpz + lpx - lqz, 0) - math.log(k))
    return -torch.stack(bounds).mean(0).mean()


def mmvaeplus_loss(model, batch, k: int):
    """epalu/mmvaeplus `m_elbo` (K = 1) / `m_iwae` (K). Noise, in mmbench's order: one Laplace draw
    of z for all encoders (K, M, B, Dz), one of w (K, M, B, Dw), then r(w_d) per (source, target d != source)."""
    outs = [enc(x) for enc, x in zip(model.encoders, batch)]
    mu_z = torch.stack([o[0] for o in outs])
    s_z = torch.stack([torch.softmax(o[1], -1) * o[1].shape[-1] + 1e-6 for o in outs])
    mu_w = torch.stack([o[2] for o in outs])
    s_w = torch.stack([torch.softmax(o[3], -1) * o[3].shape[-1] + 1e-6 for o in outs])
    z_all, w_all = Laplace(mu_z, s_z).rsample((k,)), Laplace(mu_w, s_w).rsample((k,))
    dz, dw = mu_z.shape[-1], mu_w.shape[-1]
    p = Laplace(0.0, 1.0)
    lws = []
    for m in range(M):
        z, w = z_all[:, m], w_all[:, m]  # (K, B, .)
        lpu = p.log_prob(z).sum(-1) + p.log_prob(w).sum(-1)
        lqz = torch.logsumexp(torch.stack([Laplace(mu_z[j], s_z[j]).log_prob(z).sum(-1) for j in range(M)]), 0) - math.log(M)
        lqw = Laplace(mu_w[m], s_w[m]).log_prob(w).sum(-1)
        rec = 0.0
        for d in range(M):
            if d == m:
                private = w
            else:
                theta = model.aux_logits[d]
                private = Laplace(torch.zeros(dw), torch.softmax(theta, -1) * dw).rsample((k, BATCH))
            u = torch.cat([private, z], -1).reshape(-1, dw + dz)
            loc = model.decoders[d](u).base_dist.loc
            rec = rec + Laplace(loc, SCALE).log_prob(batch[d].repeat(k, 1, 1, 1)).sum((-3, -2, -1)).reshape(k, BATCH)
        lws.append(rec + BETA * (lpu - lqz - lqw))
    bound = torch.stack([torch.logsumexp(lw, 0) - math.log(k) for lw in lws]).mean(0)
    return -bound.mean()


CASES = {
    "unimodal": (dict(), unimodal_loss),
    "mvae": (dict(subsample=True), lambda model, batch: mvae_loss(model, batch, subsample=True)),
    "mvae-joint": (dict(subsample=False), lambda model, batch: mvae_loss(model, batch, subsample=False)),
    "mmvae": (dict(objective="elbo"), lambda model, batch: mixture_loss(model, batch, [[m] for m in range(M)], False)),
    "mmvae-iwae": (dict(objective="iwae", k=4), lambda model, batch: mmvae_iwae_loss(model, batch, k=4)),
    "mopoe": (dict(), lambda model, batch: mixture_loss(model, batch, subsets_by_size(), True)),
    "mmvae-shi": (dict(objective="iwae", k=4, posterior="laplace", learn_prior=True),
                  lambda model, batch: mmvae_shi_iwae_loss(model, batch, k=4)),
    "mmvaeplus": (dict(objective="elbo"), lambda model, batch: mmvaeplus_loss(model, batch, k=1)),
    "mmvaeplus-iwae": (dict(objective="iwae", k=3), lambda model, batch: mmvaeplus_loss(model, batch, k=3)),
    "mvtcae": (dict(), lambda model, batch: mvtcae_loss(model, batch, alpha=5 / 6)),
    "mmjsd": (dict(), mmjsd_loss),
    "mmvm": (dict(alpha=0.25), lambda model, batch: mmvm_loss(model, batch, alpha=0.25)),
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
