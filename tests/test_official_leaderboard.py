"""The committed leaderboard is what its records say, and CI's reference covers every baseline."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "leaderboard"
BASELINES = {"unimodal", "mvae", "mmvae", "mopoe"}


def test_markdown_table_reproduces_the_committed_readme_byte_for_byte():
    records = sorted((ROOT / "records").glob("*/result.json"))
    assert records, "leaderboard/records holds no result records"
    proc = subprocess.run([sys.executable, "-m", "mmbench.cli", "leaderboard", "--results", str(ROOT / "records"), "--format", "markdown"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() and proc.stdout.strip() in (ROOT / "README.md").read_text()


def test_reference_pins_every_baseline_on_polymnist():
    reference = json.loads((ROOT / "reference-quick.json").read_text())
    pinned = {e["model"] for e in reference["entries"] if e["dataset"] == "polymnist" and e["tier"] == "quick"}
    assert BASELINES <= pinned
    assert all("coherence/conditional" in e["metrics"] for e in reference["entries"])
