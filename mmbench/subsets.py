"""Subsets of modalities as boolean masks, and their Gaussian products of experts.

Every mixture-based multimodal VAE needs posteriors for many subsets at once. Representing the
subsets as a (K, M) mask lets one einsum over expert precisions give all K products, instead of a
Python loop over 2^M - 1 subsets.
"""
from __future__ import annotations

import itertools

import torch


def all_subsets(num_modalities: int) -> torch.Tensor:
    """(2^M - 1, M) bool mask of all non-empty subsets, ordered by size then lexicographically."""
    rows = [
        [m in combo for m in range(num_modalities)]
        for size in range(1, num_modalities + 1)
        for combo in itertools.combinations(range(num_modalities), size)
    ]
    return torch.tensor(rows, dtype=torch.bool)


def unimodal_subsets(num_modalities: int) -> torch.Tensor:
    """(M, M) identity mask: each modality on its own (the MMVAE mixture components)."""
    return torch.eye(num_modalities, dtype=torch.bool)


def joint_subset(num_modalities: int) -> torch.Tensor:
    """(1, M) mask holding every modality."""
    return torch.ones(1, num_modalities, dtype=torch.bool)


def subset_name(mask: torch.Tensor) -> str:
    """Readable name of one subset mask, e.g. "m0+m2"."""
    return "+".join(f"m{i}" for i in torch.nonzero(mask).flatten().tolist())


def product_of_experts(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    subsets: torch.Tensor,
    prior_expert: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian products of the experts selected by each subset, all subsets at once.

    Args:
        mu, logvar: (M, B, D) expert means and log-variances.
        subsets: (K, M) bool mask; row k selects the experts multiplied for subset k.
        prior_expert: also multiply a standard-normal expert in (as the MVAE does).

    Returns:
        (K, B, D) mean and log-variance of each product. The product of Gaussians has precision
        sum_m T_m and mean (sum_m T_m mu_m) / sum_m T_m.
    """
    weights = subsets.to(mu.dtype)
    precision = torch.exp(-logvar)
    total_precision = torch.einsum("km,mbd->kbd", weights, precision)
    weighted_mean = torch.einsum("km,mbd->kbd", weights, precision * mu)
    if prior_expert:
        total_precision = total_precision + 1.0
    mean = weighted_mean / total_precision
    return mean, -torch.log(total_precision)
