"""Building blocks shared by the standard networks: Gaussian posterior heads and the
fixed-scale Laplace image likelihood. Imports nothing from mmbench."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Laplace
from torch.nn import functional as F

LAPLACE_SCALE = 0.75  # fixed image likelihood scale of the MoPoE PolyMNIST recipe


class GaussianHeads(nn.Module):
    """Linear mean and log-variance heads on a shared feature vector."""

    def __init__(self, features: int, latent_dim: int):
        super().__init__()
        self.mu = nn.Linear(features, latent_dim)
        self.logvar = nn.Linear(features, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)


class LaplaceDecoder(nn.Module):
    """A decoder whose `net` maps z to the loc of an image likelihood with fixed Laplace scale."""

    net: nn.Sequential
    scale: float = LAPLACE_SCALE

    def forward(self, z: torch.Tensor) -> Distribution:
        loc = self.net(z)
        # No argument validation: it costs extra passes over every pixel.
        scale = loc.new_tensor(self.scale).expand_as(loc)
        return Independent(Laplace(loc, scale, validate_args=False), 3, validate_args=False)

    def log_likelihood(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) for latents z (R*B, D) and targets x (B, C, H, W), returns (R*B,): the
        Laplace log-density summed directly, with x broadcast over the R latents per data point
        instead of repeated R times, in two full-size passes instead of the distribution's seven."""
        loc = self.net(z).to(x.dtype).unflatten(0, (-1, x.shape[0]))  # (R, B, C, H, W); x's dtype under autocast
        distance = F.l1_loss(loc, x.expand_as(loc), reduction="none").sum((-3, -2, -1))
        return (-distance / self.scale - x[0].numel() * math.log(2 * self.scale)).flatten()
