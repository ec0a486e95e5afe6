"""mmbench's MoPoE training step against a plain PyTorch rendering of the reference step, side by side.

    python benchmarks/step_vs_reference.py [--batch 256] [--rounds 8] [--steps 3]

The plain rendering is what thomassutter/MoPoE (commit 477a441, `BaseMMVae` with `joint_elbo`)
does for PolyMNIST, written with stock torch modules: one `EncoderImg` / `DecoderImg` per
modality in NCHW (`ConvNetworksImgCMNIST.py`), each subset's product of experts in a Python loop
with the N(0, I) expert in the full set (`poe_fusion`), the batch cut into one contiguous block per
subset (`mixture_component_selection`), `torch.distributions.Laplace(loc, 0.75).log_prob`, the
closed-form KL averaged over subsets, and torch.optim.Adam. mmbench's step is `model.loss` of the
registered `mopoe` with the training loop's fused Adam. Both start from the same weights and see
the same batch; the script checks that both give the same experts, subset posteriors, KL and
decoder locs. The rendering is lean: it leaves out the reference's per-step extras (per-modality
KL bookkeeping, the eps inside its product, logging), so the ratio is, if anything, in the
reference's favour.

The two steps alternate within each round, the first one alternating between rounds, so drifts of
a shared machine hit both alike; the ratio printed is the median over rounds of project/reference
throughput. Run it on an otherwise idle machine: torch's thread pool is oversubscribed otherwise.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from torch import nn
from torch.distributions import Laplace
from torch.nn import functional as F

from mmbench import DatasetSpec, ModalitySpec
from mmbench.api.registry import create_model
from mmbench.objectives import all_subsets, mean_product_kl, product_of_experts

LAPLACE_SCALE = 0.75


def reference_encoder(latent_dim: int) -> nn.ModuleDict:
    return nn.ModuleDict({
        "features": nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2048, latent_dim), nn.ReLU(),
        ),
        "mu": nn.Linear(latent_dim, latent_dim),
        "logvar": nn.Linear(latent_dim, latent_dim),
    })


def reference_decoder(latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(latent_dim, 2048), nn.ReLU(), nn.Unflatten(1, (128, 4, 4)),
        nn.ConvTranspose2d(128, 64, 3, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 3, 2, 1, output_padding=1),
    )


class ReferenceMoPoE(nn.Module):
    def __init__(self, num_modalities: int, latent_dim: int, beta: float):
        super().__init__()
        self.encoders = nn.ModuleList(reference_encoder(latent_dim) for _ in range(num_modalities))
        self.decoders = nn.ModuleList(reference_decoder(latent_dim) for _ in range(num_modalities))
        self.beta = beta
        self.subsets = [s for k in range(1, num_modalities + 1) for s in itertools.combinations(range(num_modalities), k)]

    def load_from(self, model: nn.Module) -> None:
        """Copy an mmbench MoPoE's weights (same shapes, NCHW copies of its channels_last tensors)."""
        for mine, theirs in zip(self.encoders, model.encoders):
            mine["features"].load_state_dict(theirs.features.state_dict())
            mine["mu"].load_state_dict(theirs.heads.mu.state_dict())
            mine["logvar"].load_state_dict(theirs.heads.logvar.state_dict())
        for mine, theirs in zip(self.decoders, model.decoders):
            mine.load_state_dict({k: v.contiguous() for k, v in theirs.net.state_dict().items()})

    def experts(self, xs: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for encoder, x in zip(self.encoders, xs):
            h = encoder["features"](x)
            out.append((encoder["mu"](h), encoder["logvar"](h)))
        return out

    def subset_posteriors(self, experts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[list, list, list]:
        """Each subset's product of experts (mu, logvar) and its KL to N(0, I), subset by subset."""
        mus, logvars, kls = [], [], []
        for subset in self.subsets:
            mu_s = [experts[m][0] for m in subset]
            logvar_s = [experts[m][1] for m in subset]
            if len(subset) == len(experts):  # poe_fusion adds the prior expert N(0, I)
                mu_s.append(torch.zeros_like(mu_s[0]))
                logvar_s.append(torch.zeros_like(logvar_s[0]))
            precision = torch.stack([torch.exp(-lv) for lv in logvar_s])
            mu = (torch.stack(mu_s) * precision).sum(0) / precision.sum(0)
            logvar = -torch.log(precision.sum(0))
            mus.append(mu)
            logvars.append(logvar)
            kls.append(-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1))
        return mus, logvars, kls

    def loss(self, xs: list[torch.Tensor]) -> torch.Tensor:
        mus, logvars, kls = self.subset_posteriors(self.experts(xs))
        # mixture_component_selection: floor(B/K) rows per subset in order, the rest to the last
        batch, size = xs[0].shape[0], xs[0].shape[0] // len(self.subsets)
        bounds = [k * size for k in range(len(self.subsets))] + [batch]
        mu = torch.cat([m[a:b] for m, a, b in zip(mus, bounds, bounds[1:])])
        logvar = torch.cat([lv[a:b] for lv, a, b in zip(logvars, bounds, bounds[1:])])
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        reconstruction = sum(Laplace(decoder(z), LAPLACE_SCALE).log_prob(x).sum((1, 2, 3)) for decoder, x in zip(self.decoders, xs))
        kl = torch.stack(kls).mean(0)
        return (-reconstruction + self.beta * kl).mean()


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution computed as one forward convolution and a pixel shuffle.

    Output pixel o = s*m + r of a stride-s transposed conv sums input pixels m + d for the kernel
    taps t = r + p - s*d; so each of the s*s output phases is an ordinary convolution of the
    input, and all of them together are one convolution with s*s*C_out channels whose kernel
    holds each phase's taps (zeros elsewhere). oneDNN's forward conv runs several times faster on
    CPU than its transposed conv, forward and backward, at the cost of the zero taps (the lever
    issue 15 proposed); `--layers` measures whether it pays. Parameters and state dict are
    nn.ConvTranspose2d's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        (s, s_w), (k, k_w), (p, p_w) = self.stride, self.kernel_size, self.padding
        if (s, k, p) != (s_w, k_w, p_w) or self.dilation != (1, 1) or self.groups != 1 or self.padding_mode != "zeros":
            raise ValueError("SubPixelConvTranspose2d needs square stride, kernel and padding, no dilation or groups")
        # taps[r][j] = the kernel tap phase r applies at window position j, or k (a zero) if none
        offsets = {(r, t): (r + p - t) // s for r in range(s) for t in range(k) if (r + p - t) % s == 0}
        self.low, high = min(offsets.values()), max(offsets.values())
        taps = torch.full((s, high - self.low + 1), k)
        for (r, t), d in offsets.items():
            taps[r, d - self.low] = t
        self.register_buffer("taps", taps, persistent=False)

    def phase_kernel(self) -> torch.Tensor:
        """(s*s*C_out, C_in, K, K): the forward-conv kernel of every output phase, channel-major
        as pixel_shuffle expects."""
        s, width = self.taps.shape
        padded = F.pad(self.weight, (0, 1, 0, 1))  # index k reads a zero
        kernel = padded[:, :, self.taps[:, :, None, None], self.taps[None, None, :, :]]  # (C_in, C_out, r, jy, q, jx)
        return kernel.permute(1, 2, 4, 0, 3, 5).reshape(-1, self.in_channels, width, width)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        s, width = self.taps.shape
        size = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2, self.dilation)
        out_h, out_w = ((n - 1) * s - 2 * self.padding[0] + self.kernel_size[0] + o for n, o in zip(x.shape[-2:], size))
        m_h, m_w = -(-out_h // s), -(-out_w // s)  # phase rows and columns needed
        x = F.pad(x, (-self.low, m_w - 1 + self.low + width - x.shape[-1], -self.low, m_h - 1 + self.low + width - x.shape[-2]))
        bias = None if self.bias is None else self.bias.repeat_interleave(s * s)
        return F.pixel_shuffle(F.conv2d(x, self.phase_kernel(), bias), s)[..., :out_h, :out_w]


def layer_times(batch: int, rounds: int) -> list[tuple[str, float, float]]:
    """(layer, ms of nn.ConvTranspose2d, ms of its sub-pixel form): forward + backward of each
    PolyMNIST decoder layer on the same weights and input, channels_last as mmbench runs them,
    interleaved; the outputs and gradients are checked equal first."""
    layers = (("convT 128->64, 4->7", (128, 64, 3, 2, 1, 0), 4), ("convT 64->32, 7->14", (64, 32, 3, 2, 1, 1), 7),
              ("convT 32->3, 14->28", (32, 3, 3, 2, 1, 1), 14))
    out = []
    for label, (cin, cout, k, stride, pad, extra), size in layers:
        plain = nn.ConvTranspose2d(cin, cout, k, stride, pad, output_padding=extra).to(memory_format=torch.channels_last)
        sub = SubPixelConvTranspose2d(cin, cout, k, stride, pad, output_padding=extra).to(memory_format=torch.channels_last)
        sub.load_state_dict(plain.state_dict())
        x = torch.randn(batch, cin, size, size).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        torch.testing.assert_close(sub(x), plain(x), rtol=1e-5, atol=1e-4)
        grads = [torch.autograd.grad(layer(x).square().sum(), [x, layer.weight, layer.bias]) for layer in (plain, sub)]
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-3)
        times: dict[nn.Module, list[float]] = {plain: [], sub: []}
        for _ in range(rounds):
            for layer in times:
                began = time.perf_counter()
                layer(x).sum().backward()
                times[layer].append(1000 * (time.perf_counter() - began))
        out.append((label, statistics.median(times[plain]), statistics.median(times[sub])))
    return out


def check_same_networks(model, reference: ReferenceMoPoE, xs: list[torch.Tensor]) -> float:
    """Largest difference between the two renderings on the same input: experts, every subset's
    posterior (prior expert in the full set), the subset-averaged KL, and the decoder locs."""
    with torch.no_grad():
        mu, logvar = model.experts(xs)
        experts = reference.experts(xs)
        diffs = [max((mu[m] - r_mu).abs().max().item(), (logvar[m] - r_lv).abs().max().item())
                 for m, (r_mu, r_lv) in enumerate(experts)]
        subsets = all_subsets(len(xs))
        s_mu, s_logvar = product_of_experts(mu, logvar, subsets, prior_expert=subsets.all(1))
        r_mus, r_logvars, r_kls = reference.subset_posteriors(experts)
        diffs += [(s_mu - torch.stack(r_mus)).abs().max().item(), (s_logvar - torch.stack(r_logvars)).abs().max().item()]
        kl = mean_product_kl(mu, logvar, subsets, subsets.all(1))
        diffs.append(((kl - torch.stack(r_kls).mean(0)).abs() / kl.abs()).max().item())
        z = mu[0]
        diffs += [(theirs.net(z) - mine(z)).abs().max().item() for theirs, mine in zip(model.decoders, reference.decoders)]
    return max(diffs)


def stepper(loss, optimizer):
    def step():
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--modalities", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps of each side per round")
    parser.add_argument("--layers", action="store_true", help="also time each decoder convT against its sub-pixel form")
    args = parser.parse_args()

    spec = DatasetSpec("polymnist", tuple(ModalitySpec(f"m{k}", "image", (3, 28, 28)) for k in range(args.modalities)), 10)
    torch.manual_seed(0)
    model = create_model("mopoe", spec)
    reference = ReferenceMoPoE(args.modalities, model.latent_dim, model.beta)
    reference.load_from(model)
    xs = [torch.rand(args.batch, 3, 28, 28, generator=torch.Generator().manual_seed(m)) for m in range(args.modalities)]
    difference = check_same_networks(model, reference, xs)
    assert difference < 1e-4, f"the renderings differ by {difference}"

    steps = {
        "mmbench": stepper(lambda: model.loss(xs), torch.optim.Adam(model.parameters(), lr=5e-4, fused=True)),
        "reference": stepper(lambda: reference.loss(xs), torch.optim.Adam(reference.parameters(), lr=5e-4)),
    }
    for step in steps.values():  # warm-up: oneDNN primitive caches, allocator
        step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(args.rounds):
        order = list(steps) if round_ % 2 == 0 else list(reversed(steps))
        for name in order:
            began = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            rates[name].append(args.steps * args.batch / (time.perf_counter() - began))
    ratios = [a / b for a, b in zip(rates["mmbench"], rates["reference"])]
    print(f"MoPoE training step, batch {args.batch}, {args.modalities} modalities, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; networks agree to {difference:.1e}")
    for name, values in rates.items():
        print(f"  {name:<10} {statistics.median(values):8.1f} samples/s (median of {args.rounds} rounds)")
    print(f"  mmbench/reference = {statistics.median(ratios):.2f} (median over rounds; range {min(ratios):.2f}-{max(ratios):.2f})")
    if args.layers:
        print(f"Decoder layers, forward + backward at batch {args.batch}, channels_last (median ms):")
        for label, plain, sub in layer_times(args.batch, 5 * args.rounds):
            print(f"  {label:<22} ConvTranspose2d {plain:6.2f}   sub-pixel conv {sub:6.2f}   ({plain / sub:.2f}x)")


if __name__ == "__main__":
    main()
