"""Synthetic binary modalities whose conditional entropies are known in closed form.

Each tuple has one shared class c ~ U{0..C-1} and, per modality m, an independent private factor
s_m ~ U{0..L_m-1}. Modality m is the binary vector [one-hot of pi_m(c) | bits of s_m XOR k_m]
with a fixed, seeded class permutation pi_m and bit mask k_m per modality, so x_m and (c, s_m)
determine each other. As c is readable from any single modality, for every non-empty subset S

    H(X_notS | X_S) = sum_{m not in S} log L_m   (nats),

which makes the generative discrepancy of a mixture-based model computable exactly (see
`mmbench.metrics.discrepancy.closed_form_delta`).

L_m must be a power of two: a uniformly unknown s_m is then b_m = log2 L_m fair coins, which a
factorized Bernoulli decoder represents exactly, so a model *can* predict x_notS from x_S with
cross-entropy equal to that conditional entropy. (With, say, one-hot private codes no factorized
decoder could, and every model would pay an extra, architecture-dependent cost on top.)

Splits are balanced designs rather than i.i.d. draws: the full product support of
(c, s_0, ..., s_{M-1}) is cycled and shuffled, so whenever n is a multiple of C * prod L_m (the
defaults are) the empirical distribution of a split *is* the uniform product distribution and
the closed-form entropies hold for the data as built, not only in expectation. Values are stored
as uint8 0/255, like binarized images, so the standard input conversion yields float 0/1.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mmbench.data.base import DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit, content_checksum, provenance
from mmbench.data.cache import Meta, Tensors, load_or_build, resolve_data_root
from mmbench.data.sources import seeded_stream
from mmbench.errors import ConfigError, DataError
from mmbench.api.registry import register_dataset

RECIPE_VERSION = 1
"""Bump whenever a change to the recipe changes any built byte; it is part of the cache key."""

QUICK_SIZES = (10_240, 2_560)
FULL_SIZES = (64_000, 12_800)
MAX_SUPPORT_BITS = 62
_SPLITS = ("train", "test")


def private_entropies(levels: Sequence[int]) -> list[float]:
    """H(X_m | C) = log L_m in nats: the modality-specific entropy of each modality."""
    return [math.log(level) for level in levels]


def balanced_design(n: int, support: int, rng: np.random.Generator) -> np.ndarray:
    """n indices into range(support): every value floor(n / support) times, the remainder
    distinct values drawn without replacement, all in a seeded random order."""
    cycles, rest = divmod(n, support)
    index = np.concatenate(
        [np.tile(np.arange(support, dtype=np.int64), cycles), rng.choice(support, rest, replace=False)]
    )
    return rng.permutation(index)


def rendering(seed: int, m: int, num_classes: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed class permutation pi_m and private-bit mask k_m of modality m."""
    rng = seeded_stream(seed, 0, m)
    return rng.permutation(num_classes), rng.integers(0, 2, size=bits, dtype=np.int64)


def render(c: np.ndarray, s: np.ndarray, permutation: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N,) classes and private levels -> uint8 (N, C + bits) in {0, 255}: [one-hot | bits]."""
    one_hot = np.zeros((len(c), len(permutation)), dtype=np.uint8)
    one_hot[np.arange(len(c)), permutation[c]] = 1
    shifts = np.arange(len(mask) - 1, -1, -1)
    bits = ((s[:, None] >> shifts) & 1) ^ mask
    return np.concatenate([one_hot, bits.astype(np.uint8)], axis=1) * np.uint8(255)


def _levels(private_levels: int | Sequence[int], num_modalities: int) -> tuple[int, ...]:
    if isinstance(private_levels, (int, np.integer)) and not isinstance(private_levels, bool):
        levels = (int(private_levels),) * num_modalities
    elif isinstance(private_levels, Sequence) and not isinstance(private_levels, str):
        levels = tuple(private_levels)
        if len(levels) != num_modalities:
            raise ConfigError(
                f"private_levels has {len(levels)} entries for {num_modalities} modalities"
            )
    else:
        raise ConfigError(f"private_levels must be an int or one int per modality, not {private_levels!r}")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level < 1 or level & (level - 1):
            raise ConfigError(
                f"private_levels must be powers of two (1, 2, 4, ...), not {level!r}: only then can "
                "a factorized Bernoulli decoder represent an unknown private factor exactly"
            )
    return tuple(int(level) for level in levels)


def _validate(
    tier: str, seed: int, num_modalities: int, num_classes: int, n_train: int | None, n_test: int | None
) -> None:
    if tier not in ("quick", "full"):
        raise ConfigError(f"tier must be 'quick' or 'full', not {tier!r}")
    for name, value, low in (("seed", seed, 0), ("num_modalities", num_modalities, 2), ("num_classes", num_classes, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, not {value!r}")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"{name} must be a positive integer, not {n!r}")


def _build(
    seed: int, num_classes: int, levels: tuple[int, ...], sizes: tuple[int, int]
) -> tuple[Tensors, Meta]:
    shape = (num_classes, *levels)
    support = math.prod(shape)
    renderings = [rendering(seed, m, num_classes, level.bit_length() - 1) for m, level in enumerate(levels)]
    tensors = {}
    for split, (name, n) in enumerate(zip(_SPLITS, sizes)):
        factors = np.unravel_index(balanced_design(n, support, seeded_stream(seed, 1, split)), shape)
        c = factors[0].astype(np.int64)
        for m, (permutation, mask) in enumerate(renderings):
            x = render(c, factors[1 + m].astype(np.int64), permutation, mask)
            tensors[f"{name}/m{m}"] = torch.from_numpy(x)
        tensors[f"{name}/labels"] = torch.from_numpy(c)
    return tensors, {"recipe_version": RECIPE_VERSION}


def _to_splits(tensors: Tensors, num_modalities: int) -> tuple[MultimodalSplit, MultimodalSplit]:
    try:
        return tuple(
            MultimodalSplit([tensors[f"{s}/m{m}"] for m in range(num_modalities)], tensors[f"{s}/labels"])
            for s in _SPLITS
        )
    except (KeyError, ValueError) as exc:
        raise DataError(f"dataset tensors are incomplete or inconsistent ({exc})") from exc


@register_dataset("synthetic")
def synthetic(
    data_root: str | Path | None,
    *,
    tier: str = "quick",
    seed: int = 0,
    num_modalities: int = 3,
    num_classes: int = 10,
    private_levels: int | Sequence[int] = 4,
    n_train: int | None = None,
    n_test: int | None = None,
) -> MultimodalDataset:
    """Shared class plus private factors as binary vectors; `private_levels` (an int, or one
    power of two per modality) sets the modality-specific entropy log L_m. Quick tier 10,240 /
    2,560 tuples, full tier 64,000 / 12,800; `seed` pins rendering and sampling."""
    _validate(tier, seed, num_modalities, num_classes, n_train, n_test)
    levels = _levels(private_levels, num_modalities)
    support = num_classes * math.prod(levels)
    if support.bit_length() > MAX_SUPPORT_BITS:
        raise ConfigError(f"C * prod(L_m) = {support} is too large (at most 2^{MAX_SUPPORT_BITS})")
    default_train, default_test = QUICK_SIZES if tier == "quick" else FULL_SIZES
    sizes = (n_train or default_train, n_test or default_test)
    widths = [num_classes + level.bit_length() - 1 for level in levels]
    modalities = tuple(ModalitySpec(f"m{m}", "binary", (w,)) for m, w in enumerate(widths))
    spec = DatasetSpec("synthetic", modalities, num_classes=num_classes)

    key = (
        f"synthetic-{tier}-seed{seed}-m{num_modalities}-c{num_classes}"
        f"-l{'x'.join(map(str, levels))}-n{sizes[0]}-{sizes[1]}-v{RECIPE_VERSION}"
    )
    path = resolve_data_root(data_root) / "synthetic" / f"{key}.pt"
    tensors, _, checksum = load_or_build(
        path,
        lambda: _build(seed, num_classes, levels, sizes),
        lambda t: content_checksum(*_to_splits(t, num_modalities)),
    )
    train, test = _to_splits(tensors, num_modalities)
    info = provenance(
        "generated", RECIPE_VERSION, train, test, path,
        tier=tier,
        seed=seed,
        num_classes=num_classes,
        private_levels=list(levels),
        private_entropies=private_entropies(levels),
        support=support,
        exactly_uniform=[n % support == 0 for n in sizes],
    )
    return MultimodalDataset(spec, train, test, info, checksum)
