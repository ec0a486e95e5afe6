"""Standard per-modality encoders and decoders, chosen by the modality's kind and shape.

Baselines and plugins share these so that comparisons differ in the objective and the posterior,
not in the networks. An encoder maps x_m to Gaussian expert parameters (mu, logvar); a decoder
maps z to the likelihood p(x_m | z) as a torch Distribution.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Laplace
from torch.nn import functional as F

from mmbench.data.base import ModalitySpec
from mmbench.errors import ConfigError

LAPLACE_SCALE = 0.75  # fixed image likelihood scale of the MoPoE PolyMNIST recipe

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


class SequentialEncoder(nn.Module):
    """An encoder that is exactly `heads(features(x))`; M of one architecture run as one network
    (see `stacked_experts`), so subclasses only build `features` and `heads`."""

    features: nn.Sequential
    heads: GaussianHeads

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))


class LaplaceDecoder(nn.Module):
    """A decoder whose `net` gives the loc of a fixed-scale Laplace likelihood; M of one
    architecture score their targets as one network (see `stacked_log_likelihood`)."""

    net: nn.Sequential
    scale: float = LAPLACE_SCALE

    def forward(self, z: torch.Tensor) -> Distribution:
        loc = self.net(z)
        # No argument validation: it scans every pixel twice per call and loc is a sigmoid output.
        scale = loc.new_tensor(self.scale).expand_as(loc)
        return Independent(Laplace(loc, scale, validate_args=False), 3, validate_args=False)


class ConvEncoder28(SequentialEncoder):
    """PolyMNIST encoder of the MoPoE recipe: conv 3->32->64->128 (k3 s2 p1), linear 512, heads."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        channels = spec.shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(128 * 4 * 4, 512), nn.ReLU(),
        )
        self.heads = GaussianHeads(512, latent_dim)


class ConvDecoder28(LaplaceDecoder):
    """Mirror of ConvEncoder28; outputs the loc of a Laplace likelihood with fixed scale."""

    def __init__(self, spec: ModalitySpec, latent_dim: int):
        super().__init__()
        channels = spec.shape[0]
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 512), nn.ReLU(),
            nn.Linear(512, 128 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (128, 4, 4)),
            nn.ConvTranspose2d(128, 64, 3, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 3, 2, 1, output_padding=1),
            nn.Sigmoid(),
        )


# Stacked execution: M networks of one architecture (one per modality) as a single network, the
# convolutions grouped (groups = M) and the linear layers batched (bmm), with the weights read
# from the M modules on every call, so parameters, state_dict and optimizer stay per modality.
# On a CPU this runs the five PolyMNIST encoders or decoders about 2x faster than a Python loop
# over small convolutions (measured in benchmarks/bench_training.py).

CL = True
INPLACE = True
_ELEMENTWISE = (nn.ReLU, nn.Sigmoid)
_STACKABLE = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Flatten, nn.Unflatten, *_ELEMENTWISE)


def _stackable(nets: Sequence[nn.Sequential]) -> bool:
    """Same layer types and hyperparameters in every network, all of them layers we can stack."""
    first = nets[0]
    for layer in first:
        if type(layer) not in _STACKABLE or getattr(layer, "padding_mode", "zeros") != "zeros":
            return False
        if isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) != (1, -1) or isinstance(layer, nn.Unflatten) and layer.dim != 1:
            return False
    return all(
        len(net) == len(first) and all(type(a) is type(b) and a.extra_repr() == b.extra_repr() for a, b in zip(net, first))
        for net in nets[1:]
    )


def _ends_in_images(net: nn.Sequential) -> bool:
    """Whether the network's output is an image batch, i.e. its last weighted layer is a conv."""
    weighted = [layer for layer in net if not isinstance(layer, _ELEMENTWISE)]
    return bool(weighted) and isinstance(weighted[-1], (nn.Conv2d, nn.ConvTranspose2d))


def _run_stacked(nets: Sequence[nn.Sequential], h: torch.Tensor) -> torch.Tensor:
    """Apply M stackable networks at once. Layouts: images (B, M*C, H, W), vectors (M, B, F), or
    one (B, F) input shared by all M networks before their first linear layer."""
    m = len(nets)
    fresh = False
    for layers in zip(*nets):
        first = layers[0]
        if INPLACE and fresh and isinstance(first, nn.ReLU):
            h = torch.relu_(h)
        elif INPLACE and fresh and isinstance(first, nn.Sigmoid):
            h = torch.sigmoid_(h)
        elif isinstance(first, (nn.Conv2d, nn.ConvTranspose2d)):
            weight = torch.cat([layer.weight for layer in layers])
            bias = None if first.bias is None else torch.cat([layer.bias for layer in layers])
            if isinstance(first, nn.Conv2d):
                h = F.conv2d(h, weight, bias, first.stride, first.padding, first.dilation, m * first.groups)
            else:
                h = F.conv_transpose2d(h, weight, bias, first.stride, first.padding, first.output_padding,
                                       m * first.groups, first.dilation)
        elif isinstance(first, nn.Linear):
            weight = torch.stack([layer.weight for layer in layers])  # (M, out, in)
            bias = None if first.bias is None else torch.stack([layer.bias for layer in layers])
            if h.dim() == 2:  # shared input: one wide matmul
                h = F.linear(h, weight.flatten(0, 1), None if bias is None else bias.flatten())
                h = h.unflatten(1, (m, -1)).transpose(0, 1)
            elif bias is None:
                h = torch.bmm(h, weight.transpose(1, 2))
            else:
                h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        elif isinstance(first, nn.Flatten):  # (B, M*C, H, W) -> (M, B, C*H*W)
            h = h.unflatten(1, (m, -1)).flatten(2).transpose(0, 1)
        elif isinstance(first, nn.Unflatten):  # (M, B, C*H*W) -> (B, M*C, H, W)
            c, *hw = first.unflattened_size
            if CL:
                h = h.unflatten(2, (c, *hw)).permute(1, 3, 4, 0, 2).reshape(h.shape[1], *hw, m * c).permute(0, 3, 1, 2)
            else:
                h = h.transpose(0, 1).reshape(h.shape[1], m * c, *hw)
        else:
            h = first(h)
        fresh = isinstance(first, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    return h


def stacked_experts(encoders: Sequence[nn.Module], xs: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(M, B, D) means and log-variances of M encoders in one stacked pass; None where that does
    not apply (an absent modality, mixed architectures, inputs of different shapes), so the
    caller loops over the encoders instead."""
    if (
        any(x is None for x in xs)
        or len({type(e) for e in encoders}) != 1
        or not isinstance(encoders[0], SequentialEncoder)
        or len({(x.shape, x.dtype) for x in xs}) != 1
        or not _stackable([e.features for e in encoders])
    ):
        return None
    first = encoders[0].features[0]
    h = torch.cat(list(xs), 1) if isinstance(first, nn.Conv2d) else torch.stack(list(xs))
    if CL and h.dim() == 4:
        h = h.contiguous(memory_format=torch.channels_last)
    h = _run_stacked([e.features for e in encoders], h)  # (M, B, F)
    heads = [e.heads for e in encoders]
    weight = torch.stack([torch.cat([head.mu.weight, head.logvar.weight]) for head in heads])
    bias = torch.stack([torch.cat([head.mu.bias, head.logvar.bias]) for head in heads])
    mu, logvar = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)).chunk(2, -1)
    return mu, logvar


def stacked_log_likelihood(decoders: Sequence[nn.Module], z: torch.Tensor, xs: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """sum_m log p(x_m | z) for latents z (N, D) shared by M Laplace decoders, N a multiple of
    the batch size B of the targets xs (B, C, H, W); the loc is never materialised per decoder
    and the targets are broadcast, not repeated. None where stacking does not apply."""
    if (
        len({type(d) for d in decoders}) != 1
        or not isinstance(decoders[0], LaplaceDecoder)
        or len({d.scale for d in decoders}) != 1
        or any(x is None for x in xs)
        or len({(x.shape, x.dtype) for x in xs}) != 1
        or z.shape[0] % xs[0].shape[0]
        or not _stackable([d.net for d in decoders])
        or not _ends_in_images(decoders[0].net)
    ):
        return None
    scale = decoders[0].scale
    loc = _run_stacked([d.net for d in decoders], z)  # (N, M*C, H, W)
    b, m = xs[0].shape[0], len(decoders)
    if CL:
        c, hh, ww = xs[0].shape[1:]
        loc = loc.permute(0, 2, 3, 1).reshape(-1, b, hh, ww, m, c)
        target = torch.stack(list(xs), 1).permute(0, 3, 4, 1, 2)
        distance = F.l1_loss(loc, target.expand_as(loc), reduction="none").sum((2, 3, 5))
    else:
        loc = loc.reshape(-1, b, m, *xs[0].shape[1:])  # (N / B, B, M, C, H, W)
        target = torch.stack(list(xs), 1)  # (B, M, C, H, W)
        distance = F.l1_loss(loc, target.expand_as(loc), reduction="none").flatten(3).sum(-1)
    log_prob = -distance / scale - math.prod(xs[0].shape[1:]) * math.log(2 * scale)  # (N / B, B, M)
    return log_prob.sum(-1).flatten()


register_networks("image", (3, 28, 28), ConvEncoder28, ConvDecoder28)
register_networks("image", (1, 28, 28), ConvEncoder28, ConvDecoder28)

# Networks for other modality kinds register themselves on import.
import mmbench.networks_cub  # noqa: E402,F401
import mmbench.networks_vector  # noqa: E402,F401
