"""The CUDA path: on a GPU, mmbench computes what it computes on the CPU, and a run repeats itself.

Skipped where no GPU is visible (CI has none); on a GPU machine: `python -m pytest tests/test_cuda.py`.
"""
import json

import pytest
import torch

from golden.reference_losses import CASES, setting
from mmbench.api.plugin_check import check_model
from mmbench.api.registry import list_models
from test_run_end_to_end import TINY, mmbench

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")
CPU_NOISE_CASES = sorted(set(CASES) - {"mmvae-shi", "mmvaeplus", "mmvaeplus-iwae"})
"""Golden cases whose every random draw goes through torch.randn_like or torch.randint (checked
on CPU: two torch seeds give one loss once both are patched); the other three also sample
through torch.distributions, whose draws differ between devices."""


@pytest.fixture
def cpu_noise(monkeypatch):
    """Draw every randn_like and randint from one seeded CPU generator and move it to the device,
    so a model sees the same noise on either device."""
    generator = torch.Generator().manual_seed(7)
    randint = torch.randint
    monkeypatch.setattr(torch, "randn_like", lambda t, **_: torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device))
    monkeypatch.setattr(torch, "randint", lambda *a, device=None, **k: randint(*a, generator=generator, **k).to(device or "cpu"))
    return lambda: generator.manual_seed(7)


@pytest.fixture(autouse=True)
def fp32():
    """Full-precision GPU arithmetic, as `mmbench run` sets it (no TF32)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("case", CPU_NOISE_CASES)
def test_the_loss_on_cuda_equals_the_loss_on_cpu(case, cpu_noise):
    """Same weights, batch and noise: the GPU loss is the CPU loss to float32 rounding (its sums
    run in another order), and its gradients reach every parameter."""
    options, _ = CASES[case]
    model, batch = setting(case.split("-")[0], **options)
    cpu_noise()
    with torch.no_grad():
        on_cpu = model.loss(batch).item()
    model.to(CUDA)
    cpu_noise()
    loss = model.loss([x.to(CUDA) for x in batch])
    loss.backward()
    assert loss.item() == pytest.approx(on_cpu, rel=1e-5)
    assert all(p.grad is not None and p.grad.device.type == CUDA.type and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", list_models())
def test_every_baseline_passes_the_plugin_check_on_cuda(name):
    """What `mmbench check-plugin --device cuda` runs: device-placement bugs (a tensor made on the
    CPU inside a model) show only here."""
    failed = [f"{r.name}: {r.detail}" for r in check_model(name, device="cuda") if not r.ok]
    assert not failed


def test_a_cuda_run_repeats_itself_and_resumes_to_the_same_scores(tmp_path):
    """One seed on one GPU: one set of scores, whether run twice or stopped and continued (the CUDA
    generator's state travels in the checkpoint)."""
    data_root = tmp_path / "data"
    args = ["run", "--model", "mopoe", "--dataset", "polymnist", "--device", "cuda", "--quiet", *TINY,
            "--set", "train.warmup_steps=0", "--set", "train.cooldown_epochs=0"]
    for name in ("first", "second"):
        mmbench(*args, "--set", "train.epochs=3", "--out", str(tmp_path / name), data_root=data_root)
    mmbench(*args, "--set", "train.epochs=2", "--out", str(tmp_path / "continued"), data_root=data_root)
    mmbench(*args, "--set", "train.epochs=3", "--out", str(tmp_path / "continued"), "--resume", data_root=data_root)
    first, second, continued = (json.loads((tmp_path / d / "result.json").read_text())
                                for d in ("first", "second", "continued"))
    assert first["provenance"]["device_type"] == "cuda"
    assert second["metrics"] == first["metrics"] and second["train_history"] == first["train_history"]
    assert continued["metrics"] == first["metrics"] and continued["train_history"] == first["train_history"]
