"""MMVAE+ checked against the contract, its latent layout and a hand-assembled objective."""
import math

import pytest
import torch

import mmbench_baselines.mmvaeplus  # noqa: F401  (registers the model before its entry point exists)
from mmbench import MultimodalVAE, create_model
from mmbench.errors import ConfigError
from mmbench.objectives.subsets import all_subsets

DS, DP = 4, 3  # shared and private latent sizes of the tiny models


def _model(spec, **options):
    torch.manual_seed(0)
    return create_model("mmvaeplus", spec, shared_dim=DS, private_dim=DP, **options)


def _make_deterministic(model, logvar: float = -40.0):
    """Near-zero posterior variances (sigma ~ 2e-9 by default): every posterior sample is its
    mean; the experts' means are set apart (by 3 per coordinate) so the components' ELBOs differ."""
    with torch.no_grad():
        for m, enc in enumerate([*model.shared_encoders, *model.private_encoders]):
            enc.heads.mu.bias.fill_(3.0 * (m % 3) - 3.0)
            enc.heads.logvar.weight.zero_()
            enc.heads.logvar.bias.fill_(logvar)


@pytest.mark.parametrize("objective", ["elbo", "iwae", "dreg"])
def test_contract_shapes_and_gradients(objective, image_spec, image_batch):
    model = _model(image_spec, objective=objective, k=2)
    assert isinstance(model, MultimodalVAE) and model.latent_dim == DS + 3 * DP
    objective_value = model.objective(image_batch)
    assert objective_value.shape == (6,) and torch.isfinite(objective_value).all()
    model.loss(image_batch).backward()
    for module in (model.shared_encoders, model.private_encoders, model.decoders):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert model.aux_log_scale.grad is not None and model.aux_log_scale.grad.abs().sum() > 0
    subsets = all_subsets(3)
    q = model.encode(image_batch, subsets)
    assert q.batch_shape == (7, 6) and q.event_shape == (model.latent_dim,)
    assert model.decode(q.sample()[0], 2).mean.shape == (6, 3, 28, 28)
    generated = model.generate(image_batch, subsets)
    assert all(g.shape == (7, 6, 3, 28, 28) for g in generated)
    assert [s.shape for s in model.sample(4)] == [(4, 3, 28, 28)] * 3


def test_encoded_blocks_are_the_shared_mixture_and_private_experts_or_the_auxiliary_prior(image_spec, image_batch):
    model = _model(image_spec, aux_scale=3.0)
    with torch.no_grad():
        z_mu = torch.stack([enc(x)[0] for enc, x in zip(model.shared_encoders, image_batch)])
        w_mu, w_logvar = (torch.stack(t) for t in zip(*[enc(x) for enc, x in zip(model.private_encoders, image_batch)]))
    q = model.encode(image_batch, torch.tensor([[True, False, True], [False, True, False]]))
    mean, var = q.mean.detach(), q.variance.detach()
    assert torch.allclose(mean[0, :, :DS], (z_mu[0] + z_mu[2]) / 2, atol=1e-6)
    assert torch.allclose(mean[1, :, :DS], z_mu[1], atol=1e-6)
    for row, subset in enumerate(([0, 2], [1])):
        for m in range(3):
            block = slice(DS + m * DP, DS + (m + 1) * DP)
            if m in subset:  # the modality's own private expert
                assert torch.allclose(mean[row, :, block], w_mu[m], atol=1e-6)
                assert torch.allclose(var[row, :, block], w_logvar[m].exp(), rtol=1e-5)
            else:  # the auxiliary prior r(w_m) = N(0, 3^2), not p(w) = N(0, 1)
                assert torch.all(mean[row, :, block] == 0)
                assert torch.allclose(var[row, :, block], torch.full((6, DP), 9.0), rtol=1e-5)


def test_encode_refuses_a_subset_with_a_missing_modality(image_spec, image_batch):
    model = _model(image_spec)
    with pytest.raises(ValueError, match="missing"):
        model.encode([image_batch[0], None, image_batch[2]], torch.tensor([[True, True, False]]))


def test_cross_generation_ignores_the_targets_own_encoder(image_spec, image_batch):
    model = _model(image_spec)
    subset = torch.tensor([[True, False, False], [True, False, True]])

    def generate(xs):
        torch.manual_seed(5)
        return model.generate(xs, subset, targets=[1])[1]

    reference = generate(image_batch)
    assert torch.equal(reference, generate([image_batch[0], torch.rand(6, 3, 28, 28), image_batch[2]]))
    assert torch.equal(reference, generate([image_batch[0], None, image_batch[2]]))
    # controls: the conditioning modality matters, and x_1 matters once 1 is in the subset
    assert not torch.allclose(reference, generate([torch.rand(6, 3, 28, 28), *image_batch[1:]]))
    torch.manual_seed(5)
    with_target = model.generate(image_batch, torch.tensor([[True, True, False]]), targets=[1])[1]
    torch.manual_seed(5)
    perturbed = model.generate([image_batch[0], torch.rand(6, 3, 28, 28), image_batch[2]],
                               torch.tensor([[True, True, False]]), targets=[1])[1]
    assert not torch.allclose(with_target, perturbed)


def test_sample_draws_private_latents_from_p_w_not_the_auxiliary_prior(image_spec):
    model = _model(image_spec, aux_scale=5.0)
    prior = model.prior()
    assert prior.event_shape == (model.latent_dim,)
    assert torch.equal(prior.mean, torch.zeros(model.latent_dim)) and torch.equal(prior.stddev, torch.ones(model.latent_dim))


def _by_hand(model, xs, beta, logvar=-40.0):
    """(M, B) MMVAE+ ELBO of each component m for near-deterministic posteriors and r ~ delta_0:
    log p(x_m | z_m, w_m) + sum_{n != m} log p(x_n | z_m, 0)
    - beta * mean_j [KL(q(z|x_j) || p) - log M + KL(q(w_j|x_j) || p)]."""
    with torch.no_grad():
        z = torch.stack([enc(x)[0] for enc, x in zip(model.shared_encoders, xs)])
        w = torch.stack([enc(x)[0] for enc, x in zip(model.private_encoders, xs)])
        kl = lambda mu: 0.5 * (mu.pow(2) + math.exp(logvar) - 1 - logvar).sum(-1)
        regulariser = (kl(z) - math.log(3) + kl(w)).mean(0)
        rows = []
        for m in range(3):
            rec = sum(
                model.decoders[n](torch.cat([z[m], w[m] if n == m else torch.zeros_like(w[m])], -1)).log_prob(xs[n])
                for n in range(3)
            )
            rows.append(rec - beta * regulariser)
        return torch.stack(rows)


def test_elbo_equals_the_hand_assembled_bound_for_the_sampled_component(image_spec, image_batch):
    model = _model(image_spec, beta=1.5, aux_scale=1e-6)
    _make_deterministic(model)
    expected = _by_hand(model, image_batch, 1.5)  # (M, B)
    # the components' values lie further apart than the tolerance, so a match is unique
    assert (expected[:, None] - expected[None]).abs().add(torch.eye(3)[:, :, None] * 1e9).min() > 0.1
    with torch.no_grad():
        for component in ([0, 1, 2, 0, 1, 2], [2, 2, 1, 1, 0, 0]):
            c = torch.tensor(component)
            value = model.elbo(image_batch, model.experts(image_batch), c)
            assert torch.allclose(value, expected[c, torch.arange(6)], rtol=0, atol=5e-3)
        torch.manual_seed(3)
        value = model.objective(image_batch)
    matches = (value[None] - expected).abs() < 5e-3
    assert torch.all(matches.sum(0) == 1)  # each data point is exactly one component's ELBO


def test_elbo_cross_reconstruction_uses_the_auxiliary_prior(image_spec, image_batch):
    """With r wide, the cross-reconstructions see noisy private latents: the value moves away."""
    model = _model(image_spec, beta=1.5, aux_scale=1e-6)
    _make_deterministic(model)
    c = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        narrow = model.elbo(image_batch, model.experts(image_batch), c)
        model.aux_log_scale.fill_(math.log(3.0))
        wide = model.elbo(image_batch, model.experts(image_batch), c)
    assert not torch.allclose(narrow, wide, rtol=1e-5)


def test_iwae_with_one_sample_estimates_the_same_bound(image_spec, image_batch):
    """K = 1: mean over components of the hand-assembled bound, up to the O(1) noise of the
    sampled log q terms (their expectation is what the closed-form KL has), so compared on average.
    sigma = e^-5 keeps that noise representable next to means of order 1 in float32."""
    model = _model(image_spec, beta=1.5, aux_scale=1e-6, objective="iwae", k=1)
    _make_deterministic(model, logvar=-10.0)
    xs = [x.repeat(40, 1, 1, 1) for x in image_batch]  # 240 data points
    expected = _by_hand(model, image_batch, 1.5, logvar=-10.0).mean(0).repeat(40)
    torch.manual_seed(0)
    with torch.no_grad():
        value = model.objective(xs)
    # per point the noise is beta * (chi2_{DS+DP} - (DS+DP)) / 2 averaged over 3 components: sd ~ 1.6
    assert abs((value - expected).mean().item()) < 0.6
    assert (value - expected).std().item() < 4.0


def test_dreg_keeps_the_iwae_value_but_changes_gradients(image_spec, image_batch):
    values, grads = {}, {}
    for objective in ("iwae", "dreg"):
        model = _model(image_spec, objective=objective, k=3)
        torch.manual_seed(1)
        loss = model.loss(image_batch)
        loss.backward()
        values[objective] = loss.item()
        grads[objective] = model.private_encoders[0].heads.mu.weight.grad.clone()
    assert values["iwae"] == pytest.approx(values["dreg"], rel=1e-6)
    assert not torch.allclose(grads["iwae"], grads["dreg"])


def test_fixed_auxiliary_scale_gets_no_gradient(image_spec, image_batch):
    model = _model(image_spec, learn_aux_scale=False)
    model.loss(image_batch).backward()
    assert model.aux_log_scale.grad is None
    assert torch.allclose(model.aux_scale, torch.full((3, DP), 2.0))


@pytest.mark.parametrize("objective", ["elbo", "dreg"])
def test_a_few_adam_steps_reduce_the_loss(objective, image_spec, image_batch):
    model = _model(image_spec, objective=objective, k=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        torch.manual_seed(7)
        return model.loss(image_batch)

    with torch.no_grad():
        before = loss().item()
    for _ in range(5):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        assert loss().item() < before - 10  # about 40 to 55 nats in practice


@pytest.mark.parametrize("options, message", [({"objective": "iwea"}, "objective"), ({"aux_scale": 0.0}, "aux_scale")])
def test_bad_options_are_clear_errors(image_spec, options, message):
    with pytest.raises(ConfigError, match=message):
        _model(image_spec, **options)
