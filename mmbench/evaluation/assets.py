"""Hashed evaluation assets: a torch file plus a JSON manifest that records its sha256.

Fitted judges (coherence classifiers, the CCA projection) are computed once per dataset build and
reused by every later run; the recorded hash lets a load refuse changed or truncated bytes, so all
scores of one build are computed with the same asset. The on-disk layout is part of the cache
format under a data root: `<stem>.pt` next to a manifest with at least "file" and "sha256".
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from mmbench.errors import DataError
from mmbench.files import atomic_write_bytes, atomic_write_json, read_json


def save_asset(folder: str | Path, stem: str, obj: Any, *, manifest: str | None = None, **extra: Any) -> dict:
    """torch.save `obj` to `folder/<stem>.pt`, then write its manifest (`manifest`, default
    `<stem>.json`): `extra` plus "file" and "sha256". Both writes are atomic and the manifest comes
    last, so an existing manifest always describes a complete asset. Returns the manifest."""
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    atomic_write_bytes(folder / f"{stem}.pt", payload)
    entry = {**extra, "file": f"{stem}.pt", "sha256": hashlib.sha256(payload).hexdigest()}
    atomic_write_json(folder / (manifest or f"{stem}.json"), entry)
    return entry


def load_asset(folder: str | Path, manifest: str, what: str, *, delete: str | Path, redo: str) -> tuple[Any, dict]:
    """Read `folder/manifest`, check the asset's bytes against its sha256 and load them (tensors
    only, on the CPU). A missing or changed asset is a one-line DataError telling the user to
    delete `delete` to `redo` (e.g. "retrain it"). Returns the object and the manifest."""
    folder = Path(folder)
    entry = read_json(folder / manifest, f"{what} manifest")
    path = folder / entry["file"]
    payload = path.read_bytes() if path.exists() else b""
    if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
        raise DataError(f"{what} asset {path} is missing or does not match its sha256; delete {delete} to {redo}")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True), entry
