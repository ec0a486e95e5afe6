"""Checksum-verified, resumable downloads of the official dataset releases.

Release archives are large and hosted on academic servers that drop connections, so a transfer
goes to `<file>.part`, an interrupted one is continued with an HTTP Range request, and only a
complete file whose sha256 matches the pinned digest is renamed into place. A pinned digest makes
a changed or damaged archive fail loudly instead of silently changing a benchmark; a release not
pinned yet prints its digest on first download so a maintainer can pin it in `RELEASES`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from mmbench import __version__
from mmbench.data.cache import resolve_data_root
from mmbench.errors import ConfigError, DataError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Release:
    """An official archive: its URL, pinned sha256 (None until pinned) and the folder it unpacks
    to under the data root (the folder the dataset factory looks for)."""

    url: str
    filename: str
    sha256: str | None
    folder: str


RELEASES: dict[str, Release] = {
    # MMVAE's cleaned-up CUB Image-Captions (Shi et al., 2019); unpacks to cub/.
    "cub": Release("http://www.robots.ox.ac.uk/~yshi/mmdgm/datasets/cub.zip", "cub.zip", None, "cub"),
    # MoPoE's PolyMNIST (Sutter et al., 2021), Zenodo record 4899160; unpacks to MMNIST/.
    "polymnist": Release("https://zenodo.org/record/4899160/files/PolyMNIST.zip", "PolyMNIST.zip", None, "MMNIST"),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | Path, *, sha256: str | None = None, progress: bool = False, timeout: float = 60.0) -> str:
    """Fetch `url` to `dest` (resuming `dest.part`), verify it and return its sha256.

    An existing `dest` is only verified. A failed transfer keeps the `.part` file so the next
    call resumes it; a digest mismatch deletes it, since resuming would only repeat the damage.
    """
    dest = Path(dest)
    if dest.is_file():
        digest = file_sha256(dest)
        if sha256 is not None and digest != sha256:
            raise DataError(f"{dest} has sha256 {digest}, expected {sha256}; delete it to download again")
        return digest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_part(url, dest, part, progress, timeout)
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise DataError(f"{url} downloaded with sha256 {digest}, expected {sha256}; deleted the download, run again")
    os.replace(part, dest)
    return digest


def _fetch_part(url: str, dest: Path, part: Path, progress: bool, timeout: float) -> None:
    """Append the missing bytes of `url` to `part`; restart it when the server ignores Range."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"mmbench/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    by_hand = f"download it by hand and put it at {dest}"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # nothing past the end: the part already is the whole file
            return
        raise DataError(f"cannot download {url} (HTTP {exc.code} {exc.reason}); {by_hand}") from exc
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url} ({reason}); offline? {by_hand}") from exc
    with response:
        resumed = offset and response.status == 206 and _range_start(response.headers.get("Content-Range")) == offset
        if not resumed:
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress, leave=False)
        try:
            with open(part, "ab" if resumed else "wb") as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
        except (OSError, HTTPException) as exc:  # reset, timeout or short read; the part is kept
            raise DataError(f"download of {url} interrupted after {received} bytes ({exc}); run again to resume") from exc
        finally:
            bar.close()
    if total is not None and received != total:
        raise DataError(f"download of {url} stopped at {received} of {total} bytes; run again to resume")


def _range_start(content_range: str | None) -> int | None:
    """First byte of a `Content-Range: bytes a-b/n` header, None when absent or malformed."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    start = content_range[6:].split("-", 1)[0]
    return int(start) if start.isdigit() else None


def extract_zip(archive: Path, root: Path) -> None:
    """Unpack `archive` into `root` via a temporary folder, so a failure leaves no half tree;
    top-level entries that already exist under `root` are kept as they are."""
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{archive.stem}-", dir=root))
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                target = (scratch / name).resolve()
                if not target.is_relative_to(scratch.resolve()):
                    raise DataError(f"{archive} holds an entry outside its folder ({name!r}); refusing to unpack it")
            zf.extractall(scratch)
        for entry in scratch.iterdir():
            if not (root / entry.name).exists():
                os.replace(entry, root / entry.name)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot unpack {archive} ({exc}); delete it to download again") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch_release(name: str, data_root: str | Path | None = None, *, progress: bool = True) -> Path:
    """Download (resumably), verify and unpack release `name` under the data root; returns the
    unpacked folder. A folder that is already there is returned without any download."""
    if name not in RELEASES:
        raise ConfigError(f"no download for {name!r} (known: {', '.join(sorted(RELEASES))})")
    release = RELEASES[name]
    root = resolve_data_root(data_root)
    folder = root / release.folder
    if folder.exists():
        return folder
    archive = root / "downloads" / release.filename
    digest = download(release.url, archive, sha256=release.sha256, progress=progress)
    if release.sha256 is None:
        print(f"{release.filename}: sha256 {digest} (not pinned yet: pin it in mmbench.data.download.RELEASES)", file=sys.stderr)
    extract_zip(archive, root)
    if not folder.is_dir():
        raise DataError(f"{archive} did not unpack to {folder}; is it the official {name} release?")
    return folder
