"""Verified checkpoint loading: checkpoints carry a sha256 over their contents and load with
`weights_only=True`, so neither a flipped bit nor pickled code gets through.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from mmbench.errors import MMBenchError
from mmbench.files import atomic_torch_save

DIGEST = "sha256"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save `state` with its sha256 digest to `path`, atomically."""
    atomic_torch_save(path, {**state, DIGEST: state_digest(state)})


def load_checkpoint(path: str | Path) -> dict:
    """Load and verify a checkpoint of tensors and plain values: the one loader of every
    checkpoint (resume, evaluate), refusing pickled code, corrupt files and digest mismatches.
    Checkpoints without a digest (written before digests existed) load unchecked."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MMBenchError(f"checkpoint {path} does not exist") from None
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MMBenchError(f"cannot load checkpoint {path}: corrupt, truncated or unsafe ({reason[:160]})") from None
    if isinstance(state, dict) and DIGEST in state and state.pop(DIGEST) != state_digest(state):
        raise MMBenchError(f"checkpoint {path} is corrupt (checksum mismatch); delete it to start the run over")
    return state


def state_digest(value: object) -> str:
    """sha256 over every tensor and plain value of a checkpoint state, in a fixed order.

    torch.load does not verify the CRCs of its zip archive, so without this a flipped bit in a
    weight would load silently.
    """
    digest = hashlib.sha256()

    def visit(item: object) -> None:
        if isinstance(item, torch.Tensor):
            t = item.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(item, dict):
            digest.update(f"D{len(item)}".encode())
            for key in sorted(item, key=repr):
                digest.update(repr(key).encode())
                visit(item[key])
        elif isinstance(item, (list, tuple)):
            digest.update(f"L{len(item)}".encode())
            for element in item:
                visit(element)
        else:
            digest.update(repr(item).encode())

    visit(value)
    return digest.hexdigest()
