"""The evaluation registry end to end on the synthetic dataset (MLP networks: seconds on a CPU)."""
import math

import pytest
import torch

from mmbench.training.config import TIERS
from mmbench.errors import ConfigError
from mmbench.evaluation.evaluators import EvalContext, evaluate
from mmbench.api.registry import create_model, get_dataset
from mmbench.training.loop import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    dataset = get_dataset("synthetic", root, n_train=512, n_test=128)
    torch.manual_seed(0)
    model = create_model("mopoe", dataset.spec, latent_dim=8, beta=1.0)
    train(model, dataset.train, epochs=2, batch_size=64, lr=1e-3, seed=0, run_dir=root / "run", device=torch.device("cpu"), progress=False)
    return dataset, model, root


def _context(dataset, model, root):
    options = {**TIERS["quick"]["eval"], "probe_train_samples": 256, "likelihood_test_samples": 64, "iwae_k": 4}
    return EvalContext(model, dataset, dataset.train, dataset.test, options, 0, torch.device("cpu"), root, progress=False)


def test_default_metrics_on_synthetic_data_are_finite_and_seeded(trained):
    dataset, model, root = trained
    first, versions, seconds = evaluate(_context(dataset, model, root))
    assert {"likelihood", "latent_probe", "discrepancy"} <= set(versions)
    assert set(seconds) == {"likelihood", "latent_probe", "discrepancy"} and all(s > 0 for s in seconds.values())
    assert "likelihood/joint" in first and any(k.startswith("latent_probe/") for k in first)
    assert any(k.startswith("discrepancy/") for k in first)
    assert all(math.isfinite(v) for v in first.values())
    again, _, _ = evaluate(_context(dataset, model, root))
    assert again == first


def test_unknown_or_inapplicable_metric_is_a_config_error(trained):
    dataset, model, root = trained
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate(_context(dataset, model, root), ["nope"])
    with pytest.raises(ConfigError, match="does not apply"):
        evaluate(_context(dataset, model, root), ["coherence"])
