"""Linear probes of the shared label on posterior means, one per conditioning subset.

How much label information a subset's posterior q(z | x_S) carries, read out by the weakest
useful decoder (a linear classifier) so the score reflects the representation, not the probe.
The probe is fitted on a fixed number of seeded training tuples and scored on the test split,
with at most 200 L-BFGS iterations per probe: on nearly separable 512-d latents scikit-learn's
default of 1000 cost minutes of CPU per run (2^M - 1 probes); the cap keeps that to seconds.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.errors import DataError
from mmbench.metrics.base import Metric
from mmbench.metrics.passes import EvalPass
from mmbench.metrics.likelihood import restrict
from mmbench.objectives.subsets import all_subsets


class LatentProbe(Metric):
    """Test accuracy of a logistic regression per subset on the posterior means.

    Keys: "latent_probe/k=<k>" (mean over the subsets of size k < M) and "latent_probe/joint".
    """

    name = "latent_probe"
    version = 2
    higher_is_better = True
    label = "probe"

    def __init__(self, subsets: torch.Tensor, *, max_iter: int = 200, seed: int = 0):
        self.subsets = subsets.cpu()
        self.max_iter = max_iter
        self.seed = seed
        super().__init__()

    def reset(self) -> None:
        self.features: dict[bool, list[torch.Tensor]] = {True: [], False: []}
        self.labels: dict[bool, list[torch.Tensor]] = {True: [], False: []}

    def update(self, features: torch.Tensor, labels: torch.Tensor, *, train: bool) -> None:
        """features (K, B, D): posterior means for the K subsets; labels (B,)."""
        self.features[train].append(features.detach().double().cpu())
        self.labels[train].append(labels.cpu())

    def accuracies(self) -> torch.Tensor:
        """(K,) test accuracy of the probe fitted for each subset."""
        if not self.features[True] or not self.features[False]:
            raise DataError("the latent probe needs both training and test features")
        x_train, x_test = (torch.cat(self.features[t], 1).numpy() for t in (True, False))
        y_train, y_test = (torch.cat(self.labels[t]).numpy() for t in (True, False))
        # sklearn only when fitting: mmbench.metrics.families imports this module for the class
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        scores = []
        for k in range(len(self.subsets)):
            probe = make_pipeline(
                StandardScaler(), LogisticRegression(max_iter=self.max_iter, random_state=self.seed)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # capped on purpose, see above
                probe.fit(x_train[k], y_train)
            scores.append(float(np.mean(probe.predict(x_test[k]) == y_test)))
        return torch.tensor(scores)

    def compute(self) -> dict[str, float]:
        accuracy = self.accuracies()
        sizes = self.subsets.sum(1)
        full = self.subsets.shape[1]
        out = {
            f"{self.name}/k={k}": accuracy[sizes == k].mean().item()
            for k in sorted(set(sizes.tolist()) - {full})
        }
        if (sizes == full).any():
            out[f"{self.name}/joint"] = accuracy[sizes == full].mean().item()
        return out


@torch.no_grad()
def posterior_means(model: MultimodalVAE, xs: list[torch.Tensor], subsets: torch.Tensor) -> torch.Tensor:
    """(K, B, D) means of q(z | x_S), each subset encoded from its own modalities only."""
    device = xs[0].device
    return torch.cat([model.encode(restrict(xs, s), s[None].to(device)).mean for s in subsets.cpu()])


@torch.no_grad()
def evaluate_latent_probe(
    model: MultimodalVAE, train: MultimodalSplit, test: MultimodalSplit, *, num_train: int = 1000, max_iter: int = 200,
    walk: EvalPass = EvalPass(),
) -> dict[str, float]:
    """Probe accuracies for every non-empty subset, fitted on `num_train` training tuples chosen by `walk.seed`."""
    if train.labels is None or test.labels is None:
        raise DataError("the latent probe needs labelled train and test splits")
    model.eval()
    subsets = all_subsets(model.num_modalities)
    metric = LatentProbe(subsets, max_iter=max_iter, seed=walk.seed)
    chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(walk.seed))[:num_train]
    for split, rows, is_train in ((train, chosen, True), (test, None, False)):
        for index, xs in walk.batches(split, "latent probe", rows):
            metric.update(posterior_means(model, xs, subsets), split.labels[index], train=is_train)
    return metric.compute()
