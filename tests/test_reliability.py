"""Failure modes of a benchmark run. Each test fails if the protection it names is removed:

- a non-finite loss stops the run with one line naming epoch and step, keeps the last good
  checkpoint and writes no result record (mmbench.training.loop);
- a corrupt or truncated data cache, checkpoint or result record is one clear line and nothing
  else is lost (mmbench.data.cache, mmbench.training.checkpoint, mmbench.training.loop, mmbench.results.records);
- checkpoints and caches load with weights_only=True, so a pickled payload never runs;
- result and checkpoint writes are atomic (temp file + os.replace), even when a write crashes;
- concurrent runs into one results folder lose no record (mmbench.results.store).

Resuming a killed run to identical scores is tested in test_run_end_to_end.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import mmbench
from mmbench_baselines.mopoe import MoPoE
from mmbench import DatasetSpec
from mmbench.files import atomic_write_json
from mmbench.training.checkpoint import load_checkpoint, save_checkpoint
from mmbench.data.cache import load_verified
from mmbench.errors import DataError, MMBenchError, TrainingError
from mmbench.results.records import RESULT_FILE, read_record, write_record
from mmbench.api.registry import MODELS, get_dataset
from mmbench.experiments.runner import LOCK_FILE, RunRequest, rescore, run
from mmbench.results.store import load_results
from mmbench.training.loop import CHECKPOINT
from record_factory import make_record

N_TRAIN, N_TEST = 256, 100
SIZES = [f"dataset.n_train={N_TRAIN}", f"dataset.n_test={N_TEST}", "eval.metrics=[]"]
"""Tiny data and no metrics (no coherence classifiers to train): a run takes seconds."""
TINY = (*SIZES, "model.latent_dim=8", "train.batch_size=64")
STEPS_PER_EPOCH = N_TRAIN // 64


def nan_after(spec: DatasetSpec, *, latent_dim: int = 8, calls: int = STEPS_PER_EPOCH + 2) -> MoPoE:
    """Test model: MoPoE whose objective turns NaN from call `calls` + 1 on."""
    return NaNAfter(spec, latent_dim, calls)


class NaNAfter(MoPoE):
    def __init__(self, spec: DatasetSpec, latent_dim: int, calls: int):
        super().__init__(spec, latent_dim, beta=1.0)
        self.calls, self.limit = 0, calls

    def objective(self, xs):
        self.calls += 1
        value = super().objective(xs)
        return value * float("nan") if self.calls > self.limit else value


MODELS.add("nan_after", nan_after)


# --- helpers ----------------------------------------------------------------------------------

def cli(*args: str, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMBENCH_DATA": str(data_root), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "mmbench.cli", *args], capture_output=True, text=True, env=env, timeout=1200)


def sets(overrides) -> list[str]:
    return [word for item in overrides for word in ("--set", item)]


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def one_line(exc: BaseException, *needles: str) -> None:
    message = str(exc)
    assert message and "\n" not in message, message
    for needle in needles:
        assert needle in message, message


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = {"truncated": truncate, "bit-flip": flip_middle_byte, "garbage": garbage, "empty": empty}


def assert_finite_state(state: dict) -> None:
    assert all(torch.isfinite(t).all() for t in state["model"].values())


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    get_dataset("polymnist", root, n_train=N_TRAIN, n_test=N_TEST)
    return root


def request(out: Path, data_root: Path, model: str = "nan_after", overrides=TINY, **kwargs) -> RunRequest:
    return RunRequest(model, "polymnist", overrides=tuple(overrides), out=out, data_root=data_root, device="cpu",
                      progress=False, **kwargs)


@pytest.fixture(scope="module")
def unfinished_run(tmp_path_factory, data_root) -> Path:
    """A run stopped by a NaN in epoch 2: config.json and the epoch-1 checkpoint, no result."""
    out = tmp_path_factory.mktemp("unfinished") / "run"
    with pytest.raises(TrainingError):
        run(request(out, data_root, overrides=(*TINY, "train.epochs=3")))
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    run(request(out, data_root, model="mopoe", overrides=(*TINY, "train.epochs=1")))
    return out


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / run_dir.name))


# --- non-finite loss --------------------------------------------------------------------------

def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, data_root):
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as caught:
        run(request(out, data_root, overrides=(*TINY, "train.epochs=3")))
    # call STEPS_PER_EPOCH + 3 is the first NaN: epoch 2, step 3
    one_line(caught.value, "non-finite loss", "epoch 2, step 3", str(out / CHECKPOINT))
    assert not (out / RESULT_FILE).exists()
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, CHECKPOINT, "config.json"]  # no temp files left
    state = load_checkpoint(out / CHECKPOINT)
    assert state["epoch"] == 1 and [h["epoch"] for h in state["history"]] == [1]
    assert_finite_state(state)
    spec = get_dataset("polymnist", data_root, n_train=N_TRAIN, n_test=N_TEST).spec
    nan_after(spec).load_state_dict(state["model"])


@pytest.mark.slow
def test_diverging_cli_run_is_one_line_and_keeps_the_epoch_1_checkpoint(tmp_path, data_root):
    """lr = 1e12 makes every baseline's loss NaN right after the first Adam step (checked for all
    four at the time of writing); one step per epoch, so epoch 1 finishes and is checkpointed."""
    out = tmp_path / "run"
    overrides = [*SIZES, "model.latent_dim=16", "train.batch_size=256", "train.epochs=3", "train.lr=1e12"]
    proc = cli("run", "--model", "mopoe", "--dataset", "polymnist", "--out", str(out), "--quiet", *sets(overrides), data_root=data_root)
    one_line_error(proc, "non-finite loss", "epoch 2, step 1", str(out / CHECKPOINT))
    assert not (out / RESULT_FILE).exists()
    state = load_checkpoint(out / CHECKPOINT)
    assert state["epoch"] == 1
    assert_finite_state(state)


# --- corrupt inputs: one clear line, nothing else lost ------------------------------------------

@pytest.mark.parametrize("damage", DAMAGE)
def test_corrupt_data_cache_is_one_line_and_left_alone(tmp_path, data_root, damage):
    root = Path(shutil.copytree(data_root, tmp_path / "data"))
    (cache,) = (root / "polymnist").glob("*.pt")
    (root / "polymnist" / "notes.txt").write_text("a file the loader must not touch")
    DAMAGE[damage](cache)
    before = snapshot(root)
    with pytest.raises(DataError) as caught:
        get_dataset("polymnist", root, n_train=N_TRAIN, n_test=N_TEST)
    one_line(caught.value, cache.name, "corrupt")
    assert snapshot(root) == before  # the damaged file is reported, never rebuilt over or deleted


def _not_a_checkpoint(path: Path) -> None:
    torch.save([1, 2, 3], path)


def _missing_rng_state(path: Path) -> None:
    state = load_checkpoint(path)
    del state["shuffle_rng"]
    torch.save(state, path)


def _wrong_model(path: Path) -> None:
    state = load_checkpoint(path)
    state["model"] = {"encoders.0.heads.mu.weight": torch.zeros(3, 3)}
    torch.save(state, path)


CHECKPOINT_DAMAGE = {**DAMAGE, "not a checkpoint": _not_a_checkpoint, "missing rng state": _missing_rng_state,
                     "wrong model": _wrong_model}


@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_corrupt_checkpoint_on_resume_is_one_line_and_left_alone(tmp_path, data_root, unfinished_run, damage):
    """A flipped bit loads fine with torch.load (it skips the zip CRCs): the checkpoint's own
    sha256 catches it. The other payloads load but are no checkpoint of this model."""
    out = copy_run(unfinished_run, tmp_path)
    CHECKPOINT_DAMAGE[damage](out / CHECKPOINT)
    before = snapshot(out)
    with pytest.raises(MMBenchError) as caught:
        run(request(out, data_root, overrides=(*TINY, "train.epochs=3"), resume=True))
    assert not isinstance(caught.value, TrainingError)
    one_line(caught.value, str(out / CHECKPOINT))
    assert snapshot(out) == before and not (out / RESULT_FILE).exists()


@pytest.mark.slow
def test_corrupt_checkpoint_on_cli_resume_is_one_line(tmp_path, data_root):
    out = tmp_path / "run"
    overrides = [*SIZES, "model.latent_dim=16", "train.batch_size=256", "train.epochs=3", "train.lr=1e12"]
    args = ["run", "--model", "mopoe", "--dataset", "polymnist", "--out", str(out), "--quiet", *sets(overrides)]
    assert cli(*args, data_root=data_root).returncode == 2  # diverges in epoch 2: an unfinished run
    truncate(out / CHECKPOINT)
    before = snapshot(out)
    one_line_error(cli(*args, "--resume", data_root=data_root), "cannot load checkpoint", str(out / CHECKPOINT))
    assert snapshot(out) == before


def _invalid_json(path: Path) -> None:
    path.write_text(path.read_text()[:-40])


def _bad_field(path: Path) -> None:
    record = json.loads(path.read_text())
    record["seed"] = "zero"
    path.write_text(json.dumps(record))


RECORD_DAMAGE = {"truncated json": _invalid_json, "bad field": _bad_field, "empty": empty}


def test_rescoring_recomputes_the_quality_gap_from_the_unimodal_run_beside_it(tmp_path, data_root, finished_run):
    run_dir = copy_run(finished_run, tmp_path)
    record = json.loads((run_dir / "result.json").read_text())
    record["metrics"] = {f"feature_distance/m{m}": 5.0 + m for m in range(5)}  # the tiny run scores nothing itself
    (run_dir / "result.json").write_text(json.dumps(record))
    unimodal = {**record, "model": "unimodal", "metrics": {k: v - 1.0 for k, v in record["metrics"].items()}}
    (tmp_path / "unimodal").mkdir()
    (tmp_path / "unimodal" / "result.json").write_text(json.dumps(unimodal))
    gaps = lambda r: {k: v for k, v in r["metrics"].items() if k.startswith("quality_gap/feature_distance/m") and "ratio" not in k}
    (run_dir / CHECKPOINT).unlink()  # the gap needs the records alone: committed records keep no checkpoint
    scored = rescore(run_dir, ["quality_gap"], data_root=data_root, progress=False)
    assert len(gaps(scored)) == 5 and all(v == pytest.approx(1.0) for v in gaps(scored).values())
    assert json.loads((run_dir / "result.json").read_text())["metrics"] == scored["metrics"]
    (tmp_path / "unimodal" / "result.json").write_text(json.dumps({**unimodal, "score_versions": {**record["score_versions"], "tier:quick": 1}}))
    rescored = rescore(run_dir, ["quality_gap"], data_root=data_root, progress=False)
    assert not any(k.startswith("quality_gap/") for k in rescored["metrics"]) and "quality_gap" not in rescored["metric_versions"]


def test_rescoring_some_metrics_keeps_the_evaluation_time_of_the_others(tmp_path, data_root, finished_run):
    run_dir = copy_run(finished_run, tmp_path)
    before = rescore(run_dir, ["likelihood"], data_root=data_root, progress=False)["timing"]
    assert before["eval_seconds"] == before["eval_seconds/likelihood"] > 0
    after = rescore(run_dir, ["quality_gap"], data_root=data_root, progress=False)["timing"]
    assert after["eval_seconds"] == after["eval_seconds/likelihood"] == before["eval_seconds/likelihood"]
    record = json.loads((run_dir / "result.json").read_text())
    record["timing"] = {"train_seconds": 1.0, "eval_seconds": 100.0}  # an older record: the total alone
    (run_dir / "result.json").write_text(json.dumps(record))
    older = rescore(run_dir, ["likelihood"], data_root=data_root, progress=False)["timing"]
    assert older["eval_seconds"] == pytest.approx(100.0 + older["eval_seconds/likelihood"])


@pytest.mark.parametrize("damage", RECORD_DAMAGE)
def test_corrupt_result_record_for_evaluate_is_one_line_and_left_alone(tmp_path, data_root, finished_run, damage):
    out = copy_run(finished_run, tmp_path)
    RECORD_DAMAGE[damage](out / RESULT_FILE)
    before = snapshot(out)
    with pytest.raises(MMBenchError) as caught:
        rescore(out, [], data_root, "cpu", progress=False)
    one_line(caught.value, str(out / RESULT_FILE))
    assert snapshot(out) == before


def test_corrupt_checkpoint_for_evaluate_is_one_line_and_left_alone(tmp_path, data_root, finished_run):
    out = copy_run(finished_run, tmp_path)
    truncate(out / CHECKPOINT)
    before = snapshot(out)
    with pytest.raises(MMBenchError) as caught:
        rescore(out, [], data_root, "cpu", progress=False)
    one_line(caught.value, "cannot load checkpoint", str(out / CHECKPOINT))
    assert snapshot(out) == before


def test_a_finished_run_missing_its_config_file_is_checked_against_its_record(tmp_path, data_root, finished_run):
    out = copy_run(finished_run, tmp_path)
    (out / "config.json").unlink()
    before = snapshot(out)
    with pytest.raises(MMBenchError) as caught:  # 1 epoch at latent 16 is another run, not a rescore of this one
        run(request(out, data_root, model="mopoe", overrides=(*TINY, "train.epochs=1", "model.latent_dim=16"), resume=True))
    one_line(caught.value, "the config differs", str(out / RESULT_FILE))
    assert snapshot(out) == before


@pytest.mark.parametrize("text", ["[]", "null", '{"model_name": "mopoe", "train": 3}'])
def test_a_config_file_that_is_not_a_run_config_is_one_line_and_left_alone(tmp_path, data_root, finished_run, text):
    out = copy_run(finished_run, tmp_path)
    (out / "config.json").write_text(text)
    before = snapshot(out)
    with pytest.raises(MMBenchError) as caught:
        run(request(out, data_root, model="mopoe", overrides=(*TINY, "train.epochs=1"), resume=True))
    one_line(caught.value, "does not hold a run config")
    assert snapshot(out) == before


@pytest.mark.slow
def test_corrupt_result_record_through_cli_evaluate_and_leaderboard(tmp_path, data_root, finished_run):
    """The console script turns each of these into one line on stderr, exit status 2 (or a warning
    and exit 0 where the leaderboard skips the record), and leaves every file as it was."""
    out = copy_run(finished_run, tmp_path / "results")
    good = tmp_path / "results" / "good"
    write_record(good, make_record("mvae", 0))
    _invalid_json(out / RESULT_FILE)
    before = snapshot(tmp_path / "results")
    one_line_error(cli("evaluate", str(out), "--quiet", data_root=data_root), str(out / RESULT_FILE), "not valid JSON")
    board = cli("leaderboard", "--results", str(tmp_path / "results"), data_root=data_root)
    assert board.returncode == 0 and "mvae" in board.stdout, board.stderr
    (warning,) = board.stderr.strip().splitlines()
    assert "run/result.json" in warning and "not valid JSON" in warning
    strict = cli("leaderboard", "--results", str(tmp_path / "results"), "--strict", data_root=data_root)
    assert strict.returncode == 2 and "Traceback" not in strict.stderr  # one line per bad record, then the verdict
    assert strict.stderr.strip().splitlines()[-1] == "error: 1 bad result record(s) (--strict)"
    after = snapshot(tmp_path / "results")
    assert {k: v for k, v in after.items() if not k.startswith(".index")} == before


# --- no code from pickles -------------------------------------------------------------------------

class RunsCode:
    """Unpickling this calls open(marker, "w"), creating the marker file: what an attacker's
    payload would do with os.system instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _evil_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"model": RunsCode(marker), "epoch": 1}, path)


def test_pickled_code_in_a_checkpoint_is_refused_and_never_runs(tmp_path):
    path, marker = tmp_path / CHECKPOINT, tmp_path / "pwned"
    _evil_checkpoint(path, marker)
    with pytest.raises(MMBenchError) as caught:
        load_checkpoint(path)
    one_line(caught.value, "unsafe")
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the payload is live: a plain torch.load runs it
    assert marker.exists()


def test_pickled_code_in_a_resumed_run_or_data_cache_never_runs(tmp_path, data_root, unfinished_run):
    out = copy_run(unfinished_run, tmp_path)
    marker = tmp_path / "pwned"
    _evil_checkpoint(out / CHECKPOINT, marker)
    with pytest.raises(MMBenchError):
        run(request(out, data_root, overrides=(*TINY, "train.epochs=3"), resume=True))
    root = Path(shutil.copytree(data_root, tmp_path / "data"))
    (cache,) = (root / "polymnist").glob("*.pt")
    torch.save({"format": 1, "tensors": {}, "meta": RunsCode(marker), "checksum": ""}, cache)
    with pytest.raises(DataError):
        load_verified(cache)
    assert not marker.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    """A new torch.load without weights_only=True would reopen the hole the tests above close."""
    sources = [*Path(mmbench.__file__).parent.rglob("*.py"), *(Path(mmbench.__file__).parent.parent / "baselines").rglob("*.py")]
    calls = [(path.name, call) for path in sources
             for call in re.findall(r"torch\.load\((?:[^()]|\([^()]*\))*\)", path.read_text())]
    assert calls and [c for c in calls if "weights_only=True" not in c[1]] == []


# --- atomic writes --------------------------------------------------------------------------------

def _crashing_torch_save(real_save):
    """torch.save that writes the first half of the real bytes, then fails like a full disk."""

    def save(obj, f, *args, **kwargs):
        import io

        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        _write_to(f, buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    return save


def _write_to(f, data: bytes) -> None:
    """What torch.save does with its target: a path or a file-like object (checkpoints are
    serialized in memory, then written by the atomic writer)."""
    f.write(data) if hasattr(f, "write") else Path(f).write_bytes(data)


def _fail(*args, **kwargs):
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("crash", ["torch.save", "os.replace"])
def test_a_crashed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, crash):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"epoch": 1, "weights": torch.arange(1000.0)})
    before = path.read_bytes()
    if crash == "torch.save":
        monkeypatch.setattr(torch, "save", _crashing_torch_save(torch.save))
    else:
        monkeypatch.setattr(os, "replace", _fail)
    with pytest.raises(OSError):
        save_checkpoint(path, {"epoch": 2, "weights": torch.zeros(1000)})
    assert path.read_bytes() == before and load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]  # the partial temp file is gone


@pytest.mark.parametrize("crash", ["os.fsync", "os.replace", "write"])
def test_a_crashed_result_write_keeps_the_previous_record(tmp_path, monkeypatch, crash):
    write_record(tmp_path, make_record("mopoe", 0, coherence=0.5))
    before = (tmp_path / RESULT_FILE).read_bytes()
    if crash == "write":
        real_fdopen = os.fdopen

        def half_writing_fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            real_write = f.write

            def write(data):
                real_write(data[: len(data) // 2])
                f.flush()
                raise OSError(28, "No space left on device")

            f.write = write
            return f

        monkeypatch.setattr(os, "fdopen", half_writing_fdopen)
    else:
        monkeypatch.setattr(os, crash.split(".")[1], _fail)
    with pytest.raises(OSError):
        write_record(tmp_path, make_record("mopoe", 0, coherence=0.9))
    assert (tmp_path / RESULT_FILE).read_bytes() == before
    assert read_record(tmp_path / RESULT_FILE)["metrics"]["coherence/unconditional"] == 0.25
    assert [p.name for p in tmp_path.iterdir()] == [RESULT_FILE]


def test_a_crash_while_checkpointing_epoch_2_leaves_epoch_1_resumable(tmp_path, data_root, monkeypatch):
    out = tmp_path / "run"
    real_save, saves = torch.save, []

    def save_then_crash_on_second(obj, f, *args, **kwargs):
        saves.append(f)
        (real_save if len(saves) == 1 else _crashing_torch_save(real_save))(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_then_crash_on_second)
    with pytest.raises(OSError):
        run(request(out, data_root, model="mopoe", overrides=(*TINY, "train.epochs=2")))
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, CHECKPOINT, "config.json"]
    assert load_checkpoint(out / CHECKPOINT)["epoch"] == 1
    record = run(request(out, data_root, model="mopoe", overrides=(*TINY, "train.epochs=2"), resume=True))
    assert [h["epoch"] for h in record["train_history"]] == [1, 2]


def test_a_process_killed_mid_write_never_leaves_a_partial_file_under_the_final_name(tmp_path):
    """A hard crash (no except clause runs) may leave a hidden temp file, never a half checkpoint
    or record under the name a reader opens."""
    save_checkpoint(tmp_path / CHECKPOINT, {"epoch": 1})
    atomic_write_json(tmp_path / RESULT_FILE, {"epoch": 1})
    before = snapshot(tmp_path)
    script = textwrap.dedent(f"""
        import os, torch
        from pathlib import Path
        from mmbench.files import atomic_write_json
        from mmbench.training.checkpoint import save_checkpoint
        real_save, real_fsync = torch.save, os.fsync
        def die_mid_save(obj, f, *a, **k):
            f.write(b"PK half a zip") if hasattr(f, "write") else Path(f).write_bytes(b"PK half a zip")
            os._exit(9)
        def die_at_fsync(fd):
            os._exit(9)
        torch.save = die_mid_save
        if os.environ["TARGET"] == "checkpoint":
            save_checkpoint(Path({str(tmp_path)!r}) / "{CHECKPOINT}", {{"epoch": 2}})
        os.fsync = die_at_fsync
        atomic_write_json(Path({str(tmp_path)!r}) / "{RESULT_FILE}", {{"epoch": 2}})
    """)
    for target in ("checkpoint", "record"):
        proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TARGET": target}, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 9, proc.stderr[-2000:]
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".")} == before
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 1
    assert json.loads((tmp_path / RESULT_FILE).read_text()) == {"epoch": 1}
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in tmp_path.iterdir() if p.name not in before)


# --- concurrent runs ------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_runs_into_one_results_folder_at_once_lose_no_record(tmp_path, data_root):
    results = tmp_path / "results"
    env = {**os.environ, "MMBENCH_DATA": str(data_root)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "mmbench.cli", "run", "--model", "mopoe", "--dataset", "polymnist",
                          "--seed", str(seed), "--out", str(results / f"seed{seed}"), "--quiet",
                          *sets((*TINY, "train.epochs=1"))], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in (0, 1)
    ]
    outputs = [p.communicate(timeout=1200) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    records, problems = load_results(results)
    assert problems == []
    assert sorted((r.path, r.record["seed"]) for r in records) == [("seed0/result.json", 0), ("seed1/result.json", 1)]
