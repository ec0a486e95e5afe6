"""Scores a trained model: drives generation and feeds the metric objects, seeded."""
from __future__ import annotations

import torch
from tqdm import tqdm

from mmbench.api import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.metrics.coherence import ConditionalCoherence, UnconditionalCoherence
from mmbench.subsets import all_subsets


@torch.no_grad()
def evaluate_coherence(
    model: MultimodalVAE,
    test: MultimodalSplit,
    classifiers: list[torch.nn.Module],
    *,
    batch_size: int,
    unconditional_samples: int,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> dict[str, float]:
    """Conditional coherence over every non-empty subset and unconditional coherence.

    For each target m, generation conditions on the subsets without m only, so each (subset,
    target) pair costs exactly one decoder pass.
    """
    model.eval()
    torch.manual_seed(seed)
    subsets = all_subsets(model.num_modalities)
    conditional = ConditionalCoherence(subsets)
    for start in tqdm(range(0, len(test), batch_size), desc="coherence", disable=not progress, leave=False):
        index = slice(start, start + batch_size)
        xs = [x.to(device) for x in test.batch(index)]
        labels = test.labels[index]
        for m in range(model.num_modalities):
            rows = torch.nonzero(~subsets[:, m]).flatten()
            inputs = [None if i == m else x for i, x in enumerate(xs)]
            generated = model.generate(inputs, subsets[rows].to(device), targets=[m])[m]
            predictions = classifiers[m](generated.flatten(0, 1)).argmax(1).view(len(rows), -1)
            conditional.update(m, rows, predictions, labels)
    unconditional = UnconditionalCoherence()
    for start in range(0, unconditional_samples, batch_size):
        samples = model.sample(min(batch_size, unconditional_samples - start))
        unconditional.update(torch.stack([c(x).argmax(1) for c, x in zip(classifiers, samples)]).cpu())
    return {**conditional.compute(), **unconditional.compute()}
