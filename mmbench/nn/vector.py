"""Standard networks for flat binary modalities (kind "binary", shape (D,)): MLPs.

A binary modality has a Bernoulli likelihood, so the log-likelihood of discrete data is an
exact log-probability (in nats) and can be compared with closed-form entropies. They adapt to
any width, so they are registered for every shape of the kind.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent

from mmbench.data.base import ModalitySpec
from mmbench.nn.layers import GaussianHeads
from mmbench.nn.registry import ANY_SHAPE, register_networks

HIDDEN = 128


class MLPEncoder(nn.Module):
    """D -> 128 -> 128 (ReLU) -> Gaussian heads (mu, logvar)."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        (dim,) = spec.shape
        self.features = nn.Sequential(
            nn.Linear(dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU()
        )
        self.heads = GaussianHeads(HIDDEN, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class BernoulliDecoder(nn.Module):
    """latent -> 128 -> 128 (ReLU) -> D logits of independent Bernoullis; `.mean` is p(x = 1)."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        (dim,) = spec.shape
        self.net = nn.Sequential(
            nn.Linear(latent_dim, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, dim),
        )

    def forward(self, z: torch.Tensor) -> Distribution:
        return Independent(Bernoulli(logits=self.net(z)), 1)


register_networks("binary", ANY_SHAPE, MLPEncoder, BernoulliDecoder)
