"""A private random stream for work that must not move the caller's: judges trained on first use,
evaluation passes, learning-curve points. Otherwise a run's scores would depend on whether an asset
was cached or a curve point was taken."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def private_rng(device: torch.device) -> Iterator[None]:
    """Restore the CPU generator, and `device`'s when it is a GPU, on leaving: `torch.manual_seed`
    inside reseeds the CUDA generators too, so forking the CPU's alone is not enough there."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield
