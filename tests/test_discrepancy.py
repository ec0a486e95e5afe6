"""Discrepancy: the closed form against hand calculations, the weightings the baselines declare,
and both estimators against analytic answers (linear-Gaussian toy, oracle on synthetic data)."""
from __future__ import annotations

import math

import pytest
import torch
from test_likelihood import LinearGaussian, data, toy
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from mmbench_baselines.mmvae import mmvae
from mmbench_baselines.mopoe import mopoe
from mmbench_baselines.mvae import mvae
from mmbench_baselines.unimodal import unimodal
from mmbench import MultimodalVAE
from mmbench.data.synthetic import rendering, synthetic
from mmbench.errors import ConfigError
from mmbench.metrics.discrepancy import (
    Discrepancy,
    closed_form_delta,
    conditional_entropy,
    elbo_gap,
    evaluate_discrepancy,
    joint_weighting,
    mixture_weighting,
    mmvae_weighting,
    mopoe_weighting,
    uniform_weighting,
)
from mmbench.metrics.passes import EvalPass
from mmbench.objectives.subsets import all_subsets


def test_closed_form_by_hand_two_modalities():
    h = [0.7, 1.9]
    assert closed_form_delta(h, *mmvae_weighting(2)) == pytest.approx((1.9 + 0.7) / 2)
    assert closed_form_delta(h, *mopoe_weighting(2)) == pytest.approx((1.9 + 0.7 + 0.0) / 3)
    assert closed_form_delta(h, *joint_weighting(2)) == 0.0


def test_closed_form_by_hand_three_modalities():
    h0, h1, h2 = math.log(2), math.log(4), math.log(8)
    unimodal_terms = (h1 + h2) + (h0 + h2) + (h0 + h1)
    pair_terms = h2 + h1 + h0
    assert closed_form_delta([h0, h1, h2], *mmvae_weighting(3)) == pytest.approx(unimodal_terms / 3)
    assert closed_form_delta([h0, h1, h2], *mopoe_weighting(3)) == pytest.approx((unimodal_terms + pair_terms) / 7)
    skewed = torch.tensor([[1, 0, 0], [1, 1, 0]], dtype=torch.bool), torch.tensor([0.25, 0.75])
    assert closed_form_delta([h0, h1, h2], *skewed) == pytest.approx(0.25 * (h1 + h2) + 0.75 * h2)


def test_bad_weightings_are_refused():
    with pytest.raises(ConfigError):
        closed_form_delta([1.0, 1.0], torch.tensor([[0, 0]], dtype=torch.bool), torch.tensor([1.0]))
    with pytest.raises(ConfigError):
        closed_form_delta([1.0, 1.0], torch.eye(2, dtype=torch.bool), torch.tensor([0.6, 0.6]))
    with pytest.raises(ConfigError):
        closed_form_delta([1.0], torch.eye(2, dtype=torch.bool), torch.tensor([0.5, 0.5]))


def test_baselines_declare_their_mixtures(image_spec):
    def same(a, b):
        return torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1])

    assert same(mixture_weighting(mmvae(image_spec, latent_dim=4)), mmvae_weighting(3))
    assert same(mixture_weighting(mopoe(image_spec, latent_dim=4)), mopoe_weighting(3))
    assert same(mixture_weighting(mvae(image_spec, latent_dim=4, subsample=False)), joint_weighting(3))
    assert mixture_weighting(mvae(image_spec, latent_dim=4, subsample=True)) is None
    assert mixture_weighting(unimodal(image_spec, latent_dim=4)) is None


def test_the_example_plugin_gets_the_discrepancy_through_the_public_api(image_spec, monkeypatch):
    """The example plugin imports only names `mmbench` exports, and its declared mixture (the
    joint ELBO) reaches the discrepancy metric, as a baseline's does."""
    import ast
    from pathlib import Path

    import mmbench
    import mmbench.objectives

    folder = Path(__file__).resolve().parent.parent / "examples" / "mmbench-example-plugin"
    tree = ast.parse((folder / "mmbench_example_plugin" / "model.py").read_text())
    exported = {"mmbench": set(mmbench.__all__), "mmbench.objectives": set(mmbench.objectives.__all__)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("mmbench"):
            assert node.module in exported, node.module
            assert {a.name for a in node.names} <= exported[node.module]
    monkeypatch.syspath_prepend(str(folder))
    from mmbench_example_plugin.model import example_poe

    model = example_poe(image_spec, latent_dim=4)
    subsets, weights = mixture_weighting(model)
    assert subsets.tolist() == [[True, True, True]] and weights.tolist() == [1.0]


@pytest.mark.parametrize("weighting", [mmvae_weighting(3), mopoe_weighting(3), joint_weighting(3)])
def test_estimators_on_the_linear_gaussian(weighting):
    """Exact posteriors: the gap is sum_S w_S KL(p(z|x_S) || p(z|x)) and the conditional
    entropy estimate is -sum_S w_S log p(x_notS | x_S), both analytic. Per-sample tolerances
    cover Monte Carlo noise; the batch means must agree more tightly."""
    model = toy()
    xs = data(model, 16)
    subsets, weights = weighting
    joint = Normal(*_loc_scale(model, xs, torch.ones(3, dtype=torch.bool)))
    log_px = model.log_marginal(xs, [0, 1, 2])
    expected_gap = torch.zeros(16)
    expected_entropy = torch.zeros(16)
    for s, w in zip(subsets, weights.tolist()):
        expected_gap += w * kl_divergence(Normal(*_loc_scale(model, xs, s)), joint).sum(-1)
        if not s.all():
            expected_entropy -= w * (log_px - model.log_marginal(xs, [m for m in range(3) if s[m]]))
    torch.manual_seed(0)
    gap = elbo_gap(model, xs, weighting, num_samples=1, elbo_samples=2000, chunk_size=1)
    entropy = conditional_entropy(model, xs, weighting, num_samples=2000, chunk_size=1000)
    for estimate, expected in ((gap, expected_gap), (entropy, expected_entropy)):
        assert torch.allclose(estimate, expected, atol=0.1)
        assert (estimate - expected).mean().abs() < 0.025


def _loc_scale(model: LinearGaussian, xs, subset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, var = model.posterior(xs, subset.tolist())
    return mean, var.sqrt()


class Oracle(MultimodalVAE):
    """A perfect cross-modal predictor for `synthetic` data: z is a scaled one-hot of the class
    read from any present modality; decoders are sharp on the class and fair coins on the bits."""

    def __init__(self, spec, seed: int, levels: list[int]):
        super().__init__(spec, spec.num_classes)
        c = spec.num_classes
        self.bits = [level.bit_length() - 1 for level in levels]
        self.perms = [torch.from_numpy(rendering(seed, m, c, b)[0]) for m, b in enumerate(self.bits)]

    def encode(self, xs, subsets):
        m, x = next((m, x) for m, x in enumerate(xs) if x is not None)
        c = torch.argsort(self.perms[m])[x[:, :self.latent_dim].argmax(1)]
        mean = 10.0 * torch.nn.functional.one_hot(c, self.latent_dim).float().expand(len(subsets), -1, -1)
        return Independent(Normal(mean, torch.full_like(mean, 0.1)), 1)

    def decode(self, z, m):
        sharp = torch.nn.functional.one_hot(self.perms[m][z.argmax(-1)], self.latent_dim).float() * 60.0 - 30.0
        logits = torch.cat([sharp, torch.zeros(len(z), self.bits[m])], 1)
        return Independent(Bernoulli(logits=logits), 1)

    def objective(self, xs):
        return torch.zeros(len(xs[0]))


def test_conditional_entropy_of_an_oracle_is_the_closed_form(tmp_path):
    levels = [2, 4, 8]
    ds = synthetic(tmp_path, num_classes=4, private_levels=levels, n_train=64, n_test=128)
    model = Oracle(ds.spec, 0, levels)
    for weighting in (mmvae_weighting(3), mopoe_weighting(3), uniform_weighting(all_subsets(3)[:4])):
        result = evaluate_discrepancy(model, ds.test, weighting=weighting, private_entropies=ds.info["private_entropies"],
                                      num_samples=4, elbo_samples=2, walk=EvalPass(batch_size=50, progress=False))
        assert sorted(result) == ["discrepancy/closed_form", "discrepancy/conditional_entropy", "discrepancy/elbo_gap"]
        assert result["discrepancy/conditional_entropy"] == pytest.approx(result["discrepancy/closed_form"], abs=1e-4)
    with pytest.raises(ConfigError, match="declares no mixture"):
        evaluate_discrepancy(model, ds.test, walk=EvalPass(progress=False))


def test_metric_accumulates_means():
    metric = Discrepancy(closed_form=1.5)
    metric.update(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]))
    metric.update(torch.tensor([2.0]), torch.tensor([5.0]))
    assert metric.compute() == {"discrepancy/elbo_gap": 2.0, "discrepancy/conditional_entropy": 3.0,
                                "discrepancy/closed_form": 1.5}
    assert Discrepancy.name == "discrepancy" and not Discrepancy.higher_is_better
