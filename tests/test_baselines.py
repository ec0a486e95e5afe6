"""Each baseline checked against an independent computation of its posterior and objective."""
import pytest
import torch
from torch.distributions import Normal

from mmbench import MultimodalVAE, create_model
from mmbench.objectives.subsets import all_subsets, unimodal_subsets

BASELINES = ["unimodal", "mvae", "mmvae", "mopoe"]


@pytest.mark.parametrize("name", BASELINES)
def test_contract_shapes_and_gradients(name, image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model(name, image_spec, latent_dim=8)
    assert isinstance(model, MultimodalVAE)
    objective = model.objective(image_batch)
    assert objective.shape == (6,) and torch.isfinite(objective).all()
    model.loss(image_batch).backward()
    assert all(p.grad is not None for p in model.encoders.parameters())
    subsets = all_subsets(3)
    q = model.encode(image_batch, subsets)
    assert q.batch_shape == (7, 6) and q.event_shape == (model.latent_dim,)
    generated = model.generate(image_batch, subsets)
    assert all(g.shape == (7, 6, 3, 28, 28) for g in generated)
    assert [s.shape for s in model.sample(4)] == [(4, 3, 28, 28)] * 3


def _experts(model, xs):
    return torch.stack([e(x)[0] for e, x in zip(model.encoders, xs)]), torch.stack([e(x)[1] for e, x in zip(model.encoders, xs)])


def test_mopoe_subset_posterior_is_the_product_of_its_experts(image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model("mopoe", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    q = model.encode(image_batch, torch.tensor([[True, False, True], [False, True, False]]))
    prec = (-logvar[0]).exp() + (-logvar[2]).exp()
    assert torch.allclose(q.mean[0], ((-logvar[0]).exp() * mu[0] + (-logvar[2]).exp() * mu[2]) / prec, atol=1e-5)
    assert torch.allclose(q.mean[1], mu[1], atol=1e-6)
    assert torch.allclose(q.variance[1], logvar[1].exp(), rtol=1e-5)


def test_mvae_posterior_includes_the_prior_expert(image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model("mvae", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    q = model.encode(image_batch, unimodal_subsets(3)[:1])
    prec = 1 + (-logvar[0]).exp()
    assert torch.allclose(q.mean[0], (-logvar[0]).exp() * mu[0] / prec, atol=1e-5)
    assert torch.allclose(q.variance[0], 1 / prec, rtol=1e-5)


def test_mmvae_posterior_is_a_uniform_mixture_of_experts(image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model("mmvae", image_spec, latent_dim=4)
    mu, logvar = _experts(model, image_batch)
    q = model.encode(image_batch, torch.tensor([[True, True, False]]))
    z = torch.randn(6, 4)
    expected = torch.logsumexp(torch.stack([Normal(mu[m], (0.5 * logvar[m]).exp()).log_prob(z).sum(-1) for m in (0, 1)]), 0) - torch.log(torch.tensor(2.0))
    assert torch.allclose(q.log_prob(z.unsqueeze(0))[0], expected, atol=1e-4)
    assert torch.allclose(q.mean[0], (mu[0] + mu[1]) / 2, atol=1e-6)


def test_mvae_objective_terms(image_spec, image_batch):
    """Joint-only MVAE objective = ELBO of the joint posterior (checked with near-zero noise)."""
    torch.manual_seed(0)
    model = create_model("mvae", image_spec, latent_dim=4, subsample=False, beta=1.0)
    with torch.no_grad():
        for enc in model.encoders:
            enc.heads.logvar.bias.fill_(30.0)  # experts have tiny precision: the joint is ~ prior
            enc.heads.logvar.weight.zero_()
    torch.manual_seed(1)
    value = model.objective(image_batch)
    torch.manual_seed(1)
    q = model.encode(image_batch, torch.ones(1, 3, dtype=torch.bool))
    z = q.mean[0] + q.stddev[0] * torch.randn(6, 4)
    rec = sum(model.decode(z, m).log_prob(image_batch[m]) for m in range(3))
    kl = torch.distributions.kl_divergence(Normal(q.mean[0], q.stddev[0]), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(value, rec - kl, rtol=1e-4)


def test_unimodal_cross_generation_ignores_other_modalities(image_spec, image_batch):
    torch.manual_seed(0)
    model = create_model("unimodal", image_spec, latent_dim=4)
    subset = torch.tensor([[True, False, False]])
    torch.manual_seed(5)
    a = model.generate(image_batch, subset)[1]
    torch.manual_seed(5)
    b = model.generate([torch.zeros_like(image_batch[0]), None, None], subset)[1]
    assert torch.allclose(a, b)


def test_mmvae_dreg_keeps_the_iwae_value_but_changes_gradients(image_spec, image_batch):
    values, grads = {}, {}
    for objective in ("iwae", "dreg"):
        torch.manual_seed(0)
        model = create_model("mmvae", image_spec, latent_dim=4, objective=objective, k=3)
        torch.manual_seed(1)
        loss = model.loss(image_batch)
        loss.backward()
        values[objective] = loss.item()
        grads[objective] = model.encoders[0].heads.mu.weight.grad.clone()
    assert values["iwae"] == pytest.approx(values["dreg"], rel=1e-6)
    assert not torch.allclose(grads["iwae"], grads["dreg"])


def test_unknown_option_is_a_clear_error(image_spec):
    from mmbench.errors import MMBenchError

    with pytest.raises(MMBenchError, match="no option"):
        create_model("mopoe", image_spec, gamma=1)
