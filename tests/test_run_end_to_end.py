"""`mmbench run` end to end on tiny PolyMNIST, through the installed console script."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmbench.training.checkpoint import load_checkpoint, save_checkpoint

TINY = [
    "--set", "dataset.n_train=256", "--set", "dataset.n_test=100", "--set", "model.latent_dim=16",
    "--set", "train.batch_size=64", "--set", "eval.unconditional_samples=100", "--set", "eval.batch_size=100",
    "--set", 'eval.metrics=["coherence"]',
]
pytestmark = pytest.mark.slow


def mmbench(*args, data_root, check=True):
    env = {**os.environ, "MMBENCH_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "mmbench.cli", *args], capture_output=True, text=True, env=env, timeout=1200)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr[-2000:])
    return proc


def assert_same_run(record: dict, expected: dict) -> None:
    """Same losses and scores up to float32 round-off. Once in CI a resumed run's feature
    distances differed from the clean run's in the 7th digit (relative 2.5e-7), every coherence
    equal. A replay error moves the losses far more (checked: not restoring the shuffle state fails
    here). On this repo's machines the two are bitwise equal (12 kills between 0 and 1 s)."""
    assert record["train_history"] == [pytest.approx(row, rel=1e-6) for row in expected["train_history"]]
    assert record["metrics"] == pytest.approx(expected["metrics"], rel=1e-6)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def test_run_writes_a_complete_record(tmp_path, data_root):
    out = tmp_path / "run"
    mmbench("run", "--model", "mopoe", "--dataset", "polymnist", "--out", str(out), "--quiet", *TINY, "--set", "train.epochs=1", data_root=data_root)
    record = json.loads((out / "result.json").read_text())
    assert record["model"] == "mopoe" and record["tier"] == "quick" and record["seed"] == 0
    for k in (1, 2, 3, 4):
        assert 0.0 <= record["metrics"][f"coherence/conditional/k={k}"] <= 1.0
    assert "coherence/unconditional" in record["metrics"]
    assert set(record["classifier_accuracy"]) == {f"m{i}" for i in range(5)}
    assert record["provenance"]["dataset_checksum"] and record["provenance"]["torch_version"] == torch.__version__
    assert record["num_parameters"] > 0 and record["timing"]["train_seconds"] > 0
    assert 0 < record["timing"]["eval_seconds/coherence"] <= record["timing"]["eval_seconds"]
    assert (out / "samples" / "given_m0.png").exists() and (out / "samples" / "unconditional.png").exists()
    assert json.loads((out / "config.json").read_text())["model"]["latent_dim"] == 16
    # finished work is never overwritten
    again = mmbench("run", "--model", "mopoe", "--dataset", "polymnist", "--out", str(out), *TINY, data_root=data_root, check=False)
    assert again.returncode == 2 and "already holds a finished run" in again.stderr


def test_kill_and_resume_gives_the_same_scores(tmp_path, data_root):
    args = ["run", "--model", "mmvae", "--dataset", "polymnist", "--quiet", *TINY, "--set", "train.epochs=8"]
    mmbench(*args, "--out", str(tmp_path / "clean"), data_root=data_root)
    env = {**os.environ, "MMBENCH_DATA": str(data_root)}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "mmbench.cli", *args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(random.Random().uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists(), "the run finished before it could be killed"
    mmbench(*args, "--out", str(killed), "--resume", data_root=data_root)
    clean = json.loads((tmp_path / "clean" / "result.json").read_text())
    resumed = json.loads((killed / "result.json").read_text())
    assert_same_run(resumed, clean)


def test_a_finished_run_continued_for_more_epochs_is_the_longer_run(tmp_path, data_root):
    args = ["run", "--model", "mopoe", "--dataset", "polymnist", "--quiet", *TINY, "--set", "train.warmup_steps=0"]
    longer = ["--set", "train.epochs=3", "--set", "train.cooldown_epochs=1"]  # the lr decays over the last epoch
    mmbench(*args, *longer, "--out", str(tmp_path / "long"), data_root=data_root)
    short = tmp_path / "short"
    mmbench(*args, "--set", "train.epochs=2", "--set", "train.cooldown_epochs=0", "--out", str(short), data_root=data_root)
    finished = json.loads((short / "result.json").read_text())
    mmbench(*args, *longer, "--out", str(short), "--resume", data_root=data_root)
    long, continued = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("long", "short"))
    assert_same_run(continued, long)
    assert json.loads((short / "config.json").read_text())["train"]["epochs"] == 3
    # the 2-epoch run is kept beside it, record and weights
    assert json.loads((short / "result.epochs2.json").read_text()) == finished
    assert load_checkpoint(short / "checkpoint.epochs2.pt")["epoch"] == 2
    # fewer epochs, another setting, or going on after the lr has decayed is a different run
    for change in (["train.epochs=2", "train.cooldown_epochs=1"], ["train.lr=0.01"], ["train.epochs=4"]):
        proc = mmbench(*args, *longer, *[a for c in change for a in ("--set", c)], "--out", str(short), "--resume",
                       data_root=data_root, check=False)
        assert proc.returncode == 2 and "only train.epochs may grow" in proc.stderr, change


def test_learning_curve_points_leave_the_final_scores_as_they_were(tmp_path, data_root):
    """`train.curve_every` only adds points to the history: the judges a curve point loads must not
    shift the random samples the final scoring draws (loading them once drew initial weights from
    the global generator, moving feature distances in the 4th digit)."""
    args = ["run", "--model", "mopoe", "--dataset", "polymnist", "--quiet", *TINY, "--set", "train.epochs=2",
            "--set", "eval.curve_samples=50"]
    for every in (0, 1):
        mmbench(*args, "--set", f"train.curve_every={every}", "--out", str(tmp_path / f"every{every}"), data_root=data_root)
    plain, curved = (json.loads((tmp_path / f"every{e}" / "result.json").read_text()) for e in (0, 1))
    assert any("coherence/conditional/k=1" in row for row in curved["train_history"])
    assert curved["metrics"] == pytest.approx(plain["metrics"], rel=1e-6)


def test_a_continuation_that_stops_early_loses_nothing(tmp_path, data_root):
    constant_lr = ["--set", "train.cooldown_epochs=0"]
    args = ["run", "--model", "mopoe", "--dataset", "polymnist", "--quiet", *TINY, *constant_lr, "--out", str(tmp_path / "run")]
    mmbench(*args, "--set", "train.epochs=1", data_root=data_root)
    run = tmp_path / "run"
    finished = json.loads((run / "result.json").read_text())
    env = {**os.environ, "MMBENCH_DATA": str(data_root)}
    proc = subprocess.Popen([sys.executable, "-m", "mmbench.cli", *args, "--set", "train.epochs=40", "--resume"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / "result.epochs1.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "result.json").exists(), "the continuation finished before it could be killed"
    assert json.loads((run / "result.epochs1.json").read_text()) == finished
    assert load_checkpoint(run / "checkpoint.epochs1.pt")["epoch"] == 1
    # a record never scores weights it does not describe
    (run / "result.epochs1.json").rename(run / "result.json")
    save_checkpoint(run / "checkpoint.pt", {**load_checkpoint(run / "checkpoint.epochs1.pt"), "epoch": 7})
    proc = mmbench("evaluate", str(run), data_root=data_root, check=False)
    assert proc.returncode == 2 and "holds epoch 7, not the 1" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["run", "--model", "nope", "--dataset", "polymnist"], "unknown model 'nope'"),
    (["run", "--model", "mopoe", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["run", "--model", "mopoe", "--dataset", "polymnist", "--set", "beta"], "malformed --set"),
    (["run", "--model", "mopoe", "--dataset", "polymnist", "--set", "dataset.num_modalities=7"], "num_modalities"),
])
def test_bad_input_is_one_line_and_nonzero(args, message, tmp_path, data_root):
    proc = mmbench(*args, "--out", str(tmp_path / "r"), data_root=data_root, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_corrupt_data_cache_is_a_clear_error(tmp_path):
    from mmbench.api.registry import get_dataset

    root = tmp_path / "data"
    get_dataset("polymnist", root, n_train=256, n_test=100)
    (cache,) = (root / "polymnist").glob("*.pt")
    cache.write_bytes(cache.read_bytes()[:1000])
    proc = mmbench("run", "--model", "mopoe", "--dataset", "polymnist", "--out", str(tmp_path / "r"), *TINY, data_root=root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and cache.name in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
