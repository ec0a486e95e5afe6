"""The official PolyMNIST judges (MoPoE's released digit classifiers): their architecture loads the
release's state_dicts, every file is checked against a pinned sha256 and loaded without pickled
code, and a run judged by them says so in its record and never shares a board with mmbench's judge.
Tested on classifier files made in the release's format (torch.save of ClfImg's state_dict)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from mmbench import DataError
from mmbench.evaluation.official import FILE, MoPoEDigitClassifier, load_official_classifiers


def release(folder, modalities: int = 5) -> dict[str, str]:
    """Classifier files as the MoPoE release ships them (seeded weights), and their sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    pins = {}
    for m in range(modalities):
        torch.manual_seed(m)
        torch.save(MoPoEDigitClassifier().state_dict(), folder / FILE.format(m=m))
        pins[f"m{m}"] = hashlib.sha256((folder / FILE.format(m=m)).read_bytes()).hexdigest()
    return pins


def test_the_architecture_has_the_release_state_dict_keys():
    """ClfImg's nn.Sequential indices: conv 0, conv 3, linear 7, linear 10 (dropouts, ReLUs, Flatten between)."""
    shapes = {k: tuple(v.shape) for k, v in MoPoEDigitClassifier().state_dict().items()}
    assert shapes == {"encoder.0.weight": (10, 3, 4, 4), "encoder.0.bias": (10,), "encoder.3.weight": (20, 10, 4, 4),
                      "encoder.3.bias": (20,), "encoder.7.weight": (128, 980), "encoder.7.bias": (128,),
                      "encoder.10.weight": (10, 128), "encoder.10.bias": (10,)}


def test_pinned_files_load_and_judge_like_the_saved_network(tmp_path):
    pins = release(tmp_path)
    nets, digests = load_official_classifiers(tmp_path, 5, pins)
    torch.manual_seed(3)
    saved = MoPoEDigitClassifier().eval()
    x = torch.rand(4, 3, 28, 28)
    assert digests == [pins[f"m{m}"] for m in range(5)]
    assert torch.equal(nets[3](x), saved(x)) and torch.equal(nets[3].head(nets[3].features(x)), saved(x))


def test_unpinned_mismatched_missing_or_pickled_files_are_refused(tmp_path):
    pins = release(tmp_path, 2)
    with pytest.raises(DataError, match="no sha256 pinned for the official classifier m1"):
        load_official_classifiers(tmp_path, 2, {"m0": pins["m0"]})
    with pytest.raises(DataError, match="not the pinned"):
        load_official_classifiers(tmp_path, 2, {**pins, "m1": "0" * 64})
    with pytest.raises(DataError, match="not found"):
        load_official_classifiers(tmp_path, 3, pins)
    torch.save({"encoder": object()}, tmp_path / FILE.format(m=1))  # pickled code, not tensors
    pins["m1"] = hashlib.sha256((tmp_path / FILE.format(m=1)).read_bytes()).hexdigest()
    with pytest.raises(DataError, match="not a state_dict of MoPoE's ClfImg"):
        load_official_classifiers(tmp_path, 2, pins)


@pytest.mark.slow
def test_a_run_judged_by_the_official_classifiers_says_so_and_gets_its_own_board(tmp_path):
    pins = release(tmp_path / "clfs")
    env = {**os.environ, "MMBENCH_DATA": str(tmp_path / "data")}
    common = ["--model", "mopoe", "--dataset", "polymnist", "--set", "dataset.n_train=64", "--set", "dataset.n_test=32",
              "--set", "train.epochs=1", "--set", 'eval.metrics=["coherence"]', "--set", "eval.unconditional_samples=32",
              "--device", "cpu", "--quiet"]

    def run(out, *extra):
        return subprocess.run([sys.executable, "-m", "mmbench.cli", "run", *common, *extra, "--out", str(tmp_path / "runs" / out)],
                              capture_output=True, text=True, env=env, timeout=900)

    unpinned = run("unpinned", "--set", "eval.judge=official", "--set", f"eval.official_classifiers={tmp_path / 'clfs'}")
    assert unpinned.returncode == 2 and unpinned.stderr.strip().splitlines()[-1].startswith("error: no sha256 pinned")
    judged = run("official", "--set", "eval.judge=official", "--set", f"eval.official_classifiers={tmp_path / 'clfs'}",
                 "--set", f"eval.official_sha256={json.dumps(pins)}")
    assert judged.returncode == 0, judged.stderr[-2000:]
    record = json.loads((tmp_path / "runs" / "official" / "result.json").read_text())
    assert record["score_versions"]["judge:official"] == 1
    assert record["provenance"]["classifier_sha256"] == pins and set(record["classifier_accuracy"]) == set(pins)
    from mmbench.results.aggregate import build_boards
    from mmbench.results.store import load_results

    own = run("own")
    assert own.returncode == 0, own.stderr[-2000:]
    records, _ = load_results(tmp_path / "runs")
    assert len(build_boards(records)) == 2  # one judge per board
