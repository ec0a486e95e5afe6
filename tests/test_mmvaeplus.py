"""MMVAE+ as published (epalu/mmvaeplus): the contract, its latent layout, the reference's
distributions, generation and recipe (its loss is pinned by tests/test_golden_losses.py)."""
import pytest
import torch

from mmbench import DatasetSpec, ModalitySpec, MultimodalVAE, create_model
from mmbench.errors import ConfigError
from mmbench.objectives.subsets import all_subsets
from mmbench.training.config import resolve_config

DS, DP = 4, 3  # shared and private latent sizes of the tiny models


def _model(spec, **options):
    torch.manual_seed(0)
    return create_model("mmvaeplus", spec, shared_dim=DS, private_dim=DP, **{"networks": "shared", **options})


@pytest.mark.parametrize("objective", ["elbo", "iwae", "dreg"])
def test_contract_shapes_and_gradients(objective, image_spec, image_batch):
    model = _model(image_spec, objective=objective, k=2)
    assert isinstance(model, MultimodalVAE) and model.latent_dim == DS + 3 * DP
    objective_value = model.objective(image_batch)
    assert objective_value.shape == (6,) and torch.isfinite(objective_value).all()
    model.loss(image_batch).backward()
    for module in (model.encoders, model.decoders):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert model.aux_logits.grad is not None and model.aux_logits.grad.abs().sum() > 0  # r(w) is learnt
    subsets = all_subsets(3)
    q = model.encode(image_batch, subsets)
    assert q.batch_shape == (7, 6) and q.event_shape == (model.latent_dim,)
    assert model.decode(q.sample()[0], 2).mean.shape == (6, 3, 28, 28)
    assert all(g.shape == (7, 6, 3, 28, 28) for g in model.generate(image_batch, subsets))
    assert [s.shape for s in model.sample(4)] == [(4, 3, 28, 28)] * 3


def test_posteriors_priors_and_the_auxiliary_prior_are_the_references_laplaces(image_spec, image_batch):
    model = _model(image_spec)
    with torch.no_grad():
        mu_z, s_z, mu_w, s_w = model.experts(image_batch)
    assert torch.allclose(s_z.sum(-1), torch.full(s_z.shape[:2], DS * (1 + 1e-6)))  # softmax·D + eta: mean scale 1
    assert torch.allclose(s_w.sum(-1), torch.full(s_w.shape[:2], DP * (1 + 1e-6)))
    assert isinstance(model.prior().base_dist, torch.distributions.Laplace) and torch.equal(model.prior().base_dist.scale, torch.ones(DS + 3 * DP))
    assert torch.allclose(model.aux_prior(1).scale, torch.ones(DP))  # r(w) starts equal to p(w)
    q = model.encode(image_batch, torch.tensor([[True, False, True], [False, True, False]]))
    mean, var = q.mean.detach(), q.variance.detach()
    assert torch.allclose(mean[0, :, :DS], (mu_z[0] + mu_z[2]) / 2, atol=1e-6)
    for row, subset in enumerate(([0, 2], [1])):
        for m in range(3):
            block = slice(DS + m * DP, DS + (m + 1) * DP)
            if m in subset:  # the modality's own private posterior
                assert torch.allclose(mean[row, :, block], mu_w[m], atol=1e-6)
                assert torch.allclose(var[row, :, block], 2 * s_w[m] ** 2, atol=1e-5)
            else:  # p(w) = Laplace(0, 1): variance 2
                assert torch.allclose(mean[row, :, block], torch.zeros(6, DP)) and torch.allclose(var[row, :, block], torch.full((6, DP), 2.0))


def _twin_decoders(model):
    """Give modalities 1 and 2 the same decoder: their outputs then differ only through their latents."""
    model.decoders[2].load_state_dict(model.decoders[1].state_dict())
    return model


def test_cross_generation_shares_one_p_w_draw_among_the_missing_targets(image_spec, image_batch):
    model = _twin_decoders(_model(image_spec))
    torch.manual_seed(1)
    generated = model.generate(image_batch, torch.tensor([[True, False, False]]))
    assert torch.equal(generated[1], generated[2])  # same z, same (shared) private draw


def test_unconditional_samples_decode_one_shared_w_and_z(image_spec):
    model = _twin_decoders(_model(image_spec))
    samples = model.sample(5)
    assert torch.equal(samples[1], samples[2]) and not torch.equal(samples[0], samples[1])


def test_reference_networks_are_the_default_on_polymnist_and_shared_elsewhere(image_spec):
    torch.manual_seed(0)
    model = create_model("mmvaeplus", image_spec, shared_dim=DS, private_dim=DP)
    encoder = {k: tuple(v.shape) for k, v in model.encoders[0].state_dict().items()}
    assert encoder["branch_w.0.weight"] == (64, 3, 3, 3) and encoder["mu_z.weight"] == (DS, 256 * 7 * 7)
    assert encoder["branch_z.5.conv_s.weight"] == (256, 128, 1, 1)  # ResNet blocks 64 -> 128 -> 256
    assert tuple(model.decoders[0].fc.weight.shape) == (256 * 7 * 7, DS + DP)
    binary = DatasetSpec("toy", tuple(ModalitySpec(f"m{k}", "binary", (8,)) for k in range(2)), 2)
    assert not hasattr(create_model("mmvaeplus", binary, shared_dim=DS, private_dim=DP).encoders[0], "branch_w")
    with pytest.raises(ConfigError, match="needs 3x28x28 image modalities"):
        create_model("mmvaeplus", binary, networks="reference")


def test_the_full_tier_trains_with_the_references_recipe():
    train = resolve_config("mmvaeplus", "polymnist", "full", [])["train"]
    assert (train["batch_size"], train["lr"], train["amsgrad"], train["epochs"]) == (128, 1e-3, True, 150)


@pytest.mark.parametrize("objective", ["elbo", "dreg"])
def test_a_few_adam_steps_reduce_the_loss(objective, image_spec, image_batch):
    model = _model(image_spec, objective=objective, k=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(2)
    first = model.loss(image_batch).item()
    for _ in range(10):
        optimizer.zero_grad()
        model.loss(image_batch).backward()
        optimizer.step()
    torch.manual_seed(2)
    assert model.loss(image_batch).item() < first


@pytest.mark.parametrize("options, message", [
    ({"objective": "vae"}, "objective must be one of"),
    ({"networks": "resnet"}, "networks must be one of"),
])
def test_bad_options_are_clear_errors(image_spec, options, message):
    with pytest.raises(ConfigError, match=message):
        _model(image_spec, **options)
