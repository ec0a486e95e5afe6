"""Experiment trackers a researcher already reads: TensorBoard, Weights & Biases, MLflow.

`mmbench run --log tensorboard --log wandb --log mlflow` sends the resolved config, every epoch's
history row (loss, learning-curve points) as it is written, the final metrics and the sample grids.
Everything stays on disk under the run directory: TensorBoard event files in `tensorboard/`, W&B
in offline mode in `wandb/` (sync later with `wandb sync`), MLflow in a SQLite store `mlflow.db`
with artifacts in `mlartifacts/` (`mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db`). Each
tracker's package is optional (`pip install mmbench[track]`); a missing one is a one-line error
before training starts.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol

from mmbench.errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "mlflow")


class Tracker(Protocol):
    def epoch(self, row: dict[str, Any]) -> None: ...
    def finish(self, metrics: dict[str, float], images: list[Path]) -> None: ...


def _numbers(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step")}


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class TensorBoardTracker:
    def __init__(self, run_dir: Path, name: str, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", f"```\n{json.dumps(config, indent=2, sort_keys=True)}\n```")

    def epoch(self, row):
        for key, value in _numbers(row).items():
            self.writer.add_scalar(f"train/{key}", value, row["epoch"])
        self.writer.flush()

    def finish(self, metrics, images):
        import numpy as np
        from PIL import Image

        for key, value in metrics.items():
            self.writer.add_scalar(f"eval/{key}", value)
        for path in images:
            self.writer.add_image(f"samples/{path.stem}", np.asarray(Image.open(path).convert("RGB")), dataformats="HWC")
        self.writer.close()


class WandbTracker:
    def __init__(self, run_dir: Path, name: str, config: dict):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project="mmbench", name=name, dir=str(run_dir), config=config, mode="offline",
                              settings=wandb.Settings(silent=True))

    def epoch(self, row):
        self.run.log({f"train/{k}": v for k, v in _numbers(row).items()}, step=row["epoch"])

    def finish(self, metrics, images):
        self.run.summary.update(metrics)
        self.run.log({f"samples/{p.stem}": self.wandb.Image(str(p)) for p in images})
        self.run.finish()


class MLflowTracker:
    """MLflow's SQLite store under the run directory (its file store is deprecated); metric names
    keep only the characters MLflow accepts (`coherence/conditional/k=1` -> `coherence/conditional/k_1`)."""

    def __init__(self, run_dir: Path, name: str, config: dict):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(mlflow_uri(run_dir))
        client = mlflow.MlflowClient()
        if client.get_experiment_by_name("mmbench") is None:
            client.create_experiment("mmbench", artifact_location=(run_dir / "mlartifacts").absolute().as_uri())
        mlflow.set_experiment("mmbench")
        self.run = mlflow.start_run(run_name=name)
        mlflow.log_params({k: json.dumps(v) for k, v in _flat(config).items()})

    @staticmethod
    def _name(key: str) -> str:
        return re.sub(r"[^\w\-./ ]", "_", key)

    def epoch(self, row):
        self.mlflow.log_metrics({self._name(f"train/{k}"): v for k, v in _numbers(row).items()}, step=row["epoch"])

    def finish(self, metrics, images):
        self.mlflow.log_metrics({self._name(k): v for k, v in metrics.items()})
        for path in images:
            self.mlflow.log_artifact(str(path), artifact_path="samples")
        self.mlflow.end_run()


def mlflow_uri(run_dir: Path) -> str:
    """Where a run's MLflow tracker writes (for `mlflow ui --backend-store-uri` or an MlflowClient)."""
    return f"sqlite:///{(run_dir / 'mlflow.db').absolute()}"


_CLASSES = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MLflowTracker}


def check_trackers(names: list[str]) -> None:
    """Refuse unknown trackers and missing packages before any training starts."""
    import importlib.util

    for name in names:
        if name not in _CLASSES:
            raise ConfigError(f"unknown tracker {name!r} (known: {', '.join(TRACKERS)})")
        if importlib.util.find_spec(name) is None:  # each tracker's package has the tracker's name
            raise ConfigError(f"--log {name} needs the {name} package: pip install {name}")


def open_trackers(names: list[str], run_dir: Path, name: str, config: dict) -> list[Tracker]:
    check_trackers(names)
    return [_CLASSES[n](run_dir, name, config) for n in dict.fromkeys(names)]
