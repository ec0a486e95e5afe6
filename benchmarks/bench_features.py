"""Feature extraction throughput on the CPU: Inception (batch 32, both preprocessing modes) for
FID, and the coherence classifier's penultimate features for the quick tier's feature distance.

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


def test_classifier_features_throughput(benchmark):
    """The quick tier's cheap stand-in for FID: penultimate features of a coherence classifier
    (the pinned recipe's architecture, untrained weights cost the same), batch 250 as in eval."""
    from mmbench.evaluation.classifiers import RECIPE, ImageClassifier

    batch = 250
    net = ImageClassifier(3, 10, RECIPE["width"]).eval()
    images = torch.rand(batch, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = benchmark.pedantic(net.features, args=(images,), rounds=5, warmup_rounds=1)
    assert features.shape == (batch, 4 * RECIPE["width"])
    images_per_s = batch / benchmark.stats.stats.mean
    benchmark.extra_info.update(images_per_s=images_per_s, threads=torch.get_num_threads())
    print(f"\nclassifier features: {images_per_s:.0f} images/s at batch {batch} on {torch.get_num_threads()} CPU threads")
