"""Which standard encoder and decoder a modality gets, looked up by its kind and shape.

Baselines and plugins share these networks so that comparisons differ in the objective and the
posterior, not in the networks. An encoder maps x_m to Gaussian expert parameters (mu, logvar); a
decoder maps z to the likelihood p(x_m | z) as a torch Distribution. The modules of this package
register their networks when `mmbench.nn` is imported.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from mmbench.data.base import ModalitySpec
from mmbench.errors import ConfigError

NETWORKS_VERSION = 2
"""Carried by every record; bump when a standard network changes. 2: the PolyMNIST encoder and
decoder follow the MoPoE reference (hidden width = latent size, no decoder sigmoid)."""

ANY_SHAPE = None
"""Register with `shape=ANY_SHAPE` for networks that adapt to any shape of their kind."""

EncoderFactory = Callable[[ModalitySpec, int], nn.Module]
DecoderFactory = Callable[[ModalitySpec, int], nn.Module]
_ENCODERS: dict[tuple[str, tuple[int, ...] | None], EncoderFactory] = {}
_DECODERS: dict[tuple[str, tuple[int, ...] | None], DecoderFactory] = {}


def register_networks(kind: str, shape: tuple[int, ...] | None, encoder: EncoderFactory, decoder: DecoderFactory) -> None:
    """Declare the standard networks for modalities of `kind` and `shape` (ANY_SHAPE: every
    shape of that kind without networks of its own)."""
    key = (kind, None if shape is ANY_SHAPE else tuple(shape))
    _ENCODERS[key] = encoder
    _DECODERS[key] = decoder


def build_encoder(spec: ModalitySpec, latent_dim: int) -> nn.Module:
    return _lookup(_ENCODERS, spec)(spec, latent_dim)


def build_decoder(spec: ModalitySpec, latent_dim: int) -> nn.Module:
    return _lookup(_DECODERS, spec)(spec, latent_dim)


def _lookup(table: dict, spec: ModalitySpec):
    for key in ((spec.kind, tuple(spec.shape)), (spec.kind, ANY_SHAPE)):
        if key in table:
            return table[key]
    known = ", ".join(f"{k}{list(s) if s is not None else '[any]'}" for k, s in table) or "none"
    raise ConfigError(f"no standard networks for {spec.kind} modality of shape {list(spec.shape)} (known: {known})")
