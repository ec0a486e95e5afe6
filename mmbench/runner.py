"""One benchmark run, end to end: config -> data -> model -> training -> scores -> result record.

A run owns one directory. It never overwrites finished work: a directory with a result needs a
new `--out`, one with an unfinished run needs `--resume`, and resuming checks the config matches.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mmbench.checkpoint import atomic_write_json
from mmbench.config import resolve_config
from mmbench.data.cache import default_data_root
from mmbench.errors import ConfigError, MMBenchError
from mmbench.evaluation import EvalContext, evaluate
from mmbench.metrics.quality_gap import REFERENCE_MODEL, QualityGap, find_reference, quality_gap
from mmbench.records import RESULT_FILE, SCHEMA_VERSION, provenance, read_record, score_versions, write_record
from mmbench.registry import create_model, get_dataset
from mmbench.samples import save_sample_grids
from mmbench.training import CHECKPOINT, train
from mmbench.checkpoint import load_checkpoint

CONFIG_FILE = "config.json"


@dataclass
class RunRequest:
    model: str
    dataset: str
    tier: str = "quick"
    seed: int = 0
    overrides: tuple[str, ...] = ()
    out: Path | None = None
    data_root: Path | None = None
    device: str = "auto"
    resume: bool = False
    progress: bool = True

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / f"{self.model}-{self.dataset}-{self.tier}-seed{self.seed}"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


def plan(request: RunRequest) -> dict:
    """The resolved config of a request, checked against what its run directory already holds."""
    config = resolve_config(request.model, request.dataset, request.tier, list(request.overrides))
    config = {"model_name": request.model, "dataset_name": request.dataset, "tier": request.tier, "seed": request.seed, **config}
    run_dir = request.run_dir()
    if (run_dir / RESULT_FILE).exists() and not request.resume:
        raise MMBenchError(f"{run_dir} already holds a finished run; choose another --out (or --resume to rescore)")
    if (run_dir / CONFIG_FILE).exists():
        if not request.resume:
            raise MMBenchError(f"{run_dir} holds an unfinished run; add --resume to continue it or choose another --out")
        previous = json.loads((run_dir / CONFIG_FILE).read_text())
        if previous != json.loads(json.dumps(config)):
            raise MMBenchError(f"--resume: the config differs from the one {run_dir} was started with ({run_dir / CONFIG_FILE})")
    return config


def run(request: RunRequest) -> dict:
    """Execute a run and return its result record."""
    config = plan(request)
    run_dir = request.run_dir()
    device = pick_device(request.device)
    data_root = Path(request.data_root) if request.data_root else default_data_root()
    began = time.perf_counter()
    dataset = get_dataset(request.dataset, data_root, **config["dataset"])
    data_seconds = time.perf_counter() - began

    torch.manual_seed(request.seed)
    model = create_model(request.model, dataset.spec, **config["model"])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG_FILE, config)
    trained = train(
        model, _limit(dataset.train, config["train"]["max_train_samples"]), epochs=config["train"]["epochs"],
        batch_size=config["train"]["batch_size"], lr=config["train"]["lr"], seed=request.seed, run_dir=run_dir,
        device=device, resume=request.resume, progress=request.progress,
        compile=config["train"]["compile"], precision=config["train"]["precision"],
        warmup_steps=config["train"]["warmup_steps"],
    )
    record = {
        "schema_version": SCHEMA_VERSION,
        "model": request.model,
        "dataset": request.dataset,
        "tier": request.tier,
        "seed": request.seed,
        "config": config,
        "metrics": {},
        "metric_versions": {},
        "score_versions": score_versions(request.model, model.version, request.tier),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "timing": {"data_seconds": data_seconds, "train_seconds": trained.seconds},
        "train_history": trained.history,
    }
    return _score(record, model, dataset, run_dir, data_root, device, config["eval"]["metrics"], request.progress)


def rescore(run_dir: Path, metrics: list[str] | None = None, data_root: Path | None = None, device: str = "auto", progress: bool = True) -> dict:
    """(Re)compute metrics of a finished run from its config and checkpoint; updates result.json."""
    run_dir = Path(run_dir)
    record = read_record(run_dir / RESULT_FILE)
    config = record["config"]
    data_root = Path(data_root) if data_root else default_data_root()
    dataset = get_dataset(record["dataset"], data_root, **config["dataset"])
    model = create_model(record["model"], dataset.spec, **config["model"])
    state = load_checkpoint(run_dir / CHECKPOINT)
    model.load_state_dict(state["model"])
    return _score(record, model, dataset, run_dir, data_root, pick_device(device), metrics, progress)


def _score(record: dict, model, dataset, run_dir: Path, data_root: Path, device: torch.device, metrics: list[str] | None, progress: bool) -> dict:
    config, seed = record["config"], record["seed"]
    model.to(device)
    ctx = EvalContext(
        model=model, dataset=dataset, train=dataset.train, test=_limit(dataset.test, config["eval"]["max_test_samples"]),
        options=config["eval"], seed=seed, device=device, data_root=data_root, progress=progress,
    )
    began = time.perf_counter()
    evaluators = None if metrics is None else [m for m in metrics if m != QualityGap.name]
    scores, versions, seconds = evaluate(ctx, evaluators) if evaluators != [] else ({}, {}, {})
    record["timing"]["eval_seconds"] = time.perf_counter() - began
    record["timing"].update({f"eval_seconds/{name}": value for name, value in seconds.items()})
    save_sample_grids(model, ctx.test, run_dir / "samples", seed=seed, device=device)
    record["metrics"] = {**record["metrics"], **scores}
    record["metric_versions"] = {**record["metric_versions"], **versions}
    reference = find_reference(run_dir, record) if record["model"] != REFERENCE_MODEL else None
    if reference is not None:
        record["metrics"].update(quality_gap(record, reference))
        record["metric_versions"][QualityGap.name] = QualityGap.version
    manifest = ctx.extras.get("classifier_manifest")
    classifiers = {}
    if manifest:
        record["classifier_accuracy"] = {f"m{i}": e["test_accuracy"] for i, e in enumerate(manifest["modalities"])}
        classifiers = {f"m{i}": e["sha256"] for i, e in enumerate(manifest["modalities"])}
    record["provenance"] = provenance(device, dataset.checksum, classifiers)
    write_record(run_dir, record)
    return record


def _limit(split, n: int | None):
    return split if n is None or n >= len(split) else split.subset(slice(0, n))
