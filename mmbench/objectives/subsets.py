"""Subsets of modalities as boolean masks, and their Gaussian products of experts.

Every mixture-based multimodal VAE needs posteriors for many subsets at once. Representing the
subsets as a (K, M) mask lets one einsum over expert precisions give all K products, instead of a
Python loop over 2^M - 1 subsets.
"""
from __future__ import annotations

import functools
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


def to_full_precision(t: torch.Tensor) -> torch.Tensor:
    """bf16 / fp16 tensors (outputs of networks under autocast) cast up to fp32; others unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def full_precision(fn):
    """Run `fn` with autocast off and half-precision experts cast up to fp32: under bf16 autocast
    the einsums over expert precisions would run in bf16, and exp / reciprocal / log of
    precisions lose too much there."""

    @functools.wraps(fn)
    def wrapper(mu: torch.Tensor, logvar: torch.Tensor, *args, **kwargs):
        with torch.autocast(mu.device.type, enabled=False):
            return fn(to_full_precision(mu), to_full_precision(logvar), *args, **kwargs)

    return wrapper


@full_precision
def product_of_experts(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    subsets: torch.Tensor,
    prior_expert: bool | torch.Tensor = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian products of the experts selected by each subset, all subsets at once.

    Args:
        mu, logvar: (M, B, D) expert means and log-variances.
        subsets: (K, M) bool mask; row k selects the experts multiplied for subset k.
        prior_expert: also multiply a standard-normal expert in: True for every subset (as the
            MVAE does), or a (K,) bool mask of the subsets that get one (MoPoE: the full set).

    Returns:
        (K, B, D) mean and log-variance of each product. The product of Gaussians has precision
        sum_m T_m and mean (sum_m T_m mu_m) / sum_m T_m.
    """
    return _product("km,mbd->kbd", mu, logvar, subsets, prior_expert)


@full_precision
def product_of_experts_per_point(
    mu: torch.Tensor, logvar: torch.Tensor, masks: torch.Tensor, prior_expert: bool | torch.Tensor = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of experts of one subset per data point: masks (B, M) -> (B, D) mean, logvar;
    `prior_expert` as in `product_of_experts`, a mask over the B rows.

    What a sampled mixture component needs, without forming the products of all K subsets."""
    return _product("bm,mbd->bd", mu, logvar, masks, prior_expert)


def prior_precision(prior_expert: bool | torch.Tensor, rows: int, dims: int, like: torch.Tensor) -> torch.Tensor:
    """The precision a standard-normal expert adds to each of `rows` products with `dims`
    dimensions: a tensor of 1s and 0s shaped (rows, 1, ...), from a bool or a (rows,) mask."""
    if isinstance(prior_expert, bool):
        prior_expert = torch.full((rows,), prior_expert, device=like.device)
    if prior_expert.shape != (rows,):
        raise ValueError(f"prior_expert mask has shape {tuple(prior_expert.shape)}, expected ({rows},)")
    return prior_expert.to(like.dtype).view(rows, *([1] * (dims - 1)))


def _product(contraction: str, mu: torch.Tensor, logvar: torch.Tensor, masks: torch.Tensor, prior_expert: bool | torch.Tensor):
    """Precision-weighted product of the experts each mask row selects, rows given by `contraction`."""
    weights = masks.to(mu.dtype)
    precision = torch.exp(-logvar)
    total_precision = torch.einsum(contraction, weights, precision)
    total_precision = total_precision + prior_precision(prior_expert, len(masks), total_precision.dim(), mu)
    mean = torch.einsum(contraction, weights, precision * mu) / total_precision
    return mean, -torch.log(total_precision)


@full_precision
def mean_product_kl(
    mu: torch.Tensor, logvar: torch.Tensor, subsets: torch.Tensor, prior_expert: bool | torch.Tensor = False,
    chunk: int = 16,
) -> torch.Tensor:
    """(1/K) sum_k KL(PoE_k || N(0, I)) per data point, shape (B,), for the K products of `subsets`.

    Equals `kl_standard_normal(*product_of_experts(mu, logvar, subsets)).mean(0)`, but walks the
    subsets `chunk` at a time in forward and backward, so no (K, B, D) tensor is ever stored: at
    M = 8 (K = 255) those tensors are 134 MB each at batch 256 and their allocation, not
    arithmetic, dominated the MoPoE step.
    """
    precision = torch.exp(-logvar)
    prior = prior_precision(prior_expert, len(subsets), 3, precision)
    return _MeanProductKL.apply(precision, precision * mu, subsets.to(mu.dtype), prior, chunk)


class _MeanProductKL(torch.autograd.Function):
    """KL_k = 1/2 sum_d (W^2/T^2 + 1/T - 1 + log T) with T = sum_m w_km P_m + prior_k (1 where a
    standard-normal expert joins product k, else 0) and W = sum_m w_km P_m mu_m; gradients dKL/dT = 1/2 (1/T - 1/T^2 - 2 W^2/T^3) and
    dKL/dW = W/T^2, mapped back to the experts by the transposed subset mask."""

    @staticmethod
    def _chunks(precision, weighted, weights, prior, chunk):
        for start in range(0, weights.shape[0], chunk):
            w = weights[start:start + chunk]
            total = torch.einsum("km,mbd->kbd", w, precision) + prior[start:start + chunk]
            yield w, total, torch.einsum("km,mbd->kbd", w, weighted)

    @staticmethod
    def forward(ctx, precision, weighted, weights, prior, chunk):
        ctx.save_for_backward(precision, weighted, weights, prior)
        ctx.chunk = chunk
        kl = precision.new_zeros(precision.shape[1])
        for _, total, mean_sum in _MeanProductKL._chunks(precision, weighted, weights, prior, chunk):
            inverse = total.reciprocal()
            per_dim = (mean_sum * inverse).square() + inverse + total.log() - 1.0
            kl += per_dim.sum((0, 2))
        return kl * (0.5 / weights.shape[0])

    @staticmethod
    def backward(ctx, grad_kl):
        precision, weighted, weights, prior = ctx.saved_tensors
        grad_precision, grad_weighted = torch.zeros_like(precision), torch.zeros_like(weighted)
        scale = (grad_kl / weights.shape[0]).view(1, -1, 1)
        for w, total, mean_sum in _MeanProductKL._chunks(precision, weighted, weights, prior, ctx.chunk):
            inverse = total.reciprocal()
            mean = mean_sum * inverse
            grad_total = (0.5 * inverse * (1.0 - inverse - 2.0 * mean.square())) * scale
            grad_precision += torch.einsum("km,kbd->mbd", w, grad_total)
            grad_weighted += torch.einsum("km,kbd->mbd", w, mean * inverse * scale)
        return grad_precision, grad_weighted, None, None, None
