"""Scores a trained model: a registry of evaluators that drive generation and feed metric objects.

An evaluator is one pass over the model (e.g. conditional generation over every subset) that
can feed several metrics at once: coherence and the classifier feature distance share the
generated images and the classifier's forward pass. Every evaluator is seeded by the run seed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from tqdm import tqdm

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalDataset, MultimodalSplit, to_model_input
from mmbench.errors import ConfigError
from mmbench.metrics.base import Metric
from mmbench.evaluation.cca import evaluate_cca_coherence
from mmbench.metrics.cca_coherence import CCACoherence
from mmbench.metrics.discrepancy import Discrepancy, evaluate_discrepancy, mixture_weighting
from mmbench.metrics.latent_probe import LatentProbe, evaluate_latent_probe
from mmbench.metrics.likelihood import Likelihood, evaluate_likelihood
from mmbench.metrics.passes import EvalPass
from mmbench.metrics.coherence import ConditionalCoherence, UnconditionalCoherence
from mmbench.metrics.feature_distance import ClassifierFeatureDistance
from mmbench.metrics.fid import FID, InceptionFeatures, dataset_statistics
from mmbench.objectives.subsets import all_subsets
from mmbench.random_state import private_rng


@dataclass
class EvalContext:
    """Everything an evaluator may need; classifiers are loaded (or trained) on first use: the
    harness's own, or with `eval.judge=official` the ones released with the data."""

    model: MultimodalVAE
    dataset: MultimodalDataset
    train: MultimodalSplit
    test: MultimodalSplit
    options: dict
    seed: int
    device: torch.device
    data_root: Path
    progress: bool = True
    extras: dict = field(default_factory=dict)

    def classifiers(self) -> list[torch.nn.Module]:
        """The judges, loaded (or trained) on first use without touching the global RNG: building
        their networks draws initial weights, which would shift the samples scored after it, so a
        run's first scoring would differ from one whose judges a learning-curve point had loaded."""
        if "classifiers" not in self.extras:
            with private_rng(self.device):
                self.extras["classifiers"], self.extras["classifier_manifest"] = self._load_judges()
        return self.extras["classifiers"]

    def _load_judges(self) -> tuple[list[torch.nn.Module], dict]:
        if self.options.get("judge", "mmbench") == "official":
            from mmbench.data.cards import pinned_assets
            from mmbench.evaluation.official import official_judges

            pins = pinned_assets(self.dataset.spec.name, "official-classifier")
            return official_judges(self.dataset, self.data_root, self.options, pins, self.device)
        from mmbench.evaluation.classifiers import load_or_train_classifiers

        return load_or_train_classifiers(self.dataset, self.data_root, self.device, self.progress)


@dataclass(frozen=True)
class Evaluator:
    name: str
    metrics: tuple[type[Metric], ...]
    run: Callable[[EvalContext], dict[str, float]]
    applies: Callable[[EvalContext], bool]
    description: str


EVALUATORS: dict[str, Evaluator] = {}


def evaluator(name: str, metrics: tuple[type[Metric], ...], applies: Callable[[EvalContext], bool] = lambda ctx: True):
    """Register an evaluation pass under `name` (the value used in `--metrics` / eval.metrics)."""

    def decorator(fn: Callable[[EvalContext], dict[str, float]]):
        EVALUATORS[name] = Evaluator(name, metrics, fn, applies, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return decorator


def has_labels(ctx: EvalContext) -> bool:
    return ctx.dataset.train.labels is not None


def has_labelled_images(ctx: EvalContext) -> bool:
    return has_labels(ctx) and all(m.kind == "image" for m in ctx.dataset.spec.modalities)


class Evaluation(NamedTuple):
    """What `evaluate` returns: metric values, metric versions, and each evaluator's wall time
    in seconds (so a run record says where its evaluation time went; the first evaluator that
    needs the coherence classifiers also pays for loading, or training, them)."""

    metrics: dict[str, float]
    versions: dict[str, int]
    seconds: dict[str, float]


def chosen_evaluators(ctx: EvalContext, names: list[str] | None = None) -> list[Evaluator]:
    """The evaluators `names` asks for (default: every applicable one); an unknown name, or a named
    one that does not apply to this model, dataset and config, is a one-line ConfigError. The
    runner calls this before training, so a typo never costs a training run."""
    unknown = set(names or []) - set(EVALUATORS)
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(EVALUATORS))})")
    chosen = []
    for ev in [EVALUATORS[n] for n in (names or EVALUATORS)]:
        if ev.applies(ctx):
            chosen.append(ev)
        elif names:
            raise ConfigError(f"metric {ev.name!r} does not apply to dataset {ctx.dataset.spec.name!r} with this config")
    return chosen


def evaluate(ctx: EvalContext, names: list[str] | None = None) -> Evaluation:
    """Run the named evaluators (default: every applicable one)."""
    result = Evaluation({}, {}, {})
    for ev in chosen_evaluators(ctx, names):
        ctx.model.eval()
        torch.manual_seed(ctx.seed)
        began = time.perf_counter()
        result.metrics.update(ev.run(ctx))
        result.seconds[ev.name] = time.perf_counter() - began
        result.versions.update({m.name: m.version for m in ev.metrics})
    return result


CURVE_METRICS = ("coherence/conditional/k=1", "coherence/conditional", "feature_distance/mean", "latent_probe/k=1")
"""What a learning-curve point records (those that apply to the dataset)."""


def curve_point(ctx: EvalContext, samples: int) -> dict[str, float]:
    """One learning-curve point during training: the coherence and latent-probe evaluators on the
    first `samples` test tuples (and as many prior samples and probe training tuples), leaving the
    random state and the model's train mode as they were, so the run trains exactly as without it."""
    small = replace(ctx, test=ctx.test.subset(slice(0, samples)), progress=False,
                    options={**ctx.options, "unconditional_samples": samples, "probe_train_samples": samples})
    names = [name for name in ("coherence", "latent_probe") if EVALUATORS[name].applies(small)]
    with private_rng(ctx.device):
        metrics = evaluate(small, names).metrics
    ctx.model.train()
    return {name: metrics[name] for name in CURVE_METRICS if name in metrics}


@evaluator("coherence", (ConditionalCoherence, UnconditionalCoherence, ClassifierFeatureDistance), has_labelled_images)
@torch.no_grad()
def generative_scores(ctx: EvalContext) -> dict[str, float]:
    """Coherence (conditional, unconditional) and classifier feature distance, in one pass."""
    model, test, classifiers = ctx.model, ctx.test, ctx.classifiers()
    batch_size = ctx.options["batch_size"]
    num = model.num_modalities
    subsets = all_subsets(num)
    sizes = subsets.sum(1)
    conditional = ConditionalCoherence(subsets)
    real = [ClassifierFeatureDistance(detail=f"m{m}") for m in range(num)]
    cond_fd = {(k, m): ClassifierFeatureDistance() for k in range(1, num) for m in range(num)}
    for start in tqdm(range(0, len(test), batch_size), desc="coherence", disable=not ctx.progress, leave=False):
        index = slice(start, start + batch_size)
        xs = [x.to(ctx.device) for x in test.batch(index)]
        labels = test.labels[index]
        for m in range(num):
            rows = torch.nonzero(~subsets[:, m]).flatten()
            inputs = [None if i == m else x for i, x in enumerate(xs)]
            generated = model.generate(inputs, subsets[rows].to(ctx.device), targets=[m])[m].flatten(0, 1)
            features = classifiers[m].features(generated)
            conditional.update(m, rows, classifiers[m].head(features).argmax(1).view(len(rows), -1), labels)
            features = features.view(len(rows), -1, features.shape[-1]).cpu()
            for k in range(1, num):
                cond_fd[(k, m)].update(fake=features[sizes[rows] == k].flatten(0, 1))
            real_features = classifiers[m].features(xs[m]).cpu()
            real[m].update(real=real_features)
            for k in range(1, num):
                cond_fd[(k, m)].update(real=real_features)
    unconditional = UnconditionalCoherence()
    n = ctx.options["unconditional_samples"]
    for start in range(0, n, batch_size):
        samples = model.sample(min(batch_size, n - start))
        features = [c.features(x) for c, x in zip(classifiers, samples)]
        unconditional.update(torch.stack([c.head(f).argmax(1) for c, f in zip(classifiers, features)]).cpu())
        for m in range(num):
            real[m].update(fake=features[m].cpu())
    out = {**conditional.compute(), **unconditional.compute()}
    for metric in real:
        out.update(metric.compute())
    out["feature_distance/mean"] = sum(out[f"feature_distance/m{m}"] for m in range(num)) / num
    for k in range(1, num):
        out[f"feature_distance/conditional/k={k}"] = sum(cond_fd[(k, m)].compute()["feature_distance/value"] for m in range(num)) / num
    return out


def _fid_applies(ctx: EvalContext) -> bool:
    return ctx.options.get("fid_samples", 0) > 0 and all(m.kind == "image" for m in ctx.dataset.spec.modalities)


@evaluator("fid", (FID,), _fid_applies)
@torch.no_grad()
def inception_fid(ctx: EvalContext) -> dict[str, float]:
    """Inception FID per modality: unconditional, and conditional per (subset size, target).

    Conditional FID for (k, m) generates one x_m per test point, the conditioning subsets of
    size k without m taken in turn, so each (k, m) costs as many images as unconditional FID.
    """
    extractor = InceptionFeatures(ctx.options["fid_mode"], ctx.device)
    n = min(ctx.options["fid_samples"], len(ctx.test))
    batch_size = ctx.options["batch_size"]
    num = ctx.model.num_modalities
    subsets = all_subsets(num)
    cache = ctx.data_root / "assets" / "fid-stats"
    out = {}
    bar = tqdm(total=num * num, desc="FID image sets", disable=not ctx.progress, leave=False)
    for m in range(num):
        reference = dataset_statistics(to_model_input(ctx.test.modalities[m][:n]), extractor, cache, progress=ctx.progress)
        uncond = FID(extractor, reference, detail=f"m{m}")
        for start in range(0, n, batch_size):
            uncond.update(fake=ctx.model.sample(min(batch_size, n - start))[m])
        out.update(uncond.compute())
        bar.update()
        for k in range(1, num):
            rows = torch.nonzero(~subsets[:, m] & (subsets.sum(1) == k)).flatten()
            cond = FID(extractor, reference, detail=f"conditional/k={k}/m{m}")
            for start in range(0, n, batch_size):
                xs = [x.to(ctx.device) for x in ctx.test.batch(slice(start, min(start + batch_size, n)))]
                turn = torch.arange(start, start + len(xs[0])) % len(rows)
                for j, row in enumerate(rows):
                    idx = torch.nonzero(turn == j).flatten().to(ctx.device)
                    if len(idx):
                        inputs = [None if i == m else x[idx] for i, x in enumerate(xs)]
                        cond.update(fake=ctx.model.generate(inputs, subsets[row:row + 1].to(ctx.device), targets=[m])[m][0])
            out.update(cond.compute())
            bar.update()
    bar.close()
    return out


@evaluator("cca_coherence", (CCACoherence,), lambda ctx: not has_labels(ctx) and {m.kind for m in ctx.dataset.spec.modalities} == {"image", "text"})
def cca_coherence(ctx: EvalContext) -> dict[str, float]:
    """Label-free coherence for image-caption data: correlation in a CCA space fitted on train."""
    return evaluate_cca_coherence(
        ctx.model, ctx.dataset, batch_size=ctx.options["batch_size"], seed=ctx.seed, device=ctx.device,
        data_root=ctx.data_root, test=ctx.test, progress=ctx.progress,
    )


def _walk(ctx: EvalContext) -> EvalPass:
    return EvalPass(batch_size=ctx.options["batch_size"], seed=ctx.seed, device=ctx.device, progress=ctx.progress)


def _likelihood_test(ctx: EvalContext) -> MultimodalSplit:
    n = ctx.options["likelihood_test_samples"]
    return ctx.test if n is None or n >= len(ctx.test) else ctx.test.subset(slice(0, n))


@evaluator("likelihood", (Likelihood,))
def likelihood(ctx: EvalContext) -> dict[str, float]:
    """IWAE estimates of log p(x) and of log p(x_notS | x_S) per subset size, K = eval.iwae_k."""
    return evaluate_likelihood(ctx.model, _likelihood_test(ctx), num_samples=ctx.options["iwae_k"], walk=_walk(ctx))


@evaluator("latent_probe", (LatentProbe,), has_labels)
def latent_probe(ctx: EvalContext) -> dict[str, float]:
    """Linear probe accuracy of the label on posterior means of every subset."""
    return evaluate_latent_probe(ctx.model, ctx.train, ctx.test, num_train=ctx.options["probe_train_samples"], walk=_walk(ctx))


@evaluator("discrepancy", (Discrepancy,), lambda ctx: mixture_weighting(ctx.model) is not None)
def discrepancy(ctx: EvalContext) -> dict[str, float]:
    """Estimates of the generative discrepancy Δ (and its closed form where the dataset knows it)."""
    return evaluate_discrepancy(ctx.model, _likelihood_test(ctx), private_entropies=ctx.dataset.info.get("private_entropies"),
                                num_samples=ctx.options["iwae_k"], walk=_walk(ctx))
