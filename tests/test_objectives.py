import math

import torch
from torch.distributions import Normal, kl_divergence

from mmbench.objectives.elbo import kl_standard_normal, log_mixture_density, log_normal, mixture_elbo, select_component


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 4, generator=g), torch.randn(7, 4, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl_standard_normal(mu, logvar), expected, atol=1e-6)


def test_log_normal_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    z, mu, logvar = (torch.randn(5, 3, generator=g) for _ in range(3))
    expected = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(log_normal(z, mu, logvar), expected, atol=1e-5)


def test_log_mixture_density_is_log_of_weighted_sum():
    g = torch.Generator().manual_seed(2)
    mu, logvar = torch.randn(3, 4, 2, generator=g), torch.randn(3, 4, 2, generator=g)
    z = torch.randn(4, 2, generator=g)
    w = torch.tensor([0.2, 0.3, 0.5])
    dens = sum(w[k] * log_normal(z, mu[k], logvar[k]).exp() for k in range(3))
    assert torch.allclose(log_mixture_density(z, mu, logvar, w), dens.log(), atol=1e-5)


def test_select_component_picks_per_data_point():
    mu = torch.arange(2 * 3 * 1.0).view(2, 3, 1)
    picked, _ = select_component(mu, mu, torch.tensor([1, 0, 1]))
    assert picked.flatten().tolist() == [3.0, 1.0, 5.0]


def test_mixture_elbo_tiny_case_by_hand():
    """Two components, one data point, D = 1, near-deterministic posteriors, log p(x|z) = 2z + 1."""
    mu = torch.tensor([[[0.5]], [[-1.0]]])
    logvar = torch.full_like(mu, -40.0)  # sigma ~ 2e-9: the sample is the mean
    beta = 2.0
    # E_q[log p] per component: 2*0.5+1 = 2 and 2*-1+1 = -1.
    # KL(N(m, e^-40) || N(0,1)) = 0.5 (m^2 + e^-40 - 1 + 40): 19.625 and 20.0.
    kl = [0.5 * (0.25 + math.exp(-40) - 1 + 40), 0.5 * (1.0 + math.exp(-40) - 1 + 40)]
    expected = 0.5 * (2 - beta * kl[0]) + 0.5 * (-1 - beta * kl[1])
    loglik = lambda z: 2 * z.squeeze(-1) + 1
    assert math.isclose(mixture_elbo(loglik, mu, logvar, beta).item(), expected, rel_tol=1e-6)
    # with one sampled component the reconstruction is that component's, the KL still averaged
    sampled = mixture_elbo(loglik, mu, logvar, beta, component=torch.tensor([1]))
    assert math.isclose(sampled.item(), -1 - beta * (kl[0] + kl[1]) / 2, rel_tol=1e-6)


def test_sampled_mixture_elbo_is_unbiased():
    torch.manual_seed(0)
    mu = torch.tensor([[[0.3, -0.2]], [[1.0, 0.4]], [[-0.7, 0.1]]]).expand(3, 4000, 2)
    logvar = torch.tensor([[[-1.0, 0.0]], [[0.2, -0.5]], [[0.0, 0.0]]]).expand(3, 4000, 2)
    loglik = lambda z: -(z - 0.5).pow(2).sum(-1)
    stratified = mixture_elbo(loglik, mu, logvar, 1.0).mean()
    sampled = mixture_elbo(loglik, mu, logvar, 1.0, component=torch.randint(3, (4000,))).mean()
    assert abs(stratified - sampled) < 0.05
