"""Standard networks for 28x28 images (PolyMNIST, MNIST-like modalities): the MoPoE reference's
convolutional encoder and transposed-convolutional decoder."""
from __future__ import annotations

import torch
from torch import nn

from mmbench.data.base import ModalitySpec
from mmbench.nn.layers import GaussianHeads, LaplaceDecoder
from mmbench.nn.registry import register_networks


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
