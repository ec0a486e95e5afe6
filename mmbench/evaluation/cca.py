"""Label-free cross-modal coherence for image-caption data (CUB): the fitted CCA and its evaluation.

CUB has no label shared by an image and its caption, so coherence cannot be judged by
classifiers. Following MMVAE (Shi et al., 2019), a CCA between image features and caption
features is fitted on the training pairs, and a (real or generated) pair scores the cosine
similarity of its two canonical projections (on up to 40 canonical directions, those with a
non-zero correlation on the training pairs); the reported values are means over the test set:

- `coherence/cca/ground_truth`: real image with its real caption, the reference a model aims for;
- `coherence/cca/image->caption`: real image with the caption generated from it;
- `coherence/cca/caption->image`: image generated from a caption with that caption.

Mismatched real pairs score about 0 (chance). MMVAE used ResNet-101 features and FastText
embeddings; to stay offline and deterministic, the features here are fixed and model-agnostic:

- image: the RGB image average-pooled to 8x8 (192 values in [0, 1]) -- colour layout, which is
  most of what CUB captions describe;
- caption: TF-IDF of the word tokens (special tokens dropped; smoothed IDF from the training
  captions; rows L2-normalised) projected on the top 64 right singular vectors of the training
  TF-IDF matrix (latent semantic analysis).

The fitted features and projections are a hashed asset per dataset build, like the coherence
classifiers, so every score of one build is computed with the same bytes. The numbers are not
comparable to MMVAE's, whose features differ.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm import tqdm

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import (
    SPECIAL_TOKENS,
    MultimodalDataset,
    MultimodalSplit,
    to_model_input,
)
from mmbench.data.cache import resolve_data_root
from mmbench.errors import ConfigError
from mmbench.evaluation.assets import load_asset, save_asset
from mmbench.metrics.cca_coherence import CCACoherence

RECIPE = {
    "version": 1, "pool": 8, "text_dims": 64, "cca_dims": 40, "ridge": 1e-3, "min_correlation": 1e-6,
    "special_tokens": len(SPECIAL_TOKENS), "batch_size": 2048,
}
_STEM, _MANIFEST = "cca", "manifest.json"  # the asset is cca.pt, described by manifest.json


class CCAProjection:
    """Fixed feature maps of both modalities and their fitted canonical projections."""

    def __init__(self, state: dict[str, torch.Tensor]):
        self.state = state

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) floats in [0, 1] -> (N, 3 * pool^2) average-pooled pixels, float64."""
        return F.adaptive_avg_pool2d(images.float(), RECIPE["pool"]).flatten(1).double()

    def caption_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, text_dims) LSA features of the captions' TF-IDF."""
        return tfidf(tokens, self.state["idf"]) @ self.state["text_basis"]

    def project(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical variables (N, k) of the images and of the captions."""
        u = (self.image_features(images.cpu()) - self.state["image_mean"]) @ self.state["image_proj"]
        v = (self.caption_features(tokens.cpu()) - self.state["text_mean"]) @ self.state["text_proj"]
        return u, v


def tfidf(tokens: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
    """(N, L) token ids -> (N, V) L2-normalised term-frequency x IDF rows, float64; ids below
    RECIPE["special_tokens"] (<exc>, <pad>, <eos>) do not count as words."""
    counts = torch.zeros(len(tokens), len(idf), dtype=torch.float64)
    words = tokens >= RECIPE["special_tokens"]
    counts.index_put_((torch.nonzero(words)[:, 0], tokens[words]), torch.ones(int(words.sum()), dtype=torch.float64), accumulate=True)
    return F.normalize(counts * idf, dim=1)


def _modalities(dataset_spec) -> tuple[int, int]:
    kinds = [m.kind for m in dataset_spec.modalities]
    if sorted(kinds) != ["image", "text"]:
        raise ConfigError(f"CCA coherence needs one image and one text modality, not {kinds}")
    return kinds.index("image"), kinds.index("text")


def _batches(split: MultimodalSplit, batch_size: int) -> list[slice]:
    return [slice(start, start + batch_size) for start in range(0, len(split), batch_size)]


def fit_cca(train: MultimodalSplit, image: int, text: int, vocab_size: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Fit the caption LSA and the ridge-regularised CCA on the training pairs, streaming.

    Returns the projection state and the canonical correlations on the training pairs.
    """
    batch = RECIPE["batch_size"]
    df = torch.zeros(vocab_size, dtype=torch.float64)
    for index in _batches(train, batch):
        tokens = train.modalities[text][index]
        present = torch.zeros(len(tokens), vocab_size, dtype=torch.bool)
        present[torch.arange(len(tokens)).unsqueeze(1), tokens] = True
        df += present.sum(0)
    n = len(train)
    idf = torch.log((1 + n) / (1 + df)) + 1
    idf[: RECIPE["special_tokens"]] = 0
    gram = torch.zeros(vocab_size, vocab_size, dtype=torch.float64)
    for index in _batches(train, batch):
        x = tfidf(train.modalities[text][index], idf)
        gram += x.T @ x
    words = vocab_size - RECIPE["special_tokens"]
    text_dims = min(RECIPE["text_dims"], words)
    _, vectors = torch.linalg.eigh(gram)
    text_basis = vectors.flip(-1)[:, :text_dims].contiguous()

    projection = CCAProjection({"idf": idf, "text_basis": text_basis})
    sums: dict[str, torch.Tensor] = {}
    for index in _batches(train, batch):
        fx = projection.image_features(to_model_input(train.modalities[image][index]))
        fy = projection.caption_features(train.modalities[text][index])
        for name, value in (("x", fx.sum(0)), ("y", fy.sum(0)), ("xx", fx.T @ fx), ("yy", fy.T @ fy), ("xy", fx.T @ fy)):
            sums[name] = sums[name] + value if name in sums else value
    mx, my = sums["x"] / n, sums["y"] / n
    cxx = sums["xx"] / n - torch.outer(mx, mx)
    cyy = sums["yy"] / n - torch.outer(my, my)
    cxy = sums["xy"] / n - torch.outer(mx, my)
    wx, wy = _inverse_sqrt(cxx), _inverse_sqrt(cyy)
    u, s, vh = torch.linalg.svd(wx @ cxy @ wy)
    # Directions past the rank of the features have zero correlation and would only add noise.
    k = max(1, min(RECIPE["cca_dims"], int((s > RECIPE["min_correlation"]).sum())))
    state = {
        "idf": idf,
        "text_basis": text_basis,
        "image_mean": mx,
        "image_proj": (wx @ u[:, :k]).contiguous(),
        "text_mean": my,
        "text_proj": (wy @ vh.T[:, :k]).contiguous(),
    }
    return state, s[:k].tolist()


def _inverse_sqrt(cov: torch.Tensor) -> torch.Tensor:
    """(C + ridge * mean variance * I)^(-1/2): the ridge keeps rank-deficient features usable."""
    ridge = RECIPE["ridge"] * cov.diagonal().mean().clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(cov + ridge * torch.eye(len(cov), dtype=cov.dtype))
    return vectors @ torch.diag(values.clamp_min(1e-12).rsqrt()) @ vectors.T


def asset_dir(data_root: Path, dataset: MultimodalDataset) -> Path:
    return Path(data_root) / "assets" / "cca" / f"{dataset.spec.name}-{dataset.checksum[:16]}-v{RECIPE['version']}"


def load_or_fit_cca(dataset: MultimodalDataset, data_root: str | Path | None = None, progress: bool = True) -> tuple[CCAProjection, dict]:
    """The dataset's fitted CCA and its manifest; fitted (announced) only when no asset exists."""
    image, text = _modalities(dataset.spec)
    folder = asset_dir(resolve_data_root(data_root), dataset)
    if not (folder / _MANIFEST).exists():
        if progress:
            tqdm.write(f"fitting the CCA coherence projection for {dataset.spec.name} (once; saved to {folder})")
        state, correlations = fit_cca(dataset.train, image, text, dataset.spec.modalities[text].vocab_size)
        save_asset(
            folder, _STEM, state, manifest=_MANIFEST,
            dataset=dataset.spec.name, dataset_checksum=dataset.checksum, recipe=RECIPE, train_correlations=correlations,
        )
    state, manifest = load_asset(folder, _MANIFEST, "CCA", delete=folder, redo="refit it")
    return CCAProjection(state), manifest


@torch.no_grad()
def evaluate_cca_coherence(
    model: MultimodalVAE,
    dataset: MultimodalDataset,
    *,
    batch_size: int,
    seed: int,
    device: torch.device,
    data_root: str | Path | None = None,
    test: MultimodalSplit | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """CCA coherence of `model` on `test` (default: the dataset's test split), seeded.

    The projection is fitted on `dataset.train` (or loaded from its asset under `data_root`).
    """
    projection, _ = load_or_fit_cca(dataset, data_root, progress)
    image, text = _modalities(dataset.spec)
    test = dataset.test if test is None else test
    model.eval()
    torch.manual_seed(seed)
    given = torch.eye(model.num_modalities, dtype=torch.bool, device=device)
    metric = CCACoherence()
    for index in tqdm(_batches(test, batch_size), desc="cca coherence", disable=not progress, leave=False):
        xs = [x.to(device) for x in test.batch(index)]
        metric.update("ground_truth", *projection.project(xs[image], xs[text]))
        from_image = model.generate([xs[image] if m == image else None for m in range(model.num_modalities)], given[image:image + 1], targets=[text])
        metric.update("image->caption", *projection.project(xs[image], from_image[text][0]))
        from_text = model.generate([xs[text] if m == text else None for m in range(model.num_modalities)], given[text:text + 1], targets=[image])
        metric.update("caption->image", *projection.project(from_text[image][0], xs[text]))
    return metric.compute()
