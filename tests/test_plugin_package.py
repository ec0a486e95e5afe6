"""The example plugin package, installed the way a user installs a plugin, works end to end.

It is installed into a private folder (`pip install --target`, offline, no build isolation) that
only the subprocesses see through PYTHONPATH, so the global environment is never touched. Two
broken distributions sit beside it: they are reported by name with the reason while every other
model still loads.
"""
from __future__ import annotations

import configparser
import csv
import io
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from distribution_factory import write_distribution

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mmbench-example-plugin"
TINY = [
    "--set", "dataset.n_train=256", "--set", "dataset.n_test=100", "--set", "dataset.num_modalities=2",
    "--set", "model.latent_dim=16", "--set", "train.batch_size=64", "--set", "train.epochs=1",
    "--set", "eval.unconditional_samples=100", "--set", "eval.batch_size=100", "--set", 'eval.metrics=["coherence"]',
]
CHECK_PLUGIN = "import sys; from mmbench.cli.check_plugin import check_plugin; check_plugin(sys.argv[1:])"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding the installed example plugin and two broken plugin distributions."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"  # pip builds in the source tree (build/, *.egg-info): build a copy
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    if proc.returncode != 0:
        warnings.warn(f"pip install --target failed, installing by hand: {proc.stderr.strip().splitlines()[-1:]}")
        install_by_hand(source, target)
    add_broken_distributions(target)
    return target


def install_by_hand(source: Path, target: Path) -> None:
    """What pip would leave for importlib.metadata: the package and a dist-info whose
    entry_points.txt is taken from the plugin's own setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(source / "setup.cfg")
    name, version = cfg["metadata"]["name"], cfg["metadata"]["version"]
    shutil.copytree(source / "mmbench_example_plugin", target / "mmbench_example_plugin")
    write_distribution(target, name, {
        group: dict(map(str.strip, line.split("=", 1)) for line in body.strip().splitlines())
        for group, body in cfg["options.entry_points"].items()
    }, version)


def add_broken_distributions(target: Path) -> None:
    write_distribution(target, "brokenplugins", {"mmbench.models": {
        "needs_missing_dep": "mmbench_test_missing_dependency:factory",
        "not_a_factory": "mmbench_test_bad_plugin:NOT_CALLABLE",
        "not_a_vae": "mmbench_test_bad_plugin:not_a_vae",
    }})
    (target / "mmbench_test_bad_plugin.py").write_text(textwrap.dedent("""
        import torch

        NOT_CALLABLE = 42


        def not_a_vae(spec, *, latent_dim: int = 8):
            return torch.nn.Linear(latent_dim, latent_dim)
    """))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


def python(*args: str, site: Path, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMBENCH_DATA": str(data_root), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=900)


def mmbench(*args: str, site: Path, data_root: Path) -> subprocess.CompletedProcess:
    return python("-m", "mmbench.cli", *args, site=site, data_root=data_root)


def test_plugin_is_listed_and_broken_ones_are_named_with_the_reason(site, data_root):
    proc = mmbench("list", "models", site=site, data_root=data_root)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split()
    assert {"example_poe", "mopoe", "mvae", "mmvae", "unimodal"} <= set(listed)
    assert "needs_missing_dep" not in listed and "not_a_factory" not in listed
    assert "needs_missing_dep (broken: cannot import mmbench_test_missing_dependency:factory (ModuleNotFoundError" in proc.stderr
    assert "not_a_factory (broken: mmbench_test_bad_plugin:NOT_CALLABLE is not a callable factory)" in proc.stderr


def test_a_plugin_that_breaks_the_api_is_named_with_the_reason(site, data_root):
    proc = mmbench("run", "--model", "not_a_vae", "--dataset", "polymnist", "--out", str(data_root.parent / "r"), *TINY,
                   site=site, data_root=data_root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model 'not_a_vae' returned Linear, not a mmbench.MultimodalVAE" in proc.stderr
    check = python("-c", CHECK_PLUGIN, "not_a_vae", site=site, data_root=data_root)
    assert check.returncode == 1 and "✗ factory builds a MultimodalVAE: model 'not_a_vae' returned Linear" in check.stdout
    check = python("-c", CHECK_PLUGIN, "needs_missing_dep", site=site, data_root=data_root)
    assert check.returncode == 2 and check.stdout == ""
    assert check.stderr.strip() == ("error: model 'needs_missing_dep' is broken: cannot import mmbench_test_missing_dependency:factory "
                                    "(ModuleNotFoundError: No module named 'mmbench_test_missing_dependency')")


@pytest.mark.slow
def test_plugin_passes_the_checks_runs_and_is_ranked(site, data_root, tmp_path):
    check = python("-c", CHECK_PLUGIN, "example_poe", "--modalities", "2", site=site, data_root=data_root)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "example_poe: 11/11 checks passed" in check.stdout

    results = tmp_path / "results"
    proc = mmbench("run", "--model", "example_poe", "--dataset", "polymnist", "--out", str(results / "example_poe-run"),
                   "--quiet", *TINY, site=site, data_root=data_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "coherence/conditional" in proc.stdout

    board = mmbench("leaderboard", "--results", str(results), "--format", "csv", "--strict", site=site, data_root=data_root)
    assert board.returncode == 0, board.stderr
    rows = [r for r in csv.DictReader(io.StringIO(board.stdout)) if r["metric"] == "coherence/conditional"]
    assert [(r["model"], r["rank"], r["dataset"], r["tier"]) for r in rows] == [("example_poe", "1", "polymnist", "quick")]
    assert 0.0 <= float(rows[0]["mean"]) <= 1.0
