"""CUB Image-Captions as released with MMVAE (Shi et al., 2019): bird photos and their captions.

The release (`cub.zip`, see `mmbench.data.download.RELEASES`) unpacks to

    <data_root>/cub/text_trainvalclasses.txt    10 captions per train image, one per line
    <data_root>/cub/text_testclasses.txt        10 captions per test image
    <data_root>/cub/train/<class>/<image>.jpg   150 classes
    <data_root>/cub/test/<class>/<image>.jpg    50 other classes (splits are class-disjoint)

Image i of a split, in (class folder, file name) order -- torchvision ImageFolder's order, on
which MMVAE's `idx // 10` resampler relies -- owns caption lines 10i..10i+9. Every (image,
caption) pair is one sample, so a split holds 10 samples per image, as in MMVAE.

Images are decoded once, resized to 64x64 (PIL bilinear, as torchvision's Resize), and cached
with the tokenized captions and the vocabulary, so later runs read one checksummed file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmbench.data.base import (
    EOS, EXC, PAD, SPECIAL_TOKENS, DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit, provenance,
)
from mmbench.data.cache import Meta, Tensors, load_or_build, resolve_data_root, tensors_checksum
from mmbench.data.download import RELEASES
from mmbench.data.sources import seeded_stream
from mmbench.errors import ConfigError, DataError
from mmbench.api.registry import register_dataset

RECIPE_VERSION = 1
"""Bump whenever a change to decoding, tokenization or the vocabulary rule changes any byte."""

IMAGE_SIZE = 64
CAPTIONS_PER_IMAGE = 10
MAX_TOKENS = 32
MIN_COUNT = 3
"""A training word enters the vocabulary when it occurs more than MIN_COUNT times (MMVAE's rule)."""

QUICK_IMAGES = {"train": 2000, "test": 500}
TEXT_FILES = {"train": "text_trainvalclasses.txt", "test": "text_testclasses.txt"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SPLITS = ("train", "test")
_TOKEN = re.compile(r"[a-z0-9]+|'[a-z]*|[^\sa-z0-9']")


def tokenize(line: str) -> list[str]:
    """Lower-cased words, clitics ("'s") and punctuation marks as separate tokens.

    A dependency-free stand-in for NLTK's `word_tokenize`, which MMVAE used: on CUB's captions
    the two differ only on rare contractions (e.g. "don't" -> "don", "'t" here, "do", "n't"
    there), which changes a handful of vocabulary entries, not the task.
    """
    return _TOKEN.findall(line.lower())


def build_vocab(lines: list[str]) -> list[str]:
    """Special tokens, then training words occurring more than MIN_COUNT times in order of first
    occurrence (the order of MMVAE's OrderedCounter)."""
    counts = Counter(word for line in lines for word in tokenize(line))
    return list(SPECIAL_TOKENS) + [w for w, c in counts.items() if c > MIN_COUNT and w not in SPECIAL_TOKENS]


def encode_captions(lines: list[str], vocab: list[str]) -> np.ndarray:
    """(N, MAX_TOKENS) int64: the first MAX_TOKENS - 1 words (unknown ones as <exc>), <eos>,
    then <pad> to the full length."""
    index = {word: i for i, word in enumerate(vocab)}
    out = np.full((len(lines), MAX_TOKENS), PAD, dtype=np.int64)
    for row, line in enumerate(lines):
        ids = [index.get(w, EXC) for w in tokenize(line)[: MAX_TOKENS - 1]] + [EOS]
        out[row, : len(ids)] = ids
    return out


def decode_captions(tokens: torch.Tensor, vocab: list[str]) -> list[str]:
    """Readable captions of (N, MAX_TOKENS) token ids, cut at the first <eos>."""
    captions = []
    for row in tokens.tolist():
        words = []
        for i in row:
            if i == EOS:
                break
            if i != PAD:
                words.append(vocab[i])
        captions.append(" ".join(words))
    return captions


def release_folder(data_root: Path) -> Path:
    """`<data_root>/cub` when it holds the whole release; otherwise one DataError line naming
    the files to put where and how to download them."""
    folder = data_root / "cub"
    files = [folder / TEXT_FILES["train"], folder / TEXT_FILES["test"]]
    missing = [p.name for p in files if not p.is_file()] + [s for s in _SPLITS if not (folder / s).is_dir()]
    if missing:
        url = RELEASES["cub"].url
        raise DataError(
            f"CUB not found: {folder} needs {TEXT_FILES['train']}, {TEXT_FILES['test']}, "
            f"train/<class>/*.jpg and test/<class>/*.jpg (missing: {', '.join(missing)}); "
            f"run `mmbench data download cub --data-root {data_root}` or unzip {url} into {data_root}"
        )
    return folder


def list_images(split_dir: Path) -> tuple[list[str], list[tuple[int, Path]]]:
    """Class folder names (sorted) and (class index, path) of every image in ImageFolder order."""
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    images = [
        (c, path)
        for c, name in enumerate(classes)
        for path in sorted((split_dir / name).iterdir(), key=lambda p: p.name)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not images:
        raise DataError(f"{split_dir} holds no <class>/<image>.jpg files")
    return classes, images


def _decode(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    except OSError as exc:
        raise DataError(f"cannot decode {path}: {exc}") from exc
    return np.asarray(resized).transpose(2, 0, 1)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def load_release(folder: str | Path) -> tuple[Tensors, Meta]:
    """Decode a release folder into tensors: per split `image` uint8 (N, 3, 64, 64), `caption`
    int64 (10N, 32), `class` int64 (N,), plus `names`, the UTF-8 JSON of the vocabulary and the
    class names (a tensor, so the cache checksum covers it)."""
    folder = Path(folder)
    listings = {split: list_images(folder / split) for split in _SPLITS}
    shared = set(listings["train"][0]) & set(listings["test"][0])
    if shared:
        raise DataError(f"{folder}: classes {sorted(shared)[:3]} are in both train and test; the splits must be class-disjoint")
    lines = {split: _read_lines(folder / TEXT_FILES[split]) for split in _SPLITS}
    for split in _SPLITS:
        n_images, n_lines = len(listings[split][1]), len(lines[split])
        if n_lines != CAPTIONS_PER_IMAGE * n_images:
            raise DataError(
                f"{folder / TEXT_FILES[split]} has {n_lines} lines, expected {CAPTIONS_PER_IMAGE} per image "
                f"of {folder / split} ({CAPTIONS_PER_IMAGE * n_images})"
            )
    vocab = build_vocab(lines["train"])
    tensors: Tensors = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        for split in _SPLITS:
            images = listings[split][1]
            tensors[f"{split}/image"] = torch.from_numpy(np.stack(list(pool.map(_decode, [p for _, p in images]))))
            tensors[f"{split}/caption"] = torch.from_numpy(encode_captions(lines[split], vocab))
            tensors[f"{split}/class"] = torch.tensor([c for c, _ in images], dtype=torch.int64)
    names = {"vocab": vocab, "classes": {split: listings[split][0] for split in _SPLITS}}
    tensors["names"] = torch.frombuffer(bytearray(json.dumps(names).encode()), dtype=torch.uint8)
    return tensors, {"source": "official-release", "recipe_version": RECIPE_VERSION}


def _names(tensors: Tensors) -> dict:
    try:
        return json.loads(bytes(tensors["names"].numpy()).decode())
    except (KeyError, ValueError) as exc:
        raise DataError(f"CUB cache holds no readable vocabulary ({exc}); delete it to rebuild") from exc


def _fingerprint(folder: Path) -> str:
    """Names and sizes of every release file: a cheap key that changes when the copy does."""
    digest = hashlib.sha256()
    files = [folder / TEXT_FILES[s] for s in _SPLITS] + sorted(p for s in _SPLITS for p in (folder / s).glob("*/*"))
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def _select(n_available: int, n_wanted: int | None, seed: int, split: int) -> torch.Tensor:
    """All images in release order, or a seeded random sample of `n_wanted` in random order (so a
    prefix of the split, as `max_test_samples` takes, still spans many classes)."""
    if n_wanted is None or n_wanted >= n_available:
        return torch.arange(n_available)
    return torch.from_numpy(seeded_stream(seed, 3, split).permutation(n_available)[:n_wanted])


def _validate(tier: str, seed: int, max_images: int | None) -> None:
    if tier not in ("quick", "full"):
        raise ConfigError(f"tier must be 'quick' or 'full', not {tier!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1):
        raise ConfigError(f"max_images must be a positive integer, not {max_images!r}")


@register_dataset("cub")
def cub(data_root: str | Path | None, *, tier: str = "quick", seed: int = 0, max_images: int | None = None) -> MultimodalDataset:
    """CUB Image-Captions: quick tier a seeded sample of 2,000 train / 500 test images (`seed`
    picks it), full tier every image; `max_images` caps the images of each split. Each image
    gives 10 (image, caption) samples. No shared labels."""
    _validate(tier, seed, max_images)
    root = resolve_data_root(data_root)
    folder = release_folder(root)
    path = folder / f"cub-{_fingerprint(folder)}-v{RECIPE_VERSION}.pt"
    tensors, _, _ = load_or_build(path, lambda: load_release(folder))
    names = _names(tensors)
    splits, selected, details = {}, {"names": tensors["names"]}, {}
    for i, split in enumerate(_SPLITS):
        caps = [n for n in (QUICK_IMAGES[split] if tier == "quick" else None, max_images) if n is not None]
        images = tensors[f"{split}/image"]
        index = _select(len(images), min(caps) if caps else None, seed, i)
        chosen = images[index]
        captions = tensors[f"{split}/caption"].view(len(images), CAPTIONS_PER_IMAGE, MAX_TOKENS)[index].flatten(0, 1)
        selected[f"{split}/image"], selected[f"{split}/caption"] = chosen, captions
        splits[split] = MultimodalSplit([chosen.repeat_interleave(CAPTIONS_PER_IMAGE, 0), captions])
        classes = tensors[f"{split}/class"][index].unique().tolist()
        details[f"{split}_classes"] = [names["classes"][split][c] for c in classes]
        details[f"n_{split}_images"] = len(index)
    vocab = names["vocab"]
    spec = DatasetSpec(
        "cub",
        (
            ModalitySpec("image", "image", (3, IMAGE_SIZE, IMAGE_SIZE)),
            ModalitySpec("caption", "text", (MAX_TOKENS,), vocab_size=len(vocab)),
        ),
    )
    info = provenance("official-release", RECIPE_VERSION, splits["train"], splits["test"], path, path=str(folder), tier=tier,
                      seed=seed, captions_per_image=CAPTIONS_PER_IMAGE, **details, vocab=vocab)
    # The selected tensors before the 10x image repeat determine the splits, so their checksum
    # identifies the dataset without hashing every image ten times.
    return MultimodalDataset(spec, splits["train"], splits["test"], info, tensors_checksum(selected))
