"""Standard networks for CUB Image-Captions: 64x64 RGB images and 32-token captions.

Images use a four-layer conv encoder and its transposed mirror with the same fixed-scale Laplace
likelihood as PolyMNIST. Captions are embedded and convolved in 1D (as MMVAE's sentence VAE
does, without its 2D tricks); the decoder predicts every position's token at once, and its
likelihood ignores padding, so a model is neither rewarded for predicting padding nor penalised
for what it puts after the end of a caption.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Laplace
from torch.nn import functional as F

from mmbench.data.base import EOS, PAD, ModalitySpec
from mmbench.errors import ConfigError
from mmbench.nn.layers import LAPLACE_SCALE, GaussianHeads
from mmbench.nn.registry import ANY_SHAPE, register_networks

EMBEDDING_DIM = 128


class ConvEncoder64(nn.Module):
    """conv 3->32->64->128->256 (k4 s2 p1: 64 -> 4 px), then Gaussian heads on the 4096 features."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(spec.shape[0], 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(128, 256, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )
        self.heads = GaussianHeads(256 * 4 * 4, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class ConvDecoder64(nn.Module):
    """Mirror of ConvEncoder64; outputs the loc of a Laplace likelihood with fixed scale."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (256, 4, 4)),
            nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, spec.shape[0], 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> Distribution:
        loc = self.net(z)
        return Independent(Laplace(loc, torch.full_like(loc, LAPLACE_SCALE)), 3)


class MaskedCategorical(Distribution):
    """Independent categoricals over token positions whose log-likelihood skips padding.

    `logits` is (N, L, V); batch shape (N,), event shape (L,). `log_prob(x)` sums log p(x_l) over
    the positions where x_l is not <pad>. `mean` is the most likely token per position with
    everything after the first <eos> set to <pad>, so generated captions have the data's layout.
    """

    arg_constraints: dict = {}

    def __init__(self, logits: torch.Tensor, pad: int = PAD, eos: int = EOS):
        self.logits = logits
        self.pad = pad
        self.eos = eos
        super().__init__(logits.shape[:-2], logits.shape[-2:-1], validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        nll = F.cross_entropy(
            self.logits.reshape(-1, self.logits.shape[-1]), value.reshape(-1), reduction="none", ignore_index=self.pad
        )
        return -nll.view(value.shape).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        tokens = self.logits.argmax(-1)
        is_eos = (tokens == self.eos).long()
        after_eos = (is_eos.cumsum(-1) - is_eos) > 0
        return tokens.masked_fill(after_eos, self.pad)

    @property
    def mode(self) -> torch.Tensor:
        return self.mean


def _vocab_size(spec: ModalitySpec) -> int:
    if not spec.vocab_size:
        raise ConfigError(f"text modality {spec.name!r} needs a vocab_size in its ModalitySpec")
    return spec.vocab_size


class CaptionEncoder(nn.Module):
    """Word embeddings (128-d, <pad> embedded as zeros), conv1d 128->256->512->512 (k4 s2 p1:
    32 -> 4 positions), then Gaussian heads on the 2048 features."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        self.embed = nn.Embedding(_vocab_size(spec), EMBEDDING_DIM, padding_idx=PAD)
        self.features = nn.Sequential(
            nn.Conv1d(EMBEDDING_DIM, 256, 4, 2, 1), nn.ReLU(),
            nn.Conv1d(256, 512, 4, 2, 1), nn.ReLU(),
            nn.Conv1d(512, 512, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )
        self.heads = GaussianHeads(512 * (spec.shape[0] // 8), latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(self.embed(x).transpose(1, 2)))


class CaptionDecoder(nn.Module):
    """Mirror of CaptionEncoder: latent -> 512 x 4 -> transposed conv1d to 32 positions -> logits
    over the vocabulary per position, as a MaskedCategorical."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        positions = spec.shape[0] // 8
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 512 * positions), nn.ReLU(),
            nn.Unflatten(1, (512, positions)),
            nn.ConvTranspose1d(512, 512, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose1d(512, 256, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose1d(256, EMBEDDING_DIM, 4, 2, 1), nn.ReLU(),
            nn.Conv1d(EMBEDDING_DIM, _vocab_size(spec), 1),
        )

    def forward(self, z: torch.Tensor) -> Distribution:
        return MaskedCategorical(self.net(z).transpose(1, 2))


register_networks("image", (3, 64, 64), ConvEncoder64, ConvDecoder64)
register_networks("text", ANY_SHAPE, CaptionEncoder, CaptionDecoder)  # any caption length divisible by 8
