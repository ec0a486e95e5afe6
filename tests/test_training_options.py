"""Training options: bf16 autocast (`train.precision`) and torch.compile (`train.compile`)."""
from __future__ import annotations

import pytest
import torch

import mmbench.training.loop
from mmbench import DatasetSpec, ModalitySpec
from mmbench.data.base import MultimodalSplit
from mmbench.api.registry import create_model
from mmbench.objectives.subsets import all_subsets, mean_product_kl, product_of_experts, product_of_experts_per_point
from mmbench.training.loop import learning_rate, train

SPEC = DatasetSpec("polymnist", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(3)), 10)


def _split(n: int = 64) -> MultimodalSplit:
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g) for _ in range(3)]
    return MultimodalSplit(images, torch.randint(0, 10, (n,), generator=g))


def _train(tmp_path, name: str, model_name: str = "mopoe", **options):
    torch.manual_seed(0)
    model = create_model(model_name, SPEC, latent_dim=16)
    seen = []
    model.decoders[0].net[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    result = train(model, _split(), epochs=2, batch_size=32, lr=1e-3, seed=0, run_dir=tmp_path / name,
                   device=torch.device("cpu"), progress=False, **options)
    return model, result, set(seen)


@pytest.mark.parametrize("model_name", ["unimodal", "mvae", "mmvae", "mopoe"])
def test_bf16_autocast_runs_the_networks_in_bf16_and_keeps_fp32_state(tmp_path, model_name):
    _, fp32, fp32_dtypes = _train(tmp_path, "fp32", model_name)
    model, bf16, bf16_dtypes = _train(tmp_path, "bf16", model_name, precision="bf16")
    assert fp32_dtypes == {torch.float32} and bf16_dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for a, b in zip(fp32.history, bf16.history):  # same run up to bf16 rounding
        assert abs(a["loss"] - b["loss"]) < 0.01 * abs(a["loss"])


def test_subset_products_ignore_autocast():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 8, 4, generator=g), torch.randn(3, 8, 4, generator=g)
    subsets = all_subsets(3)
    masks = subsets[torch.randint(len(subsets), (8,), generator=g)]
    expected = (product_of_experts(mu, logvar, subsets), product_of_experts_per_point(mu, logvar, masks),
                mean_product_kl(mu, logvar, subsets))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        actual = (product_of_experts(mu.bfloat16(), logvar, subsets),
                  product_of_experts_per_point(mu, logvar, masks), mean_product_kl(mu, logvar, subsets))
    torch.testing.assert_close(actual[1:], expected[1:], rtol=0, atol=0)
    torch.testing.assert_close(actual[0], expected[0], rtol=1e-2, atol=1e-2)  # mu itself was rounded to bf16
    assert actual[0][0].dtype == torch.float32


def test_compile_option_trains_through_the_compiled_loss(tmp_path, monkeypatch):
    compiled, calls = [], []

    def fake_compile(fn):
        compiled.append(fn)

        def wrapper(xs):
            calls.append(len(xs[0]))
            return fn(xs)

        return wrapper

    monkeypatch.setattr(mmbench.training.loop.torch, "compile", fake_compile)
    model, result, _ = _train(tmp_path, "compiled", compile=True)
    assert compiled == [model.loss] and calls == [32, 32, 32, 32]
    _, eager, _ = _train(tmp_path, "eager")
    assert result.history == eager.history


def test_warmup_ramps_the_learning_rate_and_epoch_hooks_join_the_history(tmp_path):
    """With warm-up the first steps move the weights less (lr/N, 2 lr/N, ...); after it, training
    runs at the full rate. An on_epoch dict lands in that epoch's history row."""
    torch.manual_seed(0)  # as _train does: the same initial weights
    before = torch.cat([p.detach().flatten() for p in create_model("mopoe", SPEC, latent_dim=16).parameters()])
    moved = {}
    for warmup in (0, 1000):
        model, result, _ = _train(tmp_path, f"warmup{warmup}", warmup_steps=warmup, on_epoch=lambda e: {"marker": e})
        moved[warmup] = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).abs().sum().item()
        assert [h["marker"] for h in result.history] == [1, 2] and [h["step"] for h in result.history] == [2, 4]
    assert moved[1000] < 0.1 * moved[0]


def test_learning_rate_warms_up_holds_then_decays_linearly():
    # 10 steps, 2 of warm-up, decay over the last 4: by hand
    rates = [learning_rate(step, 1.0, 2, 6, 10) for step in range(10)]
    assert rates == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25])
    # 6 steps, 4 of warm-up, decay over the last 4: the overlap takes both factors
    assert [learning_rate(step, 1.0, 4, 2, 6) for step in range(6)] == pytest.approx([0.25, 0.5, 0.75, 0.75, 0.5, 0.25])


def test_cooldown_epochs_anneal_the_end_of_training(tmp_path):
    """Decaying over both epochs moves the weights less than a constant rate, but still moves them;
    a cooldown longer than the run decays the whole run, like one as long as the run."""
    torch.manual_seed(0)
    before = torch.cat([p.detach().flatten() for p in create_model("mopoe", SPEC, latent_dim=16).parameters()])
    moved = {}
    for cooldown in (0, 2, 20):
        model, _, _ = _train(tmp_path, f"cooldown{cooldown}", cooldown_epochs=cooldown)
        moved[cooldown] = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).abs().sum().item()
    assert 0 < moved[2] < 0.9 * moved[0]
    assert moved[20] == moved[2]


def test_amsgrad_trains_with_the_running_maximum_of_the_second_moments(tmp_path):
    """`train.amsgrad` (Shi et al.'s optimizer) reaches the optimizer: its checkpoint holds the
    running maximum of the second moments (plain Adam's has none)."""
    from mmbench.training.checkpoint import load_checkpoint

    _train(tmp_path, "adam")
    _train(tmp_path, "amsgrad", amsgrad=True)
    state = load_checkpoint(tmp_path / "amsgrad" / "checkpoint.pt")["optimizer"]["state"].values()
    assert state and all((s["max_exp_avg_sq"] >= s["exp_avg_sq"]).all() for s in state)
    assert "max_exp_avg_sq" not in next(iter(load_checkpoint(tmp_path / "adam" / "checkpoint.pt")["optimizer"]["state"].values()))


def test_mmvae_as_shi_et_al_published_it_trains(tmp_path):
    """Laplace experts, the learnt Laplace prior and DReG: the prior's scales move with training,
    and unconditional samples come from it."""
    torch.manual_seed(0)
    model = create_model("mmvae", SPEC, latent_dim=16, objective="dreg", k=3, posterior="laplace", learn_prior=True)
    before = model.prior().base_dist.scale.detach().clone()
    train(model, _split(), epochs=1, batch_size=32, lr=1e-2, seed=0, run_dir=tmp_path / "shi",
          device=torch.device("cpu"), progress=False, amsgrad=True)
    prior = model.prior()
    assert isinstance(prior.base_dist, torch.distributions.Laplace) and not torch.equal(prior.base_dist.scale, before)
    assert model.sample(2)[0].shape == (2, 3, 28, 28)
