"""Shared fixtures: tiny specs and data so every path runs on a CPU in seconds."""
from __future__ import annotations

import pytest
import torch

from mmbench import DatasetSpec, ModalitySpec


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def image_spec() -> DatasetSpec:
    return DatasetSpec("toy", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(3)), 10)


@pytest.fixture
def image_batch() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(6, 3, 28, 28, generator=g) for _ in range(3)]
