"""Likelihood estimators against a linear-Gaussian model whose marginals and conditionals are
analytic, and the latent probe on a latent that is separable by construction."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from mmbench import DatasetSpec, ModalitySpec, MultimodalSplit, MultimodalVAE
from mmbench.metrics.latent_probe import LatentProbe, evaluate_latent_probe
from mmbench.metrics.passes import EvalPass
from mmbench.metrics.likelihood import (
    Likelihood,
    conditional_log_likelihood,
    evaluate_likelihood,
    iwae_log_likelihood,
)
from mmbench.objectives.subsets import all_subsets


class LinearGaussian(MultimodalVAE):
    """z ~ N(0, I_d); x_m = w_m * z + b_m + sigma_m * eps (elementwise), so every latent
    coordinate j has its own M-dim Gaussian (x_0j..x_Mj) and all posteriors are diagonal.

    encode returns the exact posterior p(z | x_S), optionally with the mean shifted and the
    variance inflated to make it a deliberately poor proposal.
    """

    def __init__(self, w: torch.Tensor, b: torch.Tensor, sigma: torch.Tensor, shift: float = 0.0, inflate: float = 1.0):
        m, d = w.shape
        spec = DatasetSpec("linear", tuple(ModalitySpec(f"m{k}", "vector", (d,)) for k in range(m)))
        super().__init__(spec, d)
        self.w, self.b, self.sigma = w, b, sigma
        self.shift, self.inflate = shift, inflate

    def posterior(self, xs, subset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact mean and variance of p(z | x_S), (B, d) each."""
        precision = 1.0 + sum((self.w[m] / self.sigma[m]) ** 2 for m in range(len(xs)) if subset[m])
        weighted = sum(self.w[m] * (xs[m] - self.b[m]) / self.sigma[m] ** 2 for m in range(len(xs)) if subset[m])
        return weighted / precision, 1.0 / precision.expand_as(weighted)

    def encode(self, xs, subsets):
        means, variances = zip(*(self.posterior(xs, s) for s in subsets.tolist()))
        mean, var = torch.stack(means) + self.shift, torch.stack(variances) * self.inflate
        return Independent(Normal(mean, var.sqrt()), 1)

    def decode(self, z, m):
        return Independent(Normal(z * self.w[m] + self.b[m], self.sigma[m].expand(z.shape[-1])), 1)

    def objective(self, xs):
        return iwae_log_likelihood(self, xs, num_samples=1)

    def sample_data(self, n: int, generator: torch.Generator) -> list[torch.Tensor]:
        z = torch.randn(n, self.latent_dim, generator=generator)
        return [z * self.w[m] + self.b[m] + self.sigma[m] * torch.randn(n, self.latent_dim, generator=generator)
                for m in range(len(self.w))]

    def log_marginal(self, xs, modalities: list[int]) -> torch.Tensor:
        """Analytic log p(x_S) for the modalities listed, (B,)."""
        total = 0.0
        for j in range(self.latent_dim):
            w = self.w[modalities, j]
            cov = torch.outer(w, w) + torch.diag(self.sigma[modalities] ** 2)
            x = torch.stack([xs[m][:, j] for m in modalities], 1)
            total = total + MultivariateNormal(self.b[modalities, j], cov).log_prob(x)
        return total


def toy(**kwargs) -> LinearGaussian:
    g = torch.Generator().manual_seed(0)
    w = 0.5 + 0.5 * torch.rand(3, 2, generator=g)
    return LinearGaussian(w, torch.randn(3, 2, generator=g), torch.tensor([0.8, 1.0, 1.2]), **kwargs)


def data(model: LinearGaussian, n: int = 64) -> list[torch.Tensor]:
    return model.sample_data(n, torch.Generator().manual_seed(1))


def test_iwae_is_exact_with_the_true_posterior():
    model = toy()
    xs = data(model)
    torch.manual_seed(0)
    estimate = iwae_log_likelihood(model, xs, num_samples=1)
    assert torch.allclose(estimate, model.log_marginal(xs, [0, 1, 2]), atol=1e-3)


def test_iwae_converges_from_below_as_k_grows():
    model = toy(shift=0.5, inflate=4.0)
    xs = data(model)
    truth = model.log_marginal(xs, [0, 1, 2])
    torch.manual_seed(0)
    errors = [(iwae_log_likelihood(model, xs, num_samples=k, chunk_size=500) - truth).mean().item() for k in (1, 3, 1000)]
    assert errors[0] < errors[1] < -0.05 and errors[0] < -1.0
    assert abs(errors[2]) < 0.02


def test_conditional_matches_the_gaussian_conditional():
    """With the exact subset posterior as proposal the predictive is p(x_notS | x_S) itself."""
    model = toy()
    xs = data(model, 16)
    subsets = all_subsets(3)
    torch.manual_seed(0)
    estimate = conditional_log_likelihood(model, xs, subsets, num_samples=2000, chunk_size=1000)
    full = model.log_marginal(xs, [0, 1, 2])
    for row, subset in zip(estimate, subsets.tolist()):
        inside = [m for m in range(3) if subset[m]]
        expected = full - model.log_marginal(xs, inside) if len(inside) < 3 else torch.zeros_like(full)
        assert torch.allclose(row, expected, atol=0.1), "per-sample Monte Carlo noise"
        assert (row - expected).mean().abs() < 0.025


def test_likelihood_metric_keys_and_seeding():
    model = toy()
    split = MultimodalSplit(data(model, 40))
    state = torch.get_rng_state()
    first = evaluate_likelihood(model, split, num_samples=8, walk=EvalPass(batch_size=16, seed=3, progress=False))
    assert torch.equal(torch.get_rng_state(), state), "evaluation must not move the caller's RNG"
    assert first == evaluate_likelihood(model, split, num_samples=8, walk=EvalPass(batch_size=16, seed=3, progress=False))
    assert sorted(first) == ["likelihood/conditional/k=1", "likelihood/conditional/k=2", "likelihood/joint"]
    truth = model.log_marginal(split.modalities, [0, 1, 2]).mean().item()
    assert first["likelihood/joint"] == pytest.approx(truth, abs=1e-3)
    assert Likelihood.higher_is_better and Likelihood.name == "likelihood"


def test_likelihood_metric_averages_by_subset_size():
    subsets = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.bool)
    metric = Likelihood(subsets)
    metric.update(torch.tensor([-1.0, -3.0]), torch.tensor([[-1.0, -1.0], [-3.0, -3.0], [0.0, 0.0]]))
    assert metric.compute() == {"likelihood/joint": -2.0, "likelihood/conditional/k=1": -2.0}


class LabelLatent(MultimodalVAE):
    """Posterior means carry the label (one-hot * 3 + noise) only when m0 is in the subset."""

    def __init__(self):
        spec = DatasetSpec("probe", tuple(ModalitySpec(f"m{k}", "vector", (1,)) for k in range(3)), 4)
        super().__init__(spec, 4)

    def encode(self, xs, subsets):
        labels = next(x for x in xs if x is not None)[:, 0].long()
        noise = torch.randn(len(subsets), len(labels), 4)
        signal = 3.0 * torch.nn.functional.one_hot(labels, 4).float()
        mean = torch.where(subsets[:, 0].view(-1, 1, 1), signal + 0.3 * noise, noise)
        return Independent(Normal(mean, torch.ones_like(mean)), 1)

    def decode(self, z, m):
        return Independent(Normal(z[:, :1], torch.ones(len(z), 1)), 1)

    def objective(self, xs):
        return torch.zeros(len(xs[0]))


def test_latent_probe_reads_a_separable_latent():
    labels = torch.arange(400) % 4
    split = MultimodalSplit([labels.float().view(-1, 1)] * 3, labels)
    scores = evaluate_latent_probe(LabelLatent(), split, split, num_train=200, walk=EvalPass(batch_size=100, progress=False))
    assert sorted(scores) == ["latent_probe/joint", "latent_probe/k=1", "latent_probe/k=2"]
    assert scores["latent_probe/joint"] == 1.0
    assert scores["latent_probe/k=1"] == pytest.approx((1.0 + 2 * 0.25) / 3, abs=0.05)
    assert scores["latent_probe/k=2"] == pytest.approx((2 * 1.0 + 0.25) / 3, abs=0.05)
    assert LatentProbe.name == "latent_probe" and LatentProbe.higher_is_better


def test_log_marginal_helper_is_consistent():
    """Independent check of the test's own analytic marginal: log p(x_0) for one coordinate."""
    model = toy()
    xs = data(model, 5)
    w, b, s = model.w[0], model.b[0], model.sigma[0]
    expected = Normal(b, (w ** 2 + s ** 2).sqrt()).log_prob(xs[0]).sum(-1)
    assert torch.allclose(model.log_marginal(xs, [0]), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["unimodal", "mvae", "mmvae", "mopoe", "mmvaeplus", "mvtcae", "mmjsd", "mmvm"])
def test_each_baselines_log_likelihood_is_the_sum_of_its_decoders_densities(name):
    """A model's direct density (the IWAE evaluator's) against the plain definition through
    `decode`: sum_m log p(x_m | z). The unimodal VAEs' decoders each read their own latent block."""
    from mmbench.api.registry import create_model

    spec = DatasetSpec("polymnist", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(3)), 10)
    torch.manual_seed(0)
    model = create_model(name, spec, **({} if name == "mmvaeplus" else {"latent_dim": 8})).eval()
    xs = [torch.rand(4, 3, 28, 28) for _ in range(3)]
    z = torch.randn(2, 4, model.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(model.log_likelihood(z, xs), MultimodalVAE.log_likelihood(model, z, xs), rtol=1e-5, atol=1e-2)
