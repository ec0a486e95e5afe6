"""Atomic file writes and JSON side files: one writer, one permission policy, one reader.

Every file the harness writes goes through `atomic_write_bytes`: written to a temporary name,
fsynced, given one permission policy (0644, readable by whoever shares a data root or a results
folder) and renamed, so a crash never leaves half a file.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mmbench.errors import MMBenchError

FILE_MODE = 0o644


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
