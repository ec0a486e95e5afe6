"""Linear probes of the shared label on posterior means, one per conditioning subset.

How much label information a subset's posterior q(z | x_S) carries, read out by the weakest
useful decoder (a linear classifier) so the score reflects the representation, not the probe.
The probe is fitted on a fixed number of seeded training tuples and scored on the test split.

The probes of all subsets are fitted together, as one batched L2-regularised multinomial logistic
regression minimised by L-BFGS in float64: the objective of scikit-learn's
`LogisticRegression(C=1)` on standardised features, at a fraction of the cost of 2^M - 1 separate
scikit-learn fits (minutes per run on a CPU), and checked against it in the tests.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbench.api import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.errors import DataError
from mmbench.metrics.base import Metric
from mmbench.metrics.likelihood import restrict
from mmbench.subsets import all_subsets


class LatentProbe(Metric):
    """Test accuracy of a logistic regression per subset on the posterior means.

    Keys: "latent_probe/k=<k>" (mean over the subsets of size k < M) and "latent_probe/joint".
    """

    name = "latent_probe"
    version = 2
    higher_is_better = True

    def __init__(self, subsets: torch.Tensor, *, max_iter: int = 1000):
        self.subsets = subsets.cpu()
        self.max_iter = max_iter
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
        x_train, x_test = (torch.cat(self.features[t], 1) for t in (True, False))
        y_train, y_test = (torch.cat(self.labels[t]) for t in (True, False))
        weight, bias, mean, std = fit_logistic_regression(x_train, y_train, max_iter=self.max_iter)
        logits = torch.baddbmm(bias.unsqueeze(1), (x_test - mean) / std, weight)
        return (logits.argmax(-1) == y_test).double().mean(1)

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


def fit_logistic_regression(
    x: torch.Tensor, y: torch.Tensor, *, num_classes: int | None = None, max_iter: int = 1000, tol: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """K independent multinomial logistic regressions on standardised features, fitted at once.

    Args:
        x: (K, N, D) features of N training points for each of K problems; y: (N,) class labels.

    Returns:
        weight (K, D, C), bias (K, C), and the per-problem feature mean and std (K, 1, D) used to
        standardise, so logits are `((x - mean) / std) @ weight + bias`. Minimises, per problem,
        mean_n cross-entropy + ||weight||^2 / (2N), i.e. scikit-learn's C = 1 objective over N (the
        bias is not penalised), until every gradient entry is below `tol` (scikit-learn's default).
    """
    x = x.double()
    mean = x.mean(1, keepdim=True)
    std = x.std(1, keepdim=True, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = (x - mean) / std
    k, n, d = x.shape
    c = num_classes or int(y.max()) + 1
    weight = torch.zeros(k, d, c, dtype=x.dtype, requires_grad=True)
    bias = torch.zeros(k, c, dtype=x.dtype, requires_grad=True)
    targets = y.long().expand(k, n).reshape(-1)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = torch.baddbmm(bias.unsqueeze(1), x, weight)
        loss = (F.cross_entropy(logits.reshape(k * n, c), targets, reduction="sum") + 0.5 * weight.pow(2).sum()) / n
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return weight.detach(), bias.detach(), mean, std


@torch.no_grad()
def posterior_means(model: MultimodalVAE, xs: list[torch.Tensor], subsets: torch.Tensor) -> torch.Tensor:
    """(K, B, D) means of q(z | x_S), each subset encoded from its own modalities only."""
    device = xs[0].device
    return torch.cat([model.encode(restrict(xs, s), s[None].to(device)).mean for s in subsets.cpu()])


@torch.no_grad()
def evaluate_latent_probe(
    model: MultimodalVAE,
    train: MultimodalSplit,
    test: MultimodalSplit,
    *,
    num_train: int = 1000,
    max_iter: int = 1000,
    batch_size: int = 250,
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
) -> dict[str, float]:
    """Probe accuracies for every non-empty subset, fitted on `num_train` seeded training tuples."""
    if train.labels is None or test.labels is None:
        raise DataError("the latent probe needs labelled train and test splits")
    model.eval()
    subsets = all_subsets(model.num_modalities)
    metric = LatentProbe(subsets, max_iter=max_iter)
    chosen = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:num_train]
    for split, index, is_train in ((train, chosen, True), (test, torch.arange(len(test)), False)):
        for start in range(0, len(index), batch_size):
            rows = index[start:start + batch_size]
            xs = [x.to(device) for x in split.batch(rows)]
            metric.update(posterior_means(model, xs, subsets), split.labels[rows], train=is_train)
    return metric.compute()
