"""How an `evaluate_*` function walks a split: batch size, seed, device and progress bar, in one object.

Every sampling estimator draws its noise inside `batches`, which seeds a forked random state, so a
score depends on the seed alone and the caller's random stream is left where it was.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from tqdm import tqdm

from mmbench.data.base import MultimodalSplit
from mmbench.random_state import private_rng


@dataclass(frozen=True)
class EvalPass:
    batch_size: int = 250
    seed: int = 0
    device: torch.device = torch.device("cpu")
    progress: bool = True

    def batches(self, split: MultimodalSplit, desc: str, rows: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, list[torch.Tensor]]]:
        """(row indices, modality tensors on `device`) per batch of `rows` (default: all of `split`),
        under the random state `seed` gives."""
        rows = torch.arange(len(split)) if rows is None else rows
        with private_rng(self.device):
            torch.manual_seed(self.seed)
            for start in tqdm(range(0, len(rows), self.batch_size), desc=desc, disable=not self.progress, leave=False):
                index = rows[start:start + self.batch_size]
                yield index, [x.to(self.device) for x in split.batch(index)]
