"""Atomic file writes and verified checkpoint loading.

Every file the harness writes goes through `atomic_write_bytes`: written to a temporary name,
fsynced, given one permission policy (0644, readable by whoever shares a data root or a results
folder) and renamed, so a crash never leaves half a file. Checkpoints carry a sha256 over their
contents and load with `weights_only=True`, so neither a flipped bit nor pickled code gets through.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mmbench.errors import MMBenchError

FILE_MODE = 0o644
DIGEST = "sha256"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise MMBenchError(f"cannot write {path} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except IsADirectoryError:
        Path(tmp).unlink(missing_ok=True)
        raise MMBenchError(f"cannot write {path}: a directory is in the way") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON side file the harness wrote (config, manifest, reference); a missing, truncated
    or otherwise unreadable one is a one-line MMBenchError naming `what` it is and where."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise MMBenchError(f"{path}: no such {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MMBenchError(f"{path}: the {what} is not valid JSON (truncated?): {str(exc)[:120]}") from None
    except OSError as exc:
        raise MMBenchError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """torch.save `obj` to `path` through `atomic_write_bytes`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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
