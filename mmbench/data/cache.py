"""On-disk cache of built datasets: one checksummed torch file per recipe, written atomically.

Building is deterministic, so the cache only saves time; it must never change results. Hence
every load re-verifies the stored checksum, and a damaged file is reported (with the advice to
delete it) instead of being silently rebuilt or, worse, silently used.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable

import torch

from mmbench.files import atomic_torch_save
from mmbench.errors import DataError

CACHE_FORMAT = 1

Tensors = dict[str, torch.Tensor]
Meta = dict[str, str | int | float | bool]


def default_data_root() -> Path:
    """`$MMBENCH_DATA` if set, else ~/.cache/mmbench."""
    root = os.environ.get("MMBENCH_DATA") or Path.home() / ".cache" / "mmbench"
    return Path(root).expanduser()


def resolve_data_root(data_root: str | Path | None) -> Path:
    return default_data_root() if data_root is None else Path(data_root).expanduser()


def tensors_checksum(tensors: Tensors) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in sorted-name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous().cpu()
        digest.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def load_verified(
    path: Path, checksum_fn: Callable[[Tensors], str] = tensors_checksum
) -> tuple[Tensors, Meta, str]:
    """Read a cache file and check its checksum; any damage raises a one-line DataError."""
    advice = f"cache file {path} is corrupt"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, wrong types: all mean "damaged"
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        raise DataError(f"{advice} ({reason}); delete it to rebuild") from exc
    if (
        not isinstance(payload, dict)
        or payload.get("format") != CACHE_FORMAT
        or not isinstance(payload.get("tensors"), dict)
        or not all(isinstance(t, torch.Tensor) for t in payload["tensors"].values())
    ):
        raise DataError(f"{advice} (unexpected layout); delete it to rebuild")
    tensors = payload["tensors"]
    checksum = checksum_fn(tensors)
    if checksum != payload.get("checksum"):
        raise DataError(f"{advice} (checksum mismatch); delete it to rebuild")
    return tensors, dict(payload.get("meta", {})), checksum


def load_or_build(
    path: str | Path,
    build_fn: Callable[[], tuple[Tensors, Meta]],
    checksum_fn: Callable[[Tensors], str] = tensors_checksum,
) -> tuple[Tensors, Meta, str]:
    """Tensors, metadata and checksum from `path`, building and caching them on a miss.

    `build_fn` returns (tensors, small metadata of plain scalars); `checksum_fn` lets a caller
    store its own content checksum so it is computed once, not once here and once again later.
    """
    path = Path(path)
    if path.is_file():
        return load_verified(path, checksum_fn)
    tensors, meta = build_fn()
    tensors = {name: t.contiguous() for name, t in tensors.items()}
    checksum = checksum_fn(tensors)
    try:
        payload = {"format": CACHE_FORMAT, "tensors": tensors, "meta": meta, "checksum": checksum}
        atomic_torch_save(path, payload)
    except OSError as exc:  # a read-only data root costs a rebuild next time, not this run
        warnings.warn(f"could not cache {path}: {exc}", stacklevel=2)
    return tensors, meta, checksum
