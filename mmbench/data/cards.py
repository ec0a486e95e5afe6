"""Dataset cards: the pinned checksums a rebuilt dataset must reproduce.

The cards live in mmbench/data/dataset_cards/<name>.md so that they ship with the package (a wheel
install can verify); datasets/ at the repository root links there.

A card states one line per pinned build, `checksum-<tier>-seed<seed>: <sha256>` for the tier's
default sizes and `checksum-<tier>-seed<seed>-n<train tuples>: <sha256>` for a build of another
size (the cpu40k run tier's), which `mmbench data verify` compares against a fresh build.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from mmbench.errors import DataError
from mmbench.api.registry import get_dataset

CARDS_DIR = Path(__file__).resolve().parent / "dataset_cards"
_LINE = re.compile(r"^checksum-(?P<tier>[a-z]+)-seed(?P<seed>\d+)(?:-n(?P<n>[1-9]\d*))?:\s*(?P<sha>[0-9a-f]{64})\s*$",
                   re.MULTILINE)


def pinned_checksums(name: str, cards: Path = CARDS_DIR) -> dict[tuple[str, int, int | None], str]:
    """{(tier, seed, train tuples or None for the tier's default): sha256} from the card of `name`."""
    path = Path(cards) / f"{name}.md"
    if not path.exists():
        raise DataError(f"no dataset card {path}")
    return {(m["tier"], int(m["seed"]), m["n"] and int(m["n"])): m["sha"] for m in _LINE.finditer(path.read_text())}


def verify(name: str, tier: str = "quick", seed: int = 0, cards: Path = CARDS_DIR,
           n_train: int | None = None) -> tuple[str, str]:
    """Rebuild `name` from scratch (no cache) and return (pinned, rebuilt) checksums."""
    pinned = pinned_checksums(name, cards).get((tier, seed, n_train))
    if pinned is None:
        size = "its default size" if n_train is None else f"{n_train} train tuples"
        raise DataError(f"the card of {name!r} pins no checksum for tier {tier!r}, seed {seed} and {size}")
    sized = {} if n_train is None else {"n_train": n_train}
    with tempfile.TemporaryDirectory(prefix="mmbench-verify-") as scratch:
        rebuilt = get_dataset(name, Path(scratch), tier=tier, seed=seed, **sized).checksum
    return pinned, rebuilt


def label_classes(name: str, cards: Path = CARDS_DIR) -> int | None:
    """The number of labels the card of `name` states (a line `classes: 10`), None without one:
    a model that ignores the label is coherent 1 time in that many by chance."""
    path = Path(cards) / f"{name}.md"
    found = re.search(r"^classes:\s*([1-9]\d*)\s*$", path.read_text(), re.MULTILINE) if path.exists() else None
    return int(found[1]) if found else None


def pinned_assets(name: str, kind: str, cards: Path = CARDS_DIR) -> dict[str, str]:
    """{modality: sha256} of lines `<kind>-<modality>: <sha256>` in the card of `name` (e.g. the
    official classifiers, `official-classifier-m0: ...`); empty when the card pins none."""
    path = Path(cards) / f"{name}.md"
    if not path.exists():
        return {}
    line = re.compile(rf"^{re.escape(kind)}-(?P<key>m\d+):\s*(?P<sha>[0-9a-f]{{64}})\s*$", re.MULTILINE)
    return {m["key"]: m["sha"] for m in line.finditer(path.read_text())}
