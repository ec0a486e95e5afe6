"""Standard per-modality encoders and decoders, chosen by the modality's kind and shape.

Baselines and plugins share these so that comparisons differ in the objective and the posterior,
not in the networks. An encoder maps x_m to Gaussian expert parameters (mu, logvar); a decoder
maps z to the likelihood p(x_m | z) as a torch Distribution.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Laplace
from torch.nn import functional as F

from mmbench.data.base import ModalitySpec
from mmbench.errors import ConfigError

LAPLACE_SCALE = 0.75  # fixed image likelihood scale of the MoPoE PolyMNIST recipe
NETWORKS_VERSION = 2
"""Carried by every record; bump when a standard network changes. 2: the PolyMNIST encoder and
decoder follow the MoPoE reference (hidden width = latent size, no decoder sigmoid)."""

EncoderFactory = Callable[[ModalitySpec, int], nn.Module]
DecoderFactory = Callable[[ModalitySpec, int], nn.Module]
_ENCODERS: dict[tuple[str, tuple[int, ...]], EncoderFactory] = {}
_DECODERS: dict[tuple[str, tuple[int, ...]], DecoderFactory] = {}


def register_networks(kind: str, shape: tuple[int, ...], encoder: EncoderFactory, decoder: DecoderFactory) -> None:
    """Declare the standard networks for modalities of `kind` and `shape`."""
    _ENCODERS[(kind, tuple(shape))] = encoder
    _DECODERS[(kind, tuple(shape))] = decoder


def build_encoder(spec: ModalitySpec, latent_dim: int) -> nn.Module:
    return _lookup(_ENCODERS, spec)(spec, latent_dim)


def build_decoder(spec: ModalitySpec, latent_dim: int) -> nn.Module:
    return _lookup(_DECODERS, spec)(spec, latent_dim)


def _lookup(table: dict, spec: ModalitySpec):
    key = (spec.kind, tuple(spec.shape))
    if key not in table:
        known = ", ".join(f"{k}{list(s)}" for k, s in table) or "none"
        raise ConfigError(f"no standard networks for {spec.kind} modality of shape {list(spec.shape)} (known: {known})")
    return table[key]


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


class ConvEncoder28(nn.Module):
    """PolyMNIST encoder of the MoPoE reference (thomassutter/MoPoE, ConvNetworksImgCMNIST.py,
    `EncoderImg`): conv 3->32->64->128 (k3 s2 p1), Linear(2048 -> latent_dim) + ReLU, heads.

    Conv weights are channels_last, so oneDNN runs every conv in NHWC (faster on CPU)."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        channels = spec.shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, latent_dim), nn.ReLU(),
        )
        self.heads = GaussianHeads(latent_dim, latent_dim)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class ConvDecoder28(LaplaceDecoder):
    """PolyMNIST decoder of the MoPoE reference (`DecoderImg` there): Linear(latent_dim -> 2048)
    + ReLU, three transposed convs, and no output nonlinearity (the reference comments its sigmoid
    out), so the Laplace loc is unbounded; generated images are clamped to [0, 1] where they are
    scored or saved (`MultimodalVAE.generate` / `sample`). Channels_last, like the encoder."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        channels = spec.shape[0]
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 128 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (128, 4, 4)),
            nn.ConvTranspose2d(128, 64, 3, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 3, 2, 1, output_padding=1),
        )
        self.to(memory_format=torch.channels_last)


register_networks("image", (3, 28, 28), ConvEncoder28, ConvDecoder28)
register_networks("image", (1, 28, 28), ConvEncoder28, ConvDecoder28)

# Networks for other modality kinds register themselves on import.
import mmbench.networks_cub  # noqa: E402,F401
import mmbench.networks_vector  # noqa: E402,F401
