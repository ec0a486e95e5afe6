"""The contract a multimodal VAE fulfils to be trained and scored by mmbench.

A model implements three methods; everything the harness needs (conditional generation from any
subset, unconditional sampling, latent probes) is derived from them:

- `encode(xs, subsets)`: the posterior q(z | x_S) for each subset S, as one torch Distribution
  with batch shape (K, B) and event shape (latent_dim,).
- `decode(z, m)`: the likelihood p(x_m | z) as a torch Distribution; its `.mean` is the point
  used for generated samples (an image, or the token ids of a caption).
- `objective(xs)`: the per-sample training objective to maximise (an ELBO-type bound), shape (B,).

Inputs `xs` are a list with one batch tensor per modality (images float in [0, 1], captions as
token ids); a modality no subset needs may be None. Subsets are (K, M) boolean masks, see
`mmbench.objectives.subsets`.

Optional declarations, with defaults: `mixture_subsets` / `mixture_weights` (the mixture the
objective optimises, read by the discrepancy metric), `log_likelihood` (a faster density for the
likelihood metrics), `prior`, `version`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from mmbench.data.base import DatasetSpec
from mmbench.errors import PluginError


class MultimodalVAE(nn.Module, ABC):
    """Base class of every model; subclasses set `latent_dim` and implement the three methods.

    `version` is part of every record the model produces: bump it whenever a change alters the
    model's scores (its objective, posterior or own networks), so that the leaderboard and the
    regression gate never pool or compare numbers across the change."""

    version: int = 1

    def __init__(self, spec: DatasetSpec, latent_dim: int):
        super().__init__()
        self.spec = spec
        self.num_modalities = spec.num_modalities
        self.latent_dim = latent_dim
        self.register_buffer("_prior_loc", torch.zeros(latent_dim), persistent=False)

    @abstractmethod
    def encode(self, xs: Sequence[torch.Tensor | None], subsets: torch.Tensor) -> Distribution:
        """q(z | x_S) for each row of `subsets` (K, M): batch shape (K, B), event (latent_dim,)."""

    @abstractmethod
    def decode(self, z: torch.Tensor, m: int) -> Distribution:
        """p(x_m | z) for latents z of shape (N, latent_dim)."""

    @abstractmethod
    def objective(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-sample training objective to maximise, shape (B,)."""

    def loss(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Scalar to minimise: the negative mean objective. An objective that is not one value
        per sample is refused here, so `run` never trains (and publishes) a misshapen one."""
        objective = self.objective(xs)
        batch = next(len(x) for x in xs if x is not None)
        if not isinstance(objective, torch.Tensor) or tuple(objective.shape) != (batch,):
            shape = tuple(objective.shape) if isinstance(objective, torch.Tensor) else type(objective).__name__
            raise PluginError(f"{type(self).__name__}.objective returned shape {shape}; expected ({batch},), one value per sample")
        return -objective.mean()

    @property
    def mixture_subsets(self) -> torch.Tensor | None:
        """The (K, M) subsets S whose posteriors q(z | x_S) each reconstruct every modality in the
        objective, i.e. the mixture ELBO the paper's discrepancy Delta is defined for. None (the
        default) declares no such mixture: the discrepancy metric then does not apply."""
        return None

    @property
    def mixture_weights(self) -> torch.Tensor | None:
        """(K,) weights of `mixture_subsets`, summing to one; None (the default) means uniform."""
        return None

    def log_likelihood(self, z: torch.Tensor, xs: Sequence[torch.Tensor], modalities: Sequence[int] | None = None) -> torch.Tensor:
        """sum_m log p(x_m | z) over `modalities` (default all) for latents (..., B, D); returns
        (..., B). Uses `decode`'s distribution; override with a direct density to go faster."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        total = torch.zeros(flat.shape[0], device=z.device)
        for m in range(self.num_modalities) if modalities is None else modalities:
            x = xs[m]
            repeats = flat.shape[0] // x.shape[0]
            target = x.repeat(repeats, *([1] * (x.dim() - 1))) if repeats > 1 else x
            total = total + self.decode(flat, m).log_prob(target)
        return total.reshape(lead)

    def prior(self) -> Distribution:
        """p(z); a standard normal unless a model overrides it."""
        loc = self._prior_loc
        return Independent(Normal(loc, torch.ones_like(loc)), 1)

    @torch.no_grad()
    def generate(
        self, xs: Sequence[torch.Tensor | None], subsets: torch.Tensor, targets: Sequence[int] | None = None
    ) -> list[torch.Tensor | None]:
        """Conditional generation: for each target m, a (K, B, ...) tensor of samples of x_m.

        One latent sample per (subset, data point), decoded once per target modality for all
        subsets together.
        """
        z = self.encode(xs, subsets).sample()  # (K, B, D)
        k, b = z.shape[:2]
        targets = range(self.num_modalities) if targets is None else targets
        out: list[torch.Tensor | None] = [None] * self.num_modalities
        for m in targets:
            x = self.observation(z.reshape(k * b, -1), m)
            out[m] = x.reshape(k, b, *x.shape[1:])
        return out

    @torch.no_grad()
    def sample(self, n: int) -> list[torch.Tensor]:
        """Unconditional generation: n joint samples from the prior, one tensor per modality."""
        z = self.prior().sample((n,))
        return [self.observation(z, m) for m in range(self.num_modalities)]

    def observation(self, z: torch.Tensor, m: int) -> torch.Tensor:
        """The generated x_m for latents z: the likelihood's mean, clamped to [0, 1] for images
        (a Laplace loc is unbounded) so that classifiers, feature statistics and saved grids
        only ever see valid pixels."""
        x = self.decode(z, m).mean
        return x.clamp(0.0, 1.0) if self.spec.modalities[m].kind == "image" else x
