"""`mmbench run --log`: TensorBoard, Weights & Biases (offline) and MLflow (SQLite store) receive the
config, every epoch, the final metrics and the sample grids, read back with each package's own
reader; nothing leaves the run directory."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TRACKED = ["--set", "dataset.n_train=64", "--set", "dataset.n_test=16", "--set", "train.epochs=2",
           "--set", "train.batch_size=32", "--set", 'eval.metrics=["likelihood"]', "--set", "eval.iwae_k=2",
           "--set", "eval.likelihood_test_samples=16"]


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    for package in ("tensorboard", "wandb", "mlflow"):
        pytest.importorskip(package)
    root = tmp_path_factory.mktemp("tracked")
    env = {**os.environ, "MMBENCH_DATA": str(root / "data"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    command = [sys.executable, "-m", "mmbench.cli", "run", "--model", "mopoe", "--dataset", "polymnist", *TRACKED,
               "--device", "cpu", "--quiet", "--out", str(root / "run"), "--log", "tensorboard", "--log", "wandb", "--log", "mlflow"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


@pytest.mark.slow
def test_tensorboard_has_epochs_metrics_and_grids(tracked_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked_run / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    record = json.loads((tracked_run / "result.json").read_text())
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert events.Scalars("train/loss")[-1].value == pytest.approx(record["train_history"][-1]["loss"], rel=1e-5)
    assert events.Scalars("eval/likelihood/joint")[0].value == pytest.approx(record["metrics"]["likelihood/joint"], rel=1e-5)
    assert "samples/unconditional" in events.Tags()["images"] and "config" in " ".join(events.Tags()["tensors"])


@pytest.mark.slow
def test_wandb_offline_run_holds_config_history_summary_and_grids(tracked_run):
    """W&B's offline run file (protobuf records, read by `wandb sync`) names every logged key with
    its JSON value; the sample grids land in its media folder."""
    [run] = list((tracked_run / "wandb").glob("offline-run-*"))
    data = next(run.glob("run-*.wandb")).read_bytes()
    record = json.loads((tracked_run / "result.json").read_text())
    assert b"train/loss" in data and b"likelihood/joint" in data and b"warmup_steps" in data
    assert json.dumps(record["metrics"]["likelihood/joint"]).encode() in data
    assert any(p.name.startswith("samples/unconditional") or "unconditional" in p.name for p in (run / "files" / "media").rglob("*.png"))


@pytest.mark.slow
def test_mlflow_file_store_has_params_history_and_artifacts(tracked_run):
    from mlflow.tracking import MlflowClient

    from mmbench.experiments.tracking import mlflow_uri

    client = MlflowClient(tracking_uri=mlflow_uri(tracked_run))
    [run] = client.search_runs([client.get_experiment_by_name("mmbench").experiment_id])
    assert run.data.params["train.epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [1, 2]
    assert "likelihood/joint" in run.data.metrics
    assert any(a.path.endswith("unconditional.png") for a in client.list_artifacts(run.info.run_id, "samples"))


def test_a_missing_tracker_package_fails_before_training(tmp_path):
    from mmbench import ConfigError
    from mmbench.experiments.tracking import check_trackers

    with pytest.raises(ConfigError, match="unknown tracker"):
        check_trackers(["neptune"])
    check_trackers([])  # nothing asked, nothing needed
