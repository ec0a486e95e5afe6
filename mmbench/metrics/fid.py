"""FID: Inception pool3 features, preprocessed as pytorch-fid or clean-fid does, and their distance.

Images are float tensors in [0, 1] (uint8 tensors are scaled), shape (N, C, H, W), C in {1, 3}.
Reference (test-set) statistics are cached on disk, keyed by image content and extractor id, so
the expensive pass over the test set runs once per dataset and preprocessing mode.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from mmbench.data.base import to_model_input
from mmbench.files import atomic_torch_save
from mmbench.metrics.frechet import FeatureStatistics, FrechetDistance

MODES = ("pytorch-fid", "clean-fid")
INPUT_SIZE = 299


def _to_rgb(images: torch.Tensor) -> torch.Tensor:
    images = to_model_input(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def pytorch_fid_preprocess(images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's InceptionV3(resize_input=True, normalize_input=True): bilinear, then 2x-1."""
    x = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def clean_fid_preprocess(images: torch.Tensor) -> torch.Tensor:
    """clean-fid's "clean" mode as `compute_fid` applies it to folders of PNGs.

    Quantize to uint8 as torchvision's save_image does (x*255 + 0.5, truncated), resize each
    channel as a float32 PIL image with bicubic filtering, clip to [0, 255], and normalize
    as clean-fid's InceptionV3W does: (x - 128) / 128.
    """
    quantized = images.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()
    resized = np.stack([
        np.stack([
            np.asarray(Image.fromarray(channel.astype(np.float32)).resize(
                (INPUT_SIZE, INPUT_SIZE), resample=Image.Resampling.BICUBIC
            ))
            for channel in image
        ])
        for image in quantized
    ]).clip(0, 255)
    return (torch.from_numpy(resized).to(images.device) - 128) / 128


class InceptionFeatures:
    """Images in [0, 1] -> (N, 2048) float32 pool3 features on the CPU, in batches.

    `mode` picks the preprocessing: "pytorch-fid" (bilinear resize, no quantization) or
    "clean-fid" (uint8 quantization, PIL bicubic resize). `id` names the extractor in cache keys.
    """

    def __init__(self, mode: str = "pytorch-fid", device: str | torch.device = "cpu",
                 weights: str | os.PathLike | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown FID mode {mode!r}; expected one of {MODES}")
        self.mode = mode
        self.device = torch.device(device)
        # imported here so that importing this module (as mmbench.metrics.families does) skips torchvision
        from mmbench.evaluation.inception import load_fid_inception

        self.net = load_fid_inception(weights).to(self.device)
        self.preprocess = pytorch_fid_preprocess if mode == "pytorch-fid" else clean_fid_preprocess

    @property
    def id(self) -> str:
        return f"inception-2015-12-05-pool3/{self.mode}/v1"

    def __call__(self, images: torch.Tensor, batch_size: int = 32,
                 progress: bool = False) -> torch.Tensor:
        chunks = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(images), batch_size), desc="Inception features",
                              disable=not progress, leave=False):
                batch = _to_rgb(images[start:start + batch_size].to(self.device))
                chunks.append(self.net(self.preprocess(batch)).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, 2048)


class FID(FrechetDistance):
    """Frechet Inception Distance; `update(real=images, fake=images)` extracts features first."""

    name: ClassVar[str] = "fid"
    higher_is_better: ClassVar[bool] = False
    label: ClassVar[str] = "FID"
    digits: ClassVar[int] = 2

    def __init__(self, extractor: InceptionFeatures,
                 reference: tuple[torch.Tensor, torch.Tensor] | None = None,
                 detail: str = "value", batch_size: int = 32):
        self.extractor = extractor
        self.batch_size = batch_size
        super().__init__(reference=reference, detail=detail)

    def update(self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        def features(images: torch.Tensor | None) -> torch.Tensor | None:
            return None if images is None else self.extractor(images, self.batch_size)
        super().update(real=features(real), fake=features(fake))


def _content_digest(images: torch.Tensor) -> str:
    t = images.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def dataset_statistics(images: torch.Tensor, extractor: InceptionFeatures,
                       cache_dir: str | os.PathLike | None = None,
                       batch_size: int = 32, progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) in float64 of `images`' features, cached in `cache_dir` when it is given.

    The file name hashes the images' content and `extractor.id`, so a changed dataset or
    preprocessing never reuses stale statistics; writes are atomic (`atomic_torch_save`).
    """
    key = hashlib.sha256(f"{_content_digest(images)}:{extractor.id}".encode()).hexdigest()
    path = Path(cache_dir) / f"fid-stats-{key[:32]}.pt" if cache_dir is not None else None
    if path is not None and path.is_file():
        cached = torch.load(path, map_location="cpu", weights_only=True)
        return cached["mu"], cached["sigma"]
    stats = FeatureStatistics()
    for start in tqdm(range(0, len(images), batch_size), desc=f"FID reference ({extractor.mode})", disable=not progress,
                      leave=False):
        stats.update(extractor(images[start:start + batch_size], batch_size))
    mu, sigma = stats.mean(), stats.cov()
    if path is not None:
        atomic_torch_save(path, {"mu": mu, "sigma": sigma, "n": stats.n, "extractor": extractor.id})
    return mu, sigma
