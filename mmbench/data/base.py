"""In-memory multimodal datasets: what a dataset factory returns and what a model factory sees.

Every split is held as one uint8 (images) or int64 (tokens) tensor per modality, so a training
batch is an index into memory plus one vectorized conversion, never per-item decoding.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch


SPECIAL_TOKENS = ("<exc>", "<pad>", "<eos>")
EXC, PAD, EOS = 0, 1, 2
"""Token ids every text modality reserves, MMVAE's order: <exc> is any word outside the
vocabulary; text likelihoods ignore <pad>, and a caption ends at <eos>."""


@dataclass(frozen=True)
class ModalitySpec:
    """One modality: `kind` is "image" (uint8 CxHxW, scaled to [0,1]) or "text" (int64 tokens)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    vocab_size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """What a model factory needs to know about the data it will be trained on."""

    name: str
    modalities: tuple[ModalitySpec, ...]
    num_classes: int | None = None

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)


@dataclass
class MultimodalSplit:
    """One split: `modalities[m]` is an (N, ...) tensor, `labels` the shared label or None."""

    modalities: list[torch.Tensor]
    labels: torch.Tensor | None = None

    def __post_init__(self):
        sizes = {len(x) for x in self.modalities}
        if self.labels is not None:
            sizes.add(len(self.labels))
        if len(sizes) != 1:
            raise ValueError(f"modalities and labels differ in length: {sorted(sizes)}")

    def __len__(self) -> int:
        return len(self.modalities[0])

    def batch(self, index: torch.Tensor | slice) -> list[torch.Tensor]:
        """Model inputs for rows `index`: images as float32 in [0,1], tokens unchanged."""
        return [to_model_input(x[index]) for x in self.modalities]

    def subset(self, index: torch.Tensor | slice) -> "MultimodalSplit":
        labels = None if self.labels is None else self.labels[index]
        return MultimodalSplit([x[index] for x in self.modalities], labels)


def to_model_input(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


@dataclass
class MultimodalDataset:
    """A built dataset: its spec, train/test splits, a content checksum and provenance."""

    spec: DatasetSpec
    train: MultimodalSplit
    test: MultimodalSplit
    info: dict = field(default_factory=dict)
    checksum: str = ""

    def __post_init__(self):
        if not self.checksum:
            self.checksum = content_checksum(self.train, self.test)


def provenance(source: str, recipe_version: int, train: MultimodalSplit, test: MultimodalSplit, cache: Path, **details) -> dict:
    """A built dataset's `info`: what every builder records (source, recipe version, split sizes,
    modality count, cache file) around the builder's own `details`."""
    return {"source": source, "recipe_version": recipe_version, "n_train": len(train), "n_test": len(test),
            "num_modalities": len(train.modalities), **details, "cache": str(cache)}


def content_checksum(*splits: MultimodalSplit) -> str:
    """sha256 over every tensor's dtype, shape and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for split in splits:
        tensors = list(split.modalities) + ([split.labels] if split.labels is not None else [])
        for t in tensors:
            t = t.contiguous().cpu()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.numpy().tobytes())
    return digest.hexdigest()
