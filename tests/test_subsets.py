import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from mmbench.objectives.elbo import kl_standard_normal
from mmbench.objectives.subsets import (
    all_subsets, joint_subset, mean_product_kl, product_of_experts, product_of_experts_per_point, subset_name,
    unimodal_subsets,
)


def test_all_subsets_enumerates_every_nonempty_subset_once():
    masks = all_subsets(4)
    assert masks.shape == (15, 4)
    assert len({tuple(r.tolist()) for r in masks}) == 15
    assert masks.sum(1).tolist() == sorted(masks.sum(1).tolist())
    assert subset_name(masks[-1]) == "m0+m1+m2+m3"
    assert torch.equal(unimodal_subsets(3), torch.eye(3, dtype=torch.bool))
    assert joint_subset(3).all()


def test_product_of_two_gaussians_matches_closed_form():
    mu = torch.tensor([[[1.0]], [[-2.0]]])
    var = torch.tensor([[[0.5]], [[2.0]]])
    mean, logvar = product_of_experts(mu, var.log(), torch.tensor([[True, True]]))
    # N(1, .5) * N(-2, 2): precision 2 + .5 = 2.5, mean (2*1 + .5*-2) / 2.5 = 0.4
    assert torch.allclose(mean, torch.tensor(0.4))
    assert torch.allclose(logvar.exp(), torch.tensor(1 / 2.5))


def test_prior_expert_adds_unit_precision():
    mu = torch.tensor([[[3.0]]])
    mean, logvar = product_of_experts(mu, torch.zeros(1, 1, 1), torch.tensor([[True]]), prior_expert=True)
    assert torch.allclose(mean, torch.tensor(1.5)) and torch.allclose(logvar.exp(), torch.tensor(0.5))


def test_vectorized_products_equal_a_plain_loop():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    masks = all_subsets(4)
    for prior in (False, True):
        mean, lv = product_of_experts(mu, logvar, masks, prior_expert=prior)
        for k, mask in enumerate(masks):
            idx = np.flatnonzero(mask.numpy())
            precisions = [np.exp(-logvar[i].numpy()) for i in idx] + ([np.ones((5, 3))] if prior else [])
            means = [mu[i].numpy() for i in idx] + ([np.zeros((5, 3))] if prior else [])
            total = sum(precisions)
            expected_mean = sum(p * m for p, m in zip(precisions, means)) / total
            np.testing.assert_allclose(mean[k].numpy(), expected_mean, rtol=1e-12)
            np.testing.assert_allclose(lv[k].numpy(), -np.log(total), rtol=1e-12)


@pytest.mark.parametrize("prior", [False, True])
@pytest.mark.parametrize("rows", [1, 2, 64, None])
def test_mean_product_kl_equals_torch_distributions_over_a_loop(prior, rows):
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    masks = all_subsets(4)
    mean, lv = product_of_experts(mu, logvar, masks, prior_expert=prior)
    standard = Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    expected = torch.stack([kl_divergence(Independent(Normal(mean[k], (0.5 * lv[k]).exp()), 1), standard)
                            for k in range(len(masks))]).mean(0)
    torch.testing.assert_close(mean_product_kl(mu, logvar, masks, prior, rows), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("prior", [False, True])
def test_mean_product_kl_gradients_are_those_of_the_plain_composition(prior):
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    masks = all_subsets(3)
    assert torch.autograd.gradcheck(lambda a, b: mean_product_kl(a, b, masks, prior, 2), (mu, logvar))
    weights = torch.randn(4, generator=g, dtype=torch.float64)
    mean, lv = product_of_experts(mu, logvar, masks, prior_expert=prior)
    plain = (kl_standard_normal(mean, lv).mean(0) * weights).sum()
    fused = (mean_product_kl(mu, logvar, masks, prior, 2) * weights).sum()
    for a, b in zip(torch.autograd.grad(plain, (mu, logvar)), torch.autograd.grad(fused, (mu, logvar))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_per_point_product_is_the_chosen_row_of_all_products():
    g = torch.Generator().manual_seed(4)
    mu, logvar = torch.randn(2, 4, 5, 3, generator=g, dtype=torch.float64)
    masks = all_subsets(4)
    chosen = torch.tensor([0, 14, 7, 3, 9])
    mean, lv = product_of_experts(mu, logvar, masks)
    per_mean, per_lv = product_of_experts_per_point(mu, logvar, masks[chosen])
    torch.testing.assert_close(per_mean, mean[chosen, torch.arange(5)], rtol=1e-12, atol=0)
    torch.testing.assert_close(per_lv, lv[chosen, torch.arange(5)], rtol=1e-12, atol=0)
