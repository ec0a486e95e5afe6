"""Synthetic dataset: the closed-form conditional entropies hold for the data as built (checked
by counting rows), rendering is injective, and builds are pinned by seed and by the card."""
from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from mmbench.data.synthetic import balanced_design, render, rendering, synthetic
from mmbench.errors import ConfigError
from mmbench.nn import build_decoder, build_encoder
from mmbench.api.registry import DATASETS
from mmbench.objectives.subsets import all_subsets

SMALL = {"num_classes": 3, "private_levels": [2, 4, 1], "n_train": 96, "n_test": 24}


def _entropy(rows: list[bytes]) -> float:
    """Plug-in entropy (nats) of the empirical distribution of `rows`."""
    counts = np.array(list(Counter(rows).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def _rows(modalities: list[torch.Tensor], subset: list[int]) -> list[bytes]:
    return [b"".join(modalities[m][i].numpy().tobytes() for m in subset) for i in range(len(modalities[0]))]


def test_empirical_conditional_entropy_is_the_closed_form(tmp_path):
    """H(X_notS | X_S) = H(X) - H(X_S) from counts equals sum_{m not in S} log L_m exactly."""
    ds = synthetic(tmp_path, **SMALL)
    assert ds.info["support"] == 24 and ds.info["exactly_uniform"] == [True, True]
    levels = SMALL["private_levels"]
    for split in (ds.train, ds.test):
        joint = _entropy(_rows(split.modalities, [0, 1, 2]))
        assert joint == pytest.approx(math.log(3) + sum(math.log(level) for level in levels), abs=1e-12)
        for subset in all_subsets(3).tolist():
            inside = [m for m in range(3) if subset[m]]
            expected = sum(math.log(levels[m]) for m in range(3) if not subset[m])
            assert joint - _entropy(_rows(split.modalities, inside)) == pytest.approx(expected, abs=1e-12)


def test_rendering_is_injective_and_readable():
    """Every (c, s) of a modality gets its own 0/255 row, and c is read back from the one-hot."""
    permutation, mask = rendering(seed=0, m=1, num_classes=5, bits=3)
    c, s = (np.array(v) for v in zip(*itertools.product(range(5), range(8))))
    x = render(c, s, permutation, mask)
    assert x.dtype == np.uint8 and x.shape == (40, 8) and set(np.unique(x)) == {0, 255}
    assert len({row.tobytes() for row in x}) == 40
    assert np.array_equal(np.argsort(permutation)[x[:, :5].argmax(1)], c)
    bits = (x[:, 5:] // 255) ^ mask
    assert np.array_equal(bits @ np.array([4, 2, 1]), s)


def test_balanced_design_counts():
    rng = np.random.default_rng(0)
    counts = np.bincount(balanced_design(50, 8, rng), minlength=8)
    assert counts.sum() == 50 and counts.max() - counts.min() == 1


def test_seed_pins_the_dataset_and_cache_reloads(tmp_path):
    a = synthetic(tmp_path / "a", **SMALL)
    b = synthetic(tmp_path / "b", **SMALL)
    assert a.checksum == b.checksum != synthetic(tmp_path / "a", seed=1, **SMALL).checksum
    assert Path(a.info["cache"]).is_file()
    again = synthetic(tmp_path / "a", **SMALL)
    assert again.checksum == a.checksum and torch.equal(again.train.labels, a.train.labels)


def test_spec_networks_and_model_inputs(tmp_path):
    ds = synthetic(tmp_path, **SMALL)
    assert DATASETS.get("synthetic") is synthetic
    assert [m.shape for m in ds.spec.modalities] == [(4,), (5,), (3,)]
    assert {m.kind for m in ds.spec.modalities} == {"binary"} and ds.spec.num_classes == 3
    xs = ds.train.batch(slice(0, 6))
    assert all(set(x.unique().tolist()) <= {0.0, 1.0} for x in xs)
    for spec, x in zip(ds.spec.modalities, xs):
        mu, _ = build_encoder(spec, 4)(x)
        assert build_decoder(spec, 4)(mu).log_prob(x).shape == (6,)


def test_bad_options(tmp_path):
    for bad in ({"private_levels": 3}, {"private_levels": [2, 2]}, {"private_levels": 0},
                {"num_classes": 1}, {"num_modalities": 1}, {"tier": "huge"}, {"seed": -1}, {"n_train": 0}):
        with pytest.raises(ConfigError):
            synthetic(tmp_path, **bad)


def test_dataset_card_pins_the_quick_build(tmp_path):
    card = Path(__file__).parents[1] / "datasets" / "synthetic.md"
    match = re.search(r"^checksum-quick-seed0: ([0-9a-f]{64})$", card.read_text(), re.MULTILINE)
    assert match, f"{card} has no checksum-quick-seed0 line"
    assert synthetic(tmp_path).checksum == match[1]
