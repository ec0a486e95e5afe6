"""Frechet distance between Gaussians fitted to two feature sets, for any feature extractor.

FID is this distance on Inception pool3 features; the same code scores classifier features.
Statistics are accumulated in float64 so the result does not depend on how data was batched.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from scipy.linalg import lapack

from mmbench.metrics.base import Metric

ArrayLike = np.ndarray | torch.Tensor


def _as_float64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _low_rank_factor(sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, order) with sigma[order][:, order] = L @ L.T, L of shape (D, rank).

    Pivoted Cholesky (LAPACK dpstrf) stops at the numerical rank, so singular covariances
    (fewer samples than dimensions) keep their exact rank instead of round-off directions.
    """
    factor, pivots, rank, info = lapack.dpstrf(sigma, lower=1)
    if info < 0:
        raise ValueError(f"LAPACK dpstrf rejected argument {-info}")
    return np.tril(factor)[:, :rank], pivots - 1


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), computed in float64.

    With S1 = L L^T, the eigenvalues of S1 S2 are those of the symmetric PSD matrix L^T S2 L,
    so tr((S1 S2)^(1/2)) is the sum of their square roots: one symmetric eigenvalue problem
    of size rank(S1) replaces scipy's general sqrtm, with no imaginary parts and no eps offset.
    """
    mu1, mu2 = _as_float64(mu1).ravel(), _as_float64(mu2).ravel()
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1)), np.atleast_2d(_as_float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    factor, order = _low_rank_factor(sigma1)
    inner = factor.T @ sigma2[np.ix_(order, order)] @ factor
    eigvals = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


class FeatureStatistics:
    """Streaming mean and unbiased covariance of (N, D) feature batches, in float64 on the CPU.

    Sums are taken around the first batch's mean (the "shifted data" algorithm), so the
    covariance does not lose precision to cancellation when features have a large offset.
    """

    def __init__(self):
        self.n = 0
        self._shift: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._outer: torch.Tensor | None = None

    def update(self, features: torch.Tensor) -> None:
        x = features.detach().to("cpu", torch.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {tuple(x.shape)}")
        if len(x) == 0:
            return
        if self._shift is None:
            self._shift = x.mean(0)
            self._sum = torch.zeros_like(self._shift)
            self._outer = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
        elif x.shape[1] != self._shift.shape[0]:
            raise ValueError(f"feature size changed from {self._shift.shape[0]} to {x.shape[1]}")
        x = x - self._shift
        self._sum += x.sum(0)
        self._outer += x.T @ x
        self.n += x.shape[0]

    def mean(self) -> torch.Tensor:
        if self.n == 0:
            raise ValueError("no features accumulated")
        return self._shift + self._sum / self.n

    def cov(self) -> torch.Tensor:
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.n}")
        shifted_mean = self._sum / self.n
        return (self._outer - self.n * torch.outer(shifted_mean, shifted_mean)) / (self.n - 1)


class FrechetDistance(Metric):
    """Frechet distance between `real` and `fake` features, accumulated batch by batch.

    `reference` = (mu, sigma) fixes the real side (e.g. cached test-set statistics); then only
    `fake` may be passed to `update`. `detail` names the value in `compute()`'s result.
    """

    name: ClassVar[str] = "fd"
    higher_is_better: ClassVar[bool] = False
    lower: ClassVar[float | None] = 0.0

    def __init__(self, reference: tuple[torch.Tensor, torch.Tensor] | None = None,
                 detail: str = "value"):
        self.reference = reference
        self.detail = detail
        super().__init__()

    def reset(self) -> None:
        self.real_stats = FeatureStatistics()
        self.fake_stats = FeatureStatistics()

    def update(self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        if real is not None:
            if self.reference is not None:
                raise ValueError("real features given although reference statistics are fixed")
            self.real_stats.update(real)
        if fake is not None:
            self.fake_stats.update(fake)

    def compute(self) -> dict[str, float]:
        if self.reference is not None:
            mu_real, sigma_real = self.reference
        else:
            mu_real, sigma_real = self.real_stats.mean(), self.real_stats.cov()
        value = frechet_distance(self.fake_stats.mean(), self.fake_stats.cov(), mu_real, sigma_real)
        return {f"{self.name}/{self.detail}": value}
