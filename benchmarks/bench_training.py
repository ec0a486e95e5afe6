"""Training, generation and data-path throughput on PolyMNIST-shaped data (CPU), with FLOP counts.

Run: python -m pytest benchmarks/bench_training.py --benchmark-only -s
(named bench_*.py so the default test run, which collects tests/, never picks it up; `-s` shows
the summary table printed when the module finishes). BENCH_ROUNDS sets the timed rounds per
benchmark (default 5, after one warm-up round). With --benchmark-disable every benchmark runs
once as a smoke test of its correctness checks and no table is printed.

Measured, on random data with fixed seeds (5 modalities of 3x28x28 float images in [0, 1]):
- the training step (forward, backward, Adam) of every baseline at batch 256, default options;
- the MoPoE step at M = 2, 3, 4, 5, 8 modalities, against a reference-style step on the same
  networks that loops over the 2^M - 1 subsets and uses torch.distributions likelihoods;
- optionally, the MoPoE step under torch.compile, and the MoPoE step under bf16 autocast;
- conditional generation from all 31 subsets: one `generate` call against a per-subset loop;
- batching from in-memory uint8 tensors against per-item PNG decoding;
- FLOPs per sample of each step (FlopCounterMode) and the share of the fp32 matmul throughput
  it reaches, the matmul (best of 3) measured right after each row: on a shared VM the cores'
  speed drifts during a run (a 2048^3 matmul measured 192-312 GFLOP/s across runs), so one peak
  taken at the start would misstate the later rows;
- forward and backward of each conv and linear layer of one modality's PolyMNIST encoder and
  decoder alone: the share of peak its kernel reaches caps what a step built from them can reach.

BENCH_DEVICE=cuda runs the training steps (every baseline, MoPoE over M, bf16, compiled) and the
matmul peak on the GPU, each timed round ending in a device synchronize; the layer, generation
and data benchmarks stay on CPU, so select the GPU ones with
`-k "matmul or training_step or mopoe_step or bf16 or compiled"`.

Threads are torch's default (set OMP_NUM_THREADS to change them). Time on an otherwise idle
machine: with other jobs on the cores, torch's thread pool is oversubscribed and small ops (the
in-memory batch) slow down by an order of magnitude or more.
"""
from __future__ import annotations

import functools
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch
from PIL import Image
from tabulate import tabulate
from torch import nn
from torch.distributions import Independent, Laplace
from torch.utils.data import default_collate
from torch.utils.flop_counter import FlopCounterMode

from mmbench_baselines.mopoe import MoPoE
from mmbench import DatasetSpec, ModalitySpec, MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.nn import build_decoder, build_encoder
from mmbench.api.registry import create_model
from mmbench.objectives.subsets import all_subsets

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
DEVICE = torch.device(os.environ.get("BENCH_DEVICE", "cpu"))
LAYER_ROUNDS = 10 * ROUNDS  # a layer takes milliseconds; more rounds steady its figure
BATCH = 256
MODALITIES = 5
BASELINES = ("unimodal", "mvae", "mmvae", "mopoe", "mmvaeplus")
MOPOE_SIZES = (2, 3, 4, 5, 8)
SCAN = tuple(m for m in MOPOE_SIZES if m != MODALITIES)  # M = 5 is the mopoe case of test_training_step
COHERENCE_SAMPLES = 250
DATA_TUPLES = 2 * BATCH  # a batch is a random half of the stored tuples
MATMUL_SIZE = 2048
MOPOE_FLOPS = 212e6  # the estimate; FlopCounterMode counts 220.6 MFLOP at default options
COMPILE_BUDGET_S = 120.0
PEAK = f"matmul {MATMUL_SIZE}^3 fp32"


@dataclass
class Row:
    """One benchmark's result: `rate` items/s (None when timing is disabled), `flops` per item,
    `reference` the row its ratio is taken against, `peak` the matmul rate its share is of."""

    rate: float | None
    unit: str
    flops: float | None = None
    reference: str | None = None
    peak: float | None = None  # matmul GFLOP/s measured right after this row


@dataclass
class Results:
    """Rows collected over the module, printed as one table when it ends."""

    rows: dict[str, Row] = field(default_factory=dict)

    def table(self) -> str | None:
        """The summary table, or None when no benchmark was timed."""
        lines = []
        for name, row in {**self.rows, **self.layer_sum()}.items():
            if row.rate is None:
                continue
            share = row.rate * row.flops / (row.peak * 1e9) if row.flops and row.peak else None
            reference = self.rows.get(row.reference) if row.reference else None
            ratio = row.rate / reference.rate if reference is not None and reference.rate else None
            lines.append([
                name,
                f"{row.rate:,.1f}",
                row.unit,
                f"{row.flops / 1e6:.1f}" if row.flops else "",
                f"{share:.1%}" if share is not None else "",
                f"{row.peak:.0f}" if share is not None else "",
                f"{ratio:.2f}x" if ratio is not None else "",
                row.reference if ratio is not None else "",
            ])
        if not lines:
            return None
        headers = ["benchmark", "throughput", "unit", "MFLOP/item", "share of matmul peak", "peak GFLOP/s", "ratio", "vs"]
        where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
        title = f"PolyMNIST-shaped benchmarks, batch {BATCH}, {where}"
        body = tabulate(lines, headers=headers, colalign=("left",) + ("right",) * 7, disable_numparse=True)
        return f"{title}\n{body}"

    def layer_sum(self) -> dict[str, Row]:
        """The layers of all M modalities run back to back: the throughput a training step would
        reach if its kernels were all it ran (no activations, likelihood, KL or optimizer)."""
        layers = [row for name, row in self.rows.items() if name.startswith("layer ") and row.rate]
        if len(layers) < len(LAYERS):
            return {}
        seconds = MODALITIES * sum(1 / row.rate for row in layers)
        flops = MODALITIES * sum(r.flops for r in layers)
        peak = sum(r.peak / r.rate for r in layers) / sum(1 / r.rate for r in layers)  # time-weighted
        return {f"layers of a step (sum, M={MODALITIES})": Row(1 / seconds, "samples/s", flops, peak=peak)}


@pytest.fixture(scope="module")
def results() -> Iterator[Results]:
    collected = Results()
    yield collected
    table = collected.table()
    if table is not None:
        print("\n" + table)


def synchronized(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` followed by a wait for the GPU, so a timed round holds the kernels it launched."""
    if DEVICE.type != "cuda":
        return fn

    def call() -> object:
        out = fn()
        torch.cuda.synchronize(DEVICE)
        return out

    return call


def measure(benchmark, results: Results, name: str, fn: Callable[[], object], items: float, unit: str,
            flops: float | None = None, reference: str | None = None, rounds: int = ROUNDS) -> object:
    """Time `fn` (one call per round) and record items/s; returns fn's last result."""
    out = benchmark.pedantic(synchronized(fn), rounds=rounds, warmup_rounds=1)
    rate = items / benchmark.stats.stats.mean if benchmark.stats is not None else None
    peak = matmul_gflops() if flops and rate is not None else None
    benchmark.extra_info.update(items_per_s=rate, flops_per_item=flops, matmul_gflops=peak, threads=torch.get_num_threads())
    results.rows[name] = Row(rate, unit, flops, reference, peak)
    return out


@functools.cache
def _matmul_operands() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=g).to(DEVICE) for _ in range(2))
    return a, b, torch.empty(MATMUL_SIZE, MATMUL_SIZE, device=DEVICE)


def matmul_gflops(rounds: int = 3) -> float:
    """The best of `rounds` fp32 2048^3 matmuls in GFLOP/s: the peak a row's share is taken of,
    measured right after the row because this machine's speed drifts during a run."""
    a, b, c = _matmul_operands()
    matmul = synchronized(partial(torch.mm, a, b, out=c))
    matmul()  # the first GPU matmul also loads its kernel
    best = math.inf
    for _ in range(rounds):
        began = time.perf_counter()
        matmul()
        best = min(best, time.perf_counter() - began)
    return 2 * MATMUL_SIZE**3 / best / 1e9


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (forward and backward ops alike) as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def polymnist_spec(num_modalities: int) -> DatasetSpec:
    modalities = tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(num_modalities))
    return DatasetSpec("polymnist", modalities, 10)


def random_images(num_modalities: int, n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 3, 28, 28, generator=g).to(DEVICE) for _ in range(num_modalities)]


def build_model(name: str, num_modalities: int) -> MultimodalVAE:
    torch.manual_seed(0)
    return create_model(name, polymnist_spec(num_modalities)).to(DEVICE)


def make_step(model: MultimodalVAE, loss_fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """One training step as mmbench.training.loop runs it: loss, backward, fused Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step() -> torch.Tensor:
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def snapshot(model: MultimodalVAE) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def assert_trained(model: MultimodalVAE, before: list[torch.Tensor], loss: torch.Tensor) -> None:
    """The step reached every network: finite loss, finite gradients, every parameter updated."""
    assert torch.isfinite(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    for p, old in zip(params, before):
        assert p.grad is not None and torch.isfinite(p.grad).all()
        assert not torch.equal(p.detach(), old)


def benchmark_training(benchmark, results: Results, name: str, model: MultimodalVAE,
                       loss_fn: Callable[[], torch.Tensor], reference: str | None = None) -> float:
    """Benchmark one training step of `model` under `name`; returns its FLOPs per sample."""
    step = make_step(model, loss_fn)
    flops = count_flops(step) / BATCH
    before = snapshot(model)
    loss = measure(benchmark, results, name, step, BATCH, "samples/s", flops, reference)
    assert_trained(model, before, loss)
    return flops


def test_matmul_peak(benchmark, results: Results):
    """fp32 matmul throughput in GFLOP/s: the peak the training steps are measured against."""
    a, b, c = _matmul_operands()
    measure(benchmark, results, PEAK, partial(torch.mm, a, b, out=c), 2 * MATMUL_SIZE**3 / 1e9, "GFLOP/s")
    torch.testing.assert_close(c[:8].double().cpu(), (a[:8].double() @ b.double()).cpu(), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", BASELINES)
def test_training_step(benchmark, results: Results, name: str):
    model = build_model(name, MODALITIES)
    xs = random_images(MODALITIES, BATCH)
    reference = f"train mopoe-loop M={MODALITIES}" if name == "mopoe" else None
    flops = benchmark_training(benchmark, results, f"train {name} M={MODALITIES}", model, lambda: model.loss(xs),
                               reference)
    if name == "mopoe":
        assert abs(flops - MOPOE_FLOPS) < 0.1 * MOPOE_FLOPS


def describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"Linear {layer.in_features}->{layer.out_features}"
    return f"{type(layer).__name__} {layer.in_channels}->{layer.out_channels}"


def network_layers() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, layer, input shape) of every conv and linear layer of one PolyMNIST modality's
    standard encoder (features, then the mean and log-variance heads) and decoder, in order."""
    spec = polymnist_spec(1).modalities[0]
    torch.manual_seed(0)
    encoder, decoder = build_encoder(spec, 512), build_decoder(spec, 512)
    layers = []

    def walk(part: str, modules: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for module in modules:
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                layers.append((f"{part} {describe(module)}", module, tuple(x.shape[1:])))
            with torch.no_grad():
                x = module(x)
        return x

    features = walk("encoder", encoder.features, torch.zeros(1, *spec.shape))
    for role, head in (("mu", encoder.heads.mu), ("logvar", encoder.heads.logvar)):
        layers.append((f"encoder {describe(head)} {role} head", head, tuple(features.shape[1:])))
    walk("decoder", decoder.net, torch.zeros(1, 512))
    return layers


LAYERS = network_layers()


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[name for name, _, _ in LAYERS])
def test_layer_step(benchmark, results: Results, index: int):
    """Forward and backward (input and weight gradients) of one layer at batch 256."""
    name, layer, shape = LAYERS[index]
    x = torch.rand(BATCH, *shape, generator=torch.Generator().manual_seed(0))
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    if index > 0:  # the image needs no gradient, as in training; every other input (z included) does
        x.requires_grad_()

    def forward_backward() -> torch.Tensor:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out = layer(x)
        out.backward(torch.ones_like(out))
        return layer.weight.grad

    flops = count_flops(forward_backward) / BATCH
    grad = measure(benchmark, results, f"layer {name}", forward_backward, BATCH, "samples/s", flops,
                   rounds=LAYER_ROUNDS)
    assert torch.isfinite(grad).all() and (index == 0) == (x.grad is None)


@pytest.mark.parametrize("num_modalities", SCAN)
def test_mopoe_step(benchmark, results: Results, num_modalities: int):
    """MoPoE over 2^M - 1 subsets: the vectorized products of experts as M grows (255 at M=8)."""
    model = build_model("mopoe", num_modalities)
    xs = random_images(num_modalities, BATCH)
    benchmark_training(benchmark, results, f"train mopoe M={num_modalities}", model, lambda: model.loss(xs),
                       reference=f"train mopoe-loop M={num_modalities}")


def loop_mopoe_objective(model: MoPoE, xs: list[torch.Tensor]) -> torch.Tensor:
    """The MoPoE objective of baselines/mopoe.py written as reference implementations do.

    Each subset's product of experts is computed in a Python loop, the per-subset posteriors are
    stacked and the sampled component indexed per data point, and the likelihood goes through
    torch.distributions with its default argument validation (mmbench's decoders switch it off
    and sum the Laplace density directly). It draws the component and the reparameterization
    noise in the same order as mmbench, so under one seed both compute the same value.
    """
    experts = [encoder(x) for encoder, x in zip(model.encoders, xs)]
    mus, logvars, kls = [], [], []
    for size in range(1, len(xs) + 1):  # the order of mmbench.objectives.subsets.all_subsets
        for subset in itertools.combinations(range(len(xs)), size):
            mu_s, logvar_s = [experts[m][0] for m in subset], [experts[m][1] for m in subset]
            if size == len(xs):  # the full set's product includes the N(0, I) prior expert
                mu_s.append(torch.zeros_like(mu_s[0]))
                logvar_s.append(torch.zeros_like(logvar_s[0]))
            precision = 1.0 / torch.exp(torch.stack(logvar_s))
            total = precision.sum(0)
            mu = (precision * torch.stack(mu_s)).sum(0) / total
            logvar = -torch.log(total)
            mus.append(mu)
            logvars.append(logvar)
            kls.append(0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1))
    mu, logvar = torch.stack(mus), torch.stack(logvars)  # (K, B, D)
    batch = len(xs[0])
    component = torch.randint(len(mus), (batch,))
    rows = torch.arange(batch)
    mu_c, logvar_c = mu[component, rows], logvar[component, rows]
    z = mu_c + torch.exp(0.5 * logvar_c) * torch.randn_like(mu_c)
    reconstruction = sum(Independent(Laplace(decoder.net(z), decoder.scale), 3).log_prob(x)
                         for decoder, x in zip(model.decoders, xs))
    return reconstruction - model.beta * torch.stack(kls).mean(0)


@pytest.mark.parametrize("num_modalities", MOPOE_SIZES)
def test_mopoe_loop_step(benchmark, results: Results, num_modalities: int):
    """The reference-style MoPoE step, on the same networks and the same objective."""
    model = build_model("mopoe", num_modalities)
    xs = random_images(num_modalities, BATCH)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = model.objective(xs)
        torch.manual_seed(1)
        actual = loop_mopoe_objective(model, xs)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=0.0)
    benchmark_training(benchmark, results, f"train mopoe-loop M={num_modalities}", model,
                       lambda: -loop_mopoe_objective(model, xs).mean())


def test_mopoe_compiled_step(benchmark, results: Results):
    """The MoPoE step with the loss under torch.compile (inductor), if it compiles in time.

    fallback_random makes inductor draw random numbers as eager does, so the compiled loss can be
    checked against the eager one under the same seed."""
    model = build_model("mopoe", MODALITIES)
    xs = random_images(MODALITIES, BATCH)
    with torch._inductor.config.patch(fallback_random=True):
        with torch.no_grad():
            torch.manual_seed(1)
            expected = model.loss(xs)
        # counted eagerly: FlopCounterMode cannot see into compiled code
        flops = count_flops(lambda: model.loss(xs).backward()) / BATCH
        compiled = torch.compile(model.loss)
        step = make_step(model, lambda: compiled(xs))
        began = time.perf_counter()
        try:
            torch.manual_seed(1)
            first = step()  # compiles the forward and, at backward, the backward graph
        except Exception as exc:  # any compiler failure means: not available on this machine
            pytest.skip(f"torch.compile failed on this machine: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        seconds = time.perf_counter() - began
        if seconds > COMPILE_BUDGET_S:
            pytest.skip(f"torch.compile of the MoPoE step took {seconds:.0f} s (budget {COMPILE_BUDGET_S:.0f} s)")
        torch.testing.assert_close(first, expected, rtol=1e-4, atol=0.0)
        benchmark.extra_info["compile_s"] = seconds
        before = snapshot(model)
        loss = measure(benchmark, results, f"train mopoe M={MODALITIES} compiled", step, BATCH, "samples/s",
                       flops, reference=f"train mopoe M={MODALITIES}")
    assert_trained(model, before, loss)


def test_mopoe_bf16_step(benchmark, results: Results):
    """The MoPoE step under bf16 autocast (train.precision=bf16), a GPU option: on a CPU without
    bf16 units (no AVX512-BF16 / AMX) it is expected to run slower than fp32."""
    model = build_model("mopoe", MODALITIES)
    xs = random_images(MODALITIES, BATCH)

    def loss() -> torch.Tensor:
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
            return model.loss(xs).float()

    benchmark_training(benchmark, results, f"train mopoe M={MODALITIES} bf16 autocast", model, loss,
                       reference=f"train mopoe M={MODALITIES}")


def generate_per_subset(model: MultimodalVAE, xs: list[torch.Tensor], subsets: torch.Tensor) -> list[torch.Tensor]:
    """Conditional generation the loop way: one `generate` per subset, given only its modalities,
    each target decoded separately; returns the same (K, B, ...) tensors as one `generate` call."""
    per_subset = [
        model.generate([x if keep else None for x, keep in zip(xs, subset.tolist())], subset[None])
        for subset in subsets
    ]
    return [torch.cat(samples) for samples in zip(*per_subset)]


def test_coherence_generate(benchmark, results: Results):
    """Generation for coherence over all 31 subsets in one `generate` call (one decoder pass per
    target for all subsets together); throughput in conditioning test samples per second. The
    coherence classifiers are left out: they cost the same whichever way the samples are made."""
    model = build_model("mopoe", MODALITIES)
    xs = random_images(MODALITIES, COHERENCE_SAMPLES, seed=1)
    subsets = all_subsets(MODALITIES)
    generate = partial(model.generate, xs, subsets)
    flops = count_flops(generate) / COHERENCE_SAMPLES
    out = measure(benchmark, results, "coherence generate 31 subsets", generate, COHERENCE_SAMPLES,
                  "samples/s", flops, reference="coherence per-subset loop")
    assert [x.shape for x in out] == [(len(subsets), COHERENCE_SAMPLES, 3, 28, 28)] * MODALITIES


def test_coherence_per_subset_loop(benchmark, results: Results):
    """The same generation as a Python loop over the 31 subsets; checks both give the same samples
    under one seed (a single latent draw over all subsets equals the per-subset draws in order)."""
    model = build_model("mopoe", MODALITIES)
    xs = random_images(MODALITIES, COHERENCE_SAMPLES, seed=1)
    subsets = all_subsets(MODALITIES)
    torch.manual_seed(2)
    expected = model.generate(xs, subsets)
    torch.manual_seed(2)
    actual = generate_per_subset(model, xs, subsets)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)
    loop = partial(generate_per_subset, model, xs, subsets)
    flops = count_flops(loop) / COHERENCE_SAMPLES
    measure(benchmark, results, "coherence per-subset loop", loop, COHERENCE_SAMPLES, "samples/s", flops)


@pytest.fixture(scope="module")
def stored_tuples() -> list[torch.Tensor]:
    """DATA_TUPLES uint8 image tuples, one (N, 3, 28, 28) tensor per modality."""
    g = torch.Generator().manual_seed(3)
    return [torch.randint(0, 256, (DATA_TUPLES, 3, 28, 28), dtype=torch.uint8, generator=g)
            for _ in range(MODALITIES)]


@pytest.fixture(scope="module")
def png_root(stored_tuples: list[torch.Tensor], tmp_path_factory) -> Path:
    """The stored tuples as one PNG per image, m{k}/{i}.png, as the PolyMNIST release ships them."""
    root = tmp_path_factory.mktemp("polymnist_png")
    for m, images in enumerate(stored_tuples):
        (root / f"m{m}").mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / f"m{m}" / f"{i}.png")
    return root


class PngTuples(torch.utils.data.Dataset):
    """A typical torch Dataset over PNG files: decodes the M images of tuple i on every access."""

    def __init__(self, root: Path, num_modalities: int, size: int):
        self.paths = [[root / f"m{m}" / f"{i}.png" for m in range(num_modalities)] for i in range(size)]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        return [decode_png(path) for path in self.paths[i]]


def decode_png(path: Path) -> torch.Tensor:
    """One image as a float (3, 28, 28) tensor in [0, 1], as torchvision's ToTensor makes it."""
    with Image.open(path) as image:
        pixels = np.array(image.convert("RGB"))  # a writable copy, as torch wants
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255.0


def load_batch(dataset: PngTuples, index: torch.Tensor) -> list[torch.Tensor]:
    """A DataLoader's batch: per-item access, then the default collate (one stack per modality)."""
    return default_collate([dataset[i] for i in index.tolist()])


def batch_index() -> torch.Tensor:
    return torch.randperm(DATA_TUPLES, generator=torch.Generator().manual_seed(4))[:BATCH]


def test_batch_in_memory(benchmark, results: Results, stored_tuples: list[torch.Tensor]):
    """A batch as mmbench builds it: an index into uint8 tensors and one conversion per modality."""
    split, index = MultimodalSplit(stored_tuples), batch_index()
    xs = measure(benchmark, results, "data in-memory batch", partial(split.batch, index), BATCH, "tuples/s",
                 reference="data per-item PNG")
    assert all(x.dtype == torch.float32 and x.shape == (BATCH, 3, 28, 28) for x in xs)


def test_batch_per_item_png(benchmark, results: Results, stored_tuples: list[torch.Tensor], png_root: Path):
    """The same batch decoded per item from PNG files (in the page cache, so decoding, not disk);
    checks it equals the in-memory batch exactly (PNG is lossless)."""
    dataset, index = PngTuples(png_root, MODALITIES, DATA_TUPLES), batch_index()
    xs = measure(benchmark, results, "data per-item PNG", partial(load_batch, dataset, index), BATCH, "tuples/s")
    for x, e in zip(xs, MultimodalSplit(stored_tuples).batch(index)):
        assert torch.equal(x, e)
