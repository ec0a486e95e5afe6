"""MMVM, MVTCAE and mmJSD: the invariants their papers define, checked on the models themselves
(their losses are pinned by tests/test_golden_losses.py)."""
from __future__ import annotations

import math

import torch
from torch.distributions import Independent, Normal

from mmbench import create_model
from mmbench.metrics.discrepancy import mixture_weighting
from mmbench.objectives import all_subsets, kl_normal, product_of_experts, unimodal_subsets


def _experts(model, batch):
    with torch.no_grad():
        return model.experts(batch)


def test_mmjsd_dynamic_prior_is_the_weighted_geometric_mean(image_spec, image_batch):
    """log f(z) - sum_k pi_k log q_k(z) does not depend on z: f is prop. to prod_k q_k^{pi_k}."""
    torch.manual_seed(0)
    model = create_model("mmjsd", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    experts_mu = torch.cat([torch.zeros_like(mu[:1]), mu])
    experts_logvar = torch.cat([torch.zeros_like(logvar[:1]), logvar])
    f_mu, f_logvar = model.dynamic_prior(experts_mu, experts_logvar)
    z = torch.randn(50, *f_mu.shape)
    log_f = Independent(Normal(f_mu, (0.5 * f_logvar).exp()), 1).log_prob(z)
    log_q = Independent(Normal(experts_mu, (0.5 * experts_logvar).exp()), 1).log_prob(z.unsqueeze(1))  # (50, 1+M, B)
    difference = log_f - log_q.mean(1)  # equal weights 1/(M+1)
    assert torch.allclose(difference, difference[:1].expand_as(difference), atol=1e-3)


def test_mmvm_regulariser_bounds_the_kl_to_the_mixture_of_unimodal_posteriors(image_spec, image_batch):
    """(1/M) sum_m' KL(q_m || q_m') >= KL(q_m || (1/M) sum_m' q_m') (Monte Carlo), and zero when
    all posteriors agree: the prior of each modality is the mixture of the unimodal posteriors."""
    torch.manual_seed(0)
    model = create_model("mmvm", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    bound = kl_normal(mu[:, None], logvar[:, None], mu[None], logvar[None]).mean(1)  # (M, B)
    q = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    z = q.sample((20000,))  # (S, M, B, D): z ~ q_m
    log_q = q.log_prob(z)
    log_mixture = torch.logsumexp(q.log_prob(z.unsqueeze(2)), dim=2) - math.log(len(mu))  # over m' of q_m'(z_m)
    exact = (log_q - log_mixture).mean(0)
    assert (bound >= exact - 0.05).all() and (bound > exact + 1e-3).any()
    same = kl_normal(mu[:1, None], logvar[:1, None], mu[:1][None], logvar[:1][None])
    assert same.abs().max() < 1e-5


def test_mvtcae_conditions_on_the_product_of_the_given_experts_without_a_prior(image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model("mvtcae", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    subsets = all_subsets(3)
    with torch.no_grad():
        posterior = model.encode(image_batch, subsets)
    expected_mu, expected_logvar = product_of_experts(mu, logvar, subsets, prior_expert=False)
    assert torch.allclose(posterior.mean, expected_mu, atol=1e-5)
    assert torch.allclose(posterior.variance, expected_logvar.exp(), atol=1e-5)


def test_which_models_declare_a_mixture(image_spec):
    """mmJSD sub-samples (its reconstruction is a mixture over the singletons); MVTCAE and MMVM do
    not, and the discrepancy metric learns that from the models, not from a list of names."""
    mmjsd = create_model("mmjsd", image_spec, latent_dim=4)
    subsets, weights = mixture_weighting(mmjsd)
    assert torch.equal(subsets, unimodal_subsets(3)) and torch.allclose(weights.double(), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert mixture_weighting(create_model("mvtcae", image_spec, latent_dim=4)) is None
    assert mixture_weighting(create_model("mmvm", image_spec, latent_dim=4)) is None


def test_regulariser_weights_are_options(image_spec):
    import pytest

    from mmbench import ConfigError

    assert create_model("mmvm", image_spec, latent_dim=4, beta=2.0, alpha=0.5).alpha == 0.5
    with pytest.raises(ConfigError, match="alpha"):
        create_model("mvtcae", image_spec, latent_dim=4, alpha=1.5)
