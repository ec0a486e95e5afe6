"""Sample grids a person can look at: one PNG per conditioning subset, plus prior samples."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.objectives.subsets import all_subsets, subset_name


@torch.no_grad()
def save_sample_grids(model: MultimodalVAE, test: MultimodalSplit, folder: Path, *, seed: int, device: torch.device, n: int = 8) -> list[Path]:
    """Grids of image modalities: rows are the inputs, then each modality generated from S."""
    images = [i for i, m in enumerate(model.spec.modalities) if m.kind == "image"]
    if not images:
        return []
    model.eval()
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    xs = [x.to(device) for x in test.batch(slice(0, n))]
    subsets = all_subsets(model.num_modalities)
    generated = model.generate(xs, subsets.to(device), targets=images)
    paths = []
    for k, mask in enumerate(subsets):
        rows = [xs[i] for i in images] + [generated[i][k] for i in images]
        paths.append(folder / f"given_{subset_name(mask)}.png")
        save_image(torch.cat(rows).float().cpu(), paths[-1], nrow=n)
    prior = model.sample(n)
    paths.append(folder / "unconditional.png")
    save_image(torch.cat([prior[i] for i in images]).float().cpu(), paths[-1], nrow=n)
    return paths
