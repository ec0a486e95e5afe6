"""One benchmark run, end to end: config -> data -> model -> training -> scores -> result record.

A run owns one directory. It never overwrites finished work: a directory with a result needs a
new `--out`, one with an unfinished run needs `--resume`, and resuming checks the config matches
(except that `train.epochs` may grow: `--resume` then continues a finished run for more epochs,
keeping its record and checkpoint beside the new ones).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from mmbench.api.model import MultimodalVAE
from mmbench.api.registry import create_model, get_dataset
from mmbench.data.base import MultimodalDataset
from mmbench.data.cache import default_data_root
from mmbench.api.options import parse_assignment
from mmbench.errors import ConfigError, DataError, MMBenchError
from mmbench.evaluation.evaluators import (
    EvalContext,
    chosen_evaluators,
    curve_point,
    evaluate,
)
from mmbench.evaluation.samples import save_sample_grids
from mmbench.experiments.tracking import check_trackers, open_trackers
from mmbench.files import atomic_write_bytes, atomic_write_json, read_json
from mmbench.metrics.quality_gap import (
    REFERENCE_MODEL,
    QualityGap,
    quality_gap,
)
from mmbench.results.records import (
    RESULT_FILE,
    SCHEMA_VERSION,
    find_reference,
    provenance,
    read_record,
    score_versions,
    write_record,
)
from mmbench.results.regress import Entry, holds_config, record_for
from mmbench.results.store import StoredRecord
from mmbench.training.checkpoint import load_checkpoint
from mmbench.training.config import SECTIONS, applied_recipe, resolve_config, with_added_settings
from mmbench.training.loop import CHECKPOINT, stable_epochs, train

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
_HELD: set[Path] = set()


@contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold a lock on the run directory for as long as this process works in it, so a second `run`
    (or sweep job) into the same --out is refused instead of silently overwriting the first one's
    result; released when the process dies. Re-entrant within one process (a sweep job locks the
    directory before it decides whether to run, and `run` locks it again)."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _HELD:
        yield
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK_FILE, "w")
    except OSError as exc:
        raise MMBenchError(f"cannot use {run_dir} as a run directory ({exc.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MMBenchError(f"{run_dir} is being written by another process; wait for it or choose another --out") from None
        _HELD.add(run_dir)
        try:
            yield
        finally:
            _HELD.discard(run_dir)


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
    log: tuple[str, ...] = ()
    """Trackers to log to (`mmbench.experiments.tracking.TRACKERS`)."""

    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / run_name(self.model, self.dataset, self.tier, self.seed)


def run_name(model: str, dataset: str, tier: str, seed: int, overrides: tuple[str, ...] | None = None) -> str:
    """The one naming of run directories: `<model>-<dataset>-<tier>-seed<n>`, plus, for grid points
    (`overrides` given, even empty), a hash of the sorted overrides, so key order does not matter
    (but `beta` and `model.beta` are different keys)."""
    name = f"{model}-{dataset}-{tier}-seed{seed}"
    if overrides is None:
        return name
    return f"{name}-{hashlib.sha256(json.dumps(sorted(overrides)).encode()).hexdigest()[:8]}"


def entry_request(entry: Entry, results: Path, data_root: Path | None = None, device: str = "auto") -> RunRequest:
    """The run a regression-reference entry stands for, in `results/<run_name>`."""
    out = results / run_name(entry.model, entry.dataset, entry.tier, entry.seed)
    return RunRequest(entry.model, entry.dataset, entry.tier, entry.seed, entry.overrides, out, data_root, device,
                      resume=(out / CONFIG_FILE).exists(), progress=False)


def run_missing(entries: list[Entry], records: list[StoredRecord], results: Path, data_root: Path | None,
                device: str, configs: dict[tuple, dict] | None = None) -> tuple[list[Path], dict[Path, str]]:
    """Run every regression-reference entry without a record (made with its config, from `configs`
    by run key, when given) into `results/<run_name>` (resuming a started one); returns the run
    directories made and, for runs that failed, why. A model that fails (a non-finite loss, a
    record out of bounds, a plugin that breaks) is the gate's finding, so the other entries still
    run; bad input (config, data) stops the gate."""
    made, failures = [], {}
    for entry in entries:
        config = None if configs is None else configs[entry.run_key]
        found = record_for(entry.run_key, records, config)
        if found is not None and holds_config(found.record, config):
            continue
        request = entry_request(entry, results, data_root, device)
        try:
            run(request)
            made.append(request.run_dir())
        except (ConfigError, DataError):
            raise
        except MMBenchError as exc:
            failures[request.run_dir()] = str(exc)
    return made, failures


def pick_device(name: str) -> torch.device:
    """The torch device for --device NAME; on a GPU, set up as `reproducible_cuda` says."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here")
    if name.startswith("cuda"):
        reproducible_cuda()
    return torch.device(name)


def reproducible_cuda() -> None:
    """Deterministic cuDNN kernels, so one seed on one GPU gives one set of scores (by default
    cuDNN may pick nondeterministic convolution algorithms: torch's reproducibility notes), and no
    TF32, so a record that says fp32 was computed in fp32 and stays comparable with CPU records
    (bf16 is the fast option)."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def requested_config(request: RunRequest) -> dict:
    """The full config a request resolves to: what its config.json and result record hold."""
    config = resolve_config(request.model, request.dataset, request.tier, list(request.overrides))
    return {"model_name": request.model, "dataset_name": request.dataset, "tier": request.tier, "seed": request.seed, **config}


def plan(request: RunRequest) -> dict:
    """The resolved config of a request, checked against what its run directory already holds."""
    config = requested_config(request)
    run_dir = request.run_dir()
    if (run_dir / RESULT_FILE).exists() and not request.resume:
        raise MMBenchError(f"{run_dir} already holds a finished run; choose another --out (or --resume to rescore)")
    recorded, source = _recorded_config(run_dir)
    if recorded is not None:
        if not request.resume:
            raise MMBenchError(f"{run_dir} holds an unfinished run; add --resume to continue it or choose another --out")
        previous = with_added_settings(recorded)
        if previous != json.loads(json.dumps(config)) and not _continues(previous, config):
            raise MMBenchError(f"--resume: the config differs from the one {run_dir} was started with ({source}); "
                               "only train.epochs may grow, on a run whose learning rate has not begun to decay")
    return config


def _recorded_config(run_dir: Path) -> tuple[dict | None, Path | None]:
    """The config a run directory was started with and the file it came from (config.json, else
    its record), or (None, None)."""
    if (run_dir / CONFIG_FILE).exists():
        config, source = read_json(run_dir / CONFIG_FILE, "run config"), run_dir / CONFIG_FILE
    elif (run_dir / RESULT_FILE).exists():
        config, source = read_record(run_dir / RESULT_FILE)["config"], run_dir / RESULT_FILE
    else:
        return None, None
    if not isinstance(config, dict) or not all(isinstance(config.get(section), dict) for section in SECTIONS):
        raise MMBenchError(f"{source} does not hold a run config (an object with {', '.join(SECTIONS)} sections)")
    return config, source


def _set_aside_finished(run_dir: Path, config: dict) -> None:
    """Before a finished run is continued for more epochs, its record and checkpoint are kept as
    result.epochsN.json and checkpoint.epochsN.pt: a continuation that stops early loses nothing,
    and no result.json is left describing weights it did not score."""
    if not (run_dir / RESULT_FILE).exists():
        return
    finished = read_record(run_dir / RESULT_FILE)["config"]["train"]["epochs"]
    if finished == config["train"]["epochs"]:  # resuming a finished run only rescores it
        return
    if (run_dir / CHECKPOINT).exists():
        atomic_write_bytes(run_dir / f"checkpoint.epochs{finished}.pt", (run_dir / CHECKPOINT).read_bytes())
    (run_dir / RESULT_FILE).replace(run_dir / f"result.epochs{finished}.json")


def _continues(previous: dict, config: dict) -> bool:
    """Whether `config` is `previous` trained for more epochs: every other setting alike, and the
    shorter run never left the stable phase of the longer one's learning rate (`learning_rate`).
    Training resumes to the identical result, so a run continued from 60 to 100 epochs is the
    100-epoch run (a learning-curve point it scored after a last epoch off the `curve_every` grid
    stays in its history)."""
    schedule = ("epochs", "cooldown_epochs")
    longer = json.loads(json.dumps(config))
    before, after = previous.get("train", {}), longer["train"]
    stable_until = stable_epochs(after["epochs"], after["cooldown_epochs"])
    same = {**previous, "train": {k: v for k, v in before.items() if k not in schedule}} == \
        {**longer, "train": {k: v for k, v in after.items() if k not in schedule}}
    return same and before.get("cooldown_epochs", 0) == 0 and before.get("epochs", math.inf) <= stable_until


def run(request: RunRequest) -> dict:
    """Execute a run and return its result record."""
    with exclusive(request.run_dir()):
        return _run(request)


def _run(request: RunRequest) -> dict:
    config = plan(request)
    run_dir = request.run_dir()
    device = pick_device(request.device)
    data_root = Path(request.data_root) if request.data_root else default_data_root()
    began = time.perf_counter()
    dataset = get_dataset(request.dataset, data_root, **config["dataset"])
    data_seconds = time.perf_counter() - began

    torch.manual_seed(request.seed)
    model = create_model(request.model, dataset.spec, **config["model"])
    ctx = _context(config, request.seed, model, dataset, data_root, device, request.progress)
    chosen_evaluators(ctx, _evaluator_names(config["eval"]["metrics"]))  # a metric typo fails before training
    check_trackers(list(request.log))
    run_dir.mkdir(parents=True, exist_ok=True)
    _set_aside_finished(run_dir, config)
    atomic_write_json(run_dir / CONFIG_FILE, config)
    trackers = open_trackers(list(request.log), run_dir, run_dir.name, config)
    trained = train(
        model, _limit(dataset.train, config["train"]["max_train_samples"]), epochs=config["train"]["epochs"],
        batch_size=config["train"]["batch_size"], lr=config["train"]["lr"], seed=request.seed, run_dir=run_dir,
        device=device, resume=request.resume, progress=request.progress,
        compile=config["train"]["compile"], precision=config["train"]["precision"],
        warmup_steps=config["train"]["warmup_steps"], cooldown_epochs=config["train"]["cooldown_epochs"],
        amsgrad=config["train"]["amsgrad"], on_epoch=_curve(ctx, config),
        on_row=lambda row: [tracker.epoch(row) for tracker in trackers],
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
        "score_versions": score_versions(request.model, model.version, request.tier, config["eval"]["judge"]),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "timing": {"data_seconds": data_seconds, "train_seconds": trained.seconds},
        "train_history": trained.history,
        "recipe": recipe_provenance(request.model, request.tier, request.overrides),
    }
    record = _score(record, ctx, run_dir, config["eval"]["metrics"])
    for tracker in trackers:
        tracker.finish(record["metrics"], sorted((run_dir / "samples").glob("*.png")))
    return record


def recipe_provenance(model: str, tier: str, overrides: tuple[str, ...]) -> dict:
    """Where a run's training settings come from: the model's own recipe (and which of its
    settings `--set` replaced) or the tier's."""
    recipe = applied_recipe(model, tier)
    if recipe is None:
        return {"source": f"tier {tier}", "settings": {}}
    replaced = {key.split(".")[-1] for key, _ in map(parse_assignment, overrides)}
    return {"source": recipe["source"], "settings": recipe["settings"],
            "overridden": sorted(replaced & set(recipe["settings"]))}


def rescore(run_dir: Path, metrics: list[str] | None = None, data_root: Path | None = None, device: str = "auto", progress: bool = True) -> dict:
    """(Re)compute metrics of a finished run from its config and checkpoint; updates result.json.
    The quality gap alone needs only the records (this one and the unimodal run beside it), so a
    record kept without its checkpoint can still be compared with a unimodal run added later."""
    with exclusive(run_dir):
        if metrics and set(metrics) == {QualityGap.name}:
            record = read_record(Path(run_dir) / RESULT_FILE)
            _refresh_quality_gap(record, Path(run_dir))
            write_record(Path(run_dir), record)
            return record
        return _rescore(Path(run_dir), metrics, data_root, device, progress)


def _rescore(run_dir: Path, metrics: list[str] | None, data_root: Path | None, device: str, progress: bool) -> dict:
    data_root = Path(data_root) if data_root else default_data_root()
    record, dataset, model = load_finished_run(run_dir, data_root)
    ctx = _context(record["config"], record["seed"], model, dataset, data_root, pick_device(device), progress)
    return _score(record, ctx, run_dir, metrics)


def load_finished_run(run_dir: Path, data_root: Path) -> tuple[dict, MultimodalDataset, MultimodalVAE]:
    """A finished run's record, dataset and trained model (on the CPU), with one-line errors for a
    checkpoint that is unfinished or does not fit the model its record describes."""
    record = read_record(run_dir / RESULT_FILE)
    config = record["config"]
    dataset = get_dataset(record["dataset"], data_root, **config["dataset"])
    model = create_model(record["model"], dataset.spec, **config["model"])
    state = load_checkpoint(run_dir / CHECKPOINT)
    if state.get("epoch") != config["train"]["epochs"]:
        raise MMBenchError(f"{run_dir / CHECKPOINT} holds epoch {state.get('epoch')}, not the {config['train']['epochs']} "
                           f"its record was scored at; finish the run with `mmbench run ... --out {run_dir} --resume`")
    try:
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise MMBenchError(f"checkpoint {run_dir / CHECKPOINT} does not fit the model its record describes ({type(exc).__name__}: {reason})") from None
    return record, dataset, model


def _context(config: dict, seed: int, model, dataset, data_root: Path, device: torch.device, progress: bool) -> EvalContext:
    return EvalContext(
        model=model, dataset=dataset, train=dataset.train, test=_limit(dataset.test, config["eval"]["max_test_samples"]),
        options=config["eval"], seed=seed, device=device, data_root=data_root, progress=progress,
    )


def _curve(ctx: EvalContext, config: dict):
    """The epoch hook that scores learning-curve points, or None when train.curve_every is 0."""
    every, last = config["train"]["curve_every"], config["train"]["epochs"]
    if not every:
        return None
    return lambda epoch: curve_point(ctx, config["eval"]["curve_samples"]) if epoch % every == 0 or epoch == last else {}


def _evaluator_names(metrics: list[str] | None) -> list[str] | None:
    """The evaluators a metrics list names (quality_gap is computed from records, not by one)."""
    return None if metrics is None else [m for m in metrics if m != QualityGap.name]


def _score(record: dict, ctx: EvalContext, run_dir: Path, metrics: list[str] | None) -> dict:
    model, dataset, device, seed = ctx.model, ctx.dataset, ctx.device, ctx.seed
    model.to(device)
    evaluators = _evaluator_names(metrics)
    scores, versions, seconds = evaluate(ctx, evaluators) if evaluators != [] else ({}, {}, {})
    timing = record["timing"]
    # a rescore of some metrics replaces their times in the total, not the total (older records hold only the total)
    replaced = sum(timing.get(f"eval_seconds/{name}", 0.0) for name in seconds)
    timing["eval_seconds"] = timing.get("eval_seconds", 0.0) - replaced + sum(seconds.values())
    timing.update({f"eval_seconds/{name}": value for name, value in seconds.items()})
    save_sample_grids(model, ctx.test, run_dir / "samples", seed=seed, device=device)
    record["metrics"] = {**record["metrics"], **scores}
    record["metric_versions"] = {**record["metric_versions"], **versions}
    _refresh_quality_gap(record, run_dir)
    manifest = ctx.extras.get("classifier_manifest")
    classifiers = {}
    if manifest:
        record["classifier_accuracy"] = {f"m{i}": e["test_accuracy"] for i, e in enumerate(manifest["modalities"])}
        classifiers = {f"m{i}": e["sha256"] for i, e in enumerate(manifest["modalities"])}
    record["provenance"] = provenance(device, dataset.checksum, classifiers)
    write_record(run_dir, record)
    return record


def _refresh_quality_gap(record: dict, run_dir: Path) -> None:
    """Recompute the gap from the unimodal run beside this one, or drop it where there is none:
    kept, it could outlive or mismatch its reference."""
    record["metrics"] = {k: v for k, v in record["metrics"].items() if not k.startswith(f"{QualityGap.name}/")}
    record["metric_versions"].pop(QualityGap.name, None)
    reference = find_reference(run_dir, record) if record["model"] != REFERENCE_MODEL else None
    if reference is not None:
        record["metrics"].update(quality_gap(record, reference))
        record["metric_versions"][QualityGap.name] = QualityGap.version


def _limit(split, n: int | None):
    return split if n is None or n >= len(split) else split.subset(slice(0, n))
