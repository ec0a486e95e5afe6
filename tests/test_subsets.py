import numpy as np
import torch

from mmbench.subsets import all_subsets, joint_subset, product_of_experts, subset_name, unimodal_subsets


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
