"""Installed-looking distributions for plugin tests: a dist-info folder that importlib.metadata
reads from any folder on sys.path, with the entry points a plugin's setup.cfg would declare."""
from __future__ import annotations

import configparser
from pathlib import Path


def write_distribution(folder: Path, name: str, entry_points: dict[str, dict[str, str]], version: str = "0.1") -> Path:
    """`folder/<name>-<version>.dist-info` with METADATA and entry_points.txt ({group: {name: target}})."""
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = configparser.ConfigParser()
    groups.optionxform = str  # entry point names keep their case
    groups.read_dict(entry_points)
    with open(info / "entry_points.txt", "w") as handle:
        groups.write(handle)
    return info
