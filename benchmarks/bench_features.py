"""Inception feature extraction throughput on the CPU, batch 32, both preprocessing modes.

Run: python -m pytest benchmarks/bench_features.py --benchmark-only -s
(named bench_*.py so the default test run, which collects tests/, never picks it up).
"""
from __future__ import annotations

import pytest
import torch

from mmbench.metrics.fid import InceptionFeatures

BATCH = 32


@pytest.mark.parametrize("mode", ["pytorch-fid", "clean-fid"])
def test_inception_features_throughput(benchmark, mode: str):
    extractor = InceptionFeatures(mode, device="cpu")
    images = torch.randint(0, 256, (BATCH, 3, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    features = benchmark.pedantic(extractor, args=(images,), kwargs={"batch_size": BATCH},
                                  rounds=3, warmup_rounds=1)
    assert features.shape == (BATCH, 2048)
    images_per_s = BATCH / benchmark.stats.stats.mean
    threads = torch.get_num_threads()
    benchmark.extra_info.update(images_per_s=images_per_s, threads=threads)
    print(f"\n{mode}: {images_per_s:.2f} images/s at batch {BATCH} on {threads} CPU threads")
