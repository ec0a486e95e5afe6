"""`mmbench check-plugin`: a baseline passes every check; toy models broken on purpose fail the right ones."""
from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.distributions import Independent, Normal

from mmbench import DatasetSpec, MultimodalVAE
from mmbench import register_model
from mmbench.api.options import parse_assignments
from mmbench.api.plugin_check import check_model
from mmbench.cli.check_plugin import check_plugin
from mmbench.objectives.subsets import product_of_experts


class ToyVAE(MultimodalVAE):
    """A correct, deliberately small PoE (linear networks), so the broken variants below are fast."""

    def __init__(self, spec: DatasetSpec, latent_dim: int = 4):
        super().__init__(spec, latent_dim)
        size = math.prod(spec.modalities[0].shape)
        self.encoders = nn.ModuleList(nn.Linear(size, 2 * latent_dim) for _ in spec.modalities)
        self.decoders = nn.ModuleList(nn.Linear(latent_dim, size) for _ in spec.modalities)

    def experts(self, xs):
        present = next(x for x in xs if x is not None)
        out = [enc(x.flatten(1)).chunk(2, -1) if x is not None else (None, None) for enc, x in zip(self.encoders, xs)]
        zeros = torch.zeros(len(present), self.latent_dim)
        return (torch.stack([o[0] if o[0] is not None else zeros for o in out]),
                torch.stack([o[1] if o[1] is not None else zeros for o in out]))

    def encode(self, xs, subsets):
        mu, logvar = product_of_experts(*self.experts(xs), subsets, prior_expert=True)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def decode(self, z, m):
        shape = self.spec.modalities[m].shape
        loc = self.decoders[m](z).view(-1, *shape)
        return Independent(Normal(loc, torch.ones_like(loc)), len(shape))

    def objective(self, xs):
        q = self.encode(xs, torch.ones(1, self.num_modalities, dtype=torch.bool))
        z = q.rsample()[0]
        reconstruction = sum(self.decode(z, m).log_prob(x) for m, x in enumerate(xs))
        return reconstruction - torch.distributions.kl_divergence(q, self.prior()).squeeze(0)


class SwappedEncodeShape(ToyVAE):
    def encode(self, xs, subsets):
        q = super().encode(xs, subsets)
        return Independent(Normal(q.mean.transpose(0, 1), q.stddev.transpose(0, 1)), 1)  # (B, K), not (K, B)


class FlatDecoder(ToyVAE):
    def decode(self, z, m):
        loc = self.decoders[m](z)  # (N, C*H*W): the image shape is lost
        return Independent(Normal(loc, torch.ones_like(loc)), 1)


class NaNObjective(ToyVAE):
    def objective(self, xs):
        return super().objective(xs) * torch.tensor(float("nan"))


class DetachedObjective(ToyVAE):
    def objective(self, xs):
        return super().objective(xs).detach()


class UnregisteredDecoders(ToyVAE):
    """Decoders in a plain list: not parameters, so neither trained nor saved."""

    def __init__(self, spec, latent_dim=4):
        super().__init__(spec, latent_dim)
        decoders = list(self.decoders)
        del self.decoders
        self.decoders = decoders


TOYS = {
    "toy_good": ToyVAE,
    "toy_swapped_encode": SwappedEncodeShape,
    "toy_flat_decoder": FlatDecoder,
    "toy_nan_objective": NaNObjective,
    "toy_detached": DetachedObjective,
    "toy_unregistered": UnregisteredDecoders,
    "toy_not_a_vae": lambda spec, latent_dim: nn.Linear(2, 2),
}


def _toy_factory(cls):
    def factory(spec, *, latent_dim=4):
        return cls(spec, latent_dim)
    return factory


for _name, _cls in TOYS.items():  # registered once, through the public decorator, as a plugin would
    register_model(_name)(_toy_factory(_cls))


@pytest.fixture
def toys():
    """The toy models' names (registered when this module is imported)."""
    return TOYS


@pytest.mark.slow
def test_a_baseline_passes_every_check():
    results = check_model("mopoe", {"latent_dim": 4}, num_modalities=2)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert len(results) == 11


def test_the_good_toy_passes_and_the_cli_exits_0(toys):
    outcome = CliRunner().invoke(check_plugin, ["toy_good"])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count("✓") == 11 and "✗" not in outcome.output
    assert "toy_good: 11/11 checks passed" in outcome.output


@pytest.mark.parametrize("name, broken, reason", [
    ("toy_swapped_encode", {"encode: batch (K, B), event (latent_dim,) for all subsets",
                            "encode with missing modalities (None outside the subsets)"}, "batch shape (4, 7)"),
    ("toy_flat_decoder", {"decode: a Distribution, log_prob (N,), mean of the modality's shape",
                          "generate: (K, B, ...) samples per target modality",
                          "sample: (n, ...) unconditional samples per modality"}, "mean has shape (5, 2352), expected (5, 3, 28, 28)"),
    ("toy_nan_objective", {"objective returns (4,) finite values"}, "4 non-finite value(s) of 4"),
    ("toy_detached", {"loss backpropagates to the parameters"}, "does not require grad"),
    ("toy_unregistered", {"state_dict round trip gives the same outputs"}, "changes after loading the state_dict"),
])
def test_broken_toys_fail_the_right_checks_with_a_reason(toys, name, broken, reason):
    results = check_model(name)
    failures = {r.name: r.detail for r in results if not r.ok}
    assert broken <= set(failures), failures
    assert any(reason in detail for detail in failures.values()), failures
    outcome = CliRunner().invoke(check_plugin, [name])
    assert outcome.exit_code == 1
    assert f"✗ {sorted(broken)[0]}: " in outcome.output


def test_a_factory_returning_no_vae_fails_the_build_and_skips_the_rest(toys):
    results = check_model("toy_not_a_vae")
    assert not results[0].ok and "returned Linear, not a mmbench.MultimodalVAE" in results[0].detail
    assert all(not r.ok and r.detail.startswith("skipped") for r in results[1:])


def test_options_reach_the_factory_and_bad_ones_are_user_errors(toys):
    assert parse_assignments(["beta=1", "objective=dreg", "flag=false"]) == {"beta": 1, "objective": "dreg", "flag": False}
    outcome = CliRunner().invoke(check_plugin, ["toy_good", "--set", "latent_dim=3", "--modalities", "2"])
    assert outcome.exit_code == 0 and "latent_dim 3" in outcome.output
    outcome = CliRunner().invoke(check_plugin, ["toy_good", "--set", "beta=1"])
    assert outcome.exit_code == 2 and "has no option(s) beta" in outcome.output


def test_unknown_model_is_one_line_and_exit_2():
    """(An unimportable plugin's one-line error is checked through a real distribution in
    test_plugin_package.py.)"""
    outcome = CliRunner().invoke(check_plugin, ["mopeo"])
    assert outcome.exit_code == 2 and outcome.stdout == ""
    assert outcome.stderr.startswith("error: ") and "did you mean mopoe" in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1
