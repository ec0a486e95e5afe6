"""`mmbench check-plugin`: a model checked against the API contract on tiny synthetic data.

A model that breaks the contract usually fails hours into a GPU run (a shape mismatch in the
evaluator, a NaN at epoch 40, a checkpoint that does not load on resume). These checks exercise
every method the harness calls, in seconds on a CPU, and say which one is wrong and why.
A model that cannot be imported is a one-line error, not a checklist; a factory that raises or
returns something other than a MultimodalVAE fails the first check and skips the rest.

Longer than most modules: one short check per method of the contract, in the order the harness
calls them.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.distributions import Distribution

from mmbench.api.model import MultimodalVAE
from mmbench.api.registry import MODELS, create_model, model_options
from mmbench.data.base import DatasetSpec, ModalitySpec
from mmbench.errors import MMBenchError
from mmbench.objectives.subsets import all_subsets

BATCH = 4
DECODE_BATCH = 5  # differs from BATCH so a decoder that hard-codes the batch size is caught
IMAGE_SHAPE = (3, 28, 28)
TINY_LATENT_DIM = 8
TRAIN_STEPS = 10
TRAIN_LR = 1e-3


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""


class CheckFailed(Exception):
    """A contract violation; the message is the reason shown on the checklist."""


def tiny_spec(num_modalities: int = 3) -> DatasetSpec:
    """PolyMNIST-shaped image modalities, so the standard networks apply."""
    modalities = tuple(ModalitySpec(f"m{m}", "image", IMAGE_SHAPE) for m in range(num_modalities))
    return DatasetSpec("plugin-check", modalities, num_classes=10)


def check_model(name: str, options: dict[str, Any] | None = None, num_modalities: int = 3, seed: int = 0,
                device: str = "cpu") -> list[CheckResult]:
    """Run every check on model `name`; raises MMBenchError if it cannot be imported or an option is unknown."""
    MODELS.get(name)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MMBenchError(f"device {device!r} asked for, but CUDA is not available here")
    known = model_options(name)
    unknown = set(options or {}) - set(known)
    if unknown:
        raise MMBenchError(f"model {name!r} has no option(s) {', '.join(sorted(unknown))} (options: {', '.join(sorted(known))})")
    tiny = {"latent_dim": TINY_LATENT_DIM} if "latent_dim" in known else {}
    return _Checker(name, {**tiny, **(options or {})}, tiny_spec(num_modalities), seed, torch.device(device)).run()


class _Checker:
    """Holds the tiny batch and the model the first check builds, which the shape checks use; the
    determinism, round-trip and training checks build fresh ones."""

    def __init__(self, name: str, options: dict[str, Any], spec: DatasetSpec, seed: int, device: torch.device):
        self.name, self.options, self.spec, self.seed, self.device = name, options, spec, seed, device
        generator = torch.Generator().manual_seed(seed)
        self.xs = [torch.rand(BATCH, *m.shape, generator=generator).to(device) for m in spec.modalities]
        self.decode_xs = [torch.rand(DECODE_BATCH, *m.shape, generator=generator).to(device) for m in spec.modalities]
        self.subsets = all_subsets(spec.num_modalities).to(device)
        self.model: MultimodalVAE | None = None

    def run(self) -> list[CheckResult]:
        checks: list[tuple[str, Callable[[], str]]] = [
            ("factory builds a MultimodalVAE", self.builds),
            (f"objective returns ({BATCH},) finite values", self.objective),
            ("loss backpropagates to the parameters", self.gradients),
            ("encode: batch (K, B), event (latent_dim,) for all subsets", self.encode),
            ("encode with missing modalities (None outside the subsets)", self.encode_missing),
            ("decode: a Distribution, log_prob (N,), mean of the modality's shape", self.decode),
            ("generate: (K, B, ...) samples per target modality", self.generate),
            ("sample: (n, ...) unconditional samples per modality", self.sample),
            ("deterministic under a fixed seed", self.deterministic),
            ("state_dict round trip gives the same outputs", self.round_trip),
            (f"{TRAIN_STEPS} optimizer steps reduce the loss", self.trains),
        ]
        results = []
        for title, check in checks:
            if self.model is None and results:
                results.append(CheckResult(title, False, "skipped: the model did not build"))
                continue
            try:
                results.append(CheckResult(title, True, check()))
            except CheckFailed as exc:
                results.append(CheckResult(title, False, str(exc)))
            except Exception as exc:  # any crash of plugin code is a failed check, with its reason
                results.append(CheckResult(title, False, _one_line(exc)))
        return results

    def build(self, seed: int) -> MultimodalVAE:
        torch.manual_seed(seed)
        return create_model(self.name, self.spec, **self.options).to(self.device)

    def builds(self) -> str:
        try:
            model = self.build(self.seed)
        except MMBenchError as exc:
            raise CheckFailed(str(exc)) from None
        latent_dim = getattr(model, "latent_dim", None)
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise CheckFailed(f"latent_dim must be a positive int, not {latent_dim!r}")
        if model.num_modalities != self.spec.num_modalities:
            raise CheckFailed(f"num_modalities is {model.num_modalities}, the spec has {self.spec.num_modalities}")
        self.model = model
        parameters = sum(p.numel() for p in model.parameters())
        return f"{type(model).__name__}, latent_dim {latent_dim}, {parameters:,} parameters"

    def objective(self) -> str:
        self.model.train()
        torch.manual_seed(self.seed)
        value = self.model.objective(self.xs)
        _expect_tensor(value, (BATCH,), "objective")
        return f"mean {value.mean().item():.4g}"

    def gradients(self) -> str:
        model = self.model
        model.train()
        model.zero_grad()
        torch.manual_seed(self.seed)
        loss = model.loss(self.xs)
        _expect_tensor(loss, (), "loss")
        if not loss.requires_grad:
            raise CheckFailed("the loss does not require grad (is the objective detached, or computed under no_grad?)")
        loss.backward()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            raise CheckFailed("the model has no trainable parameters (modules kept in a plain list or dict?)")
        bad = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad:
            raise CheckFailed(f"non-finite gradients in {_names(bad)}")
        reached = [n for n, p in params if p.grad is not None and bool(p.grad.ne(0).any())]
        if not reached:
            raise CheckFailed("no parameter receives a nonzero gradient")
        missed = [n for n, _ in params if n not in set(reached)]
        detail = f"{len(reached)}/{len(params)} parameter tensors receive gradients"
        return detail + (f"; none reach {_names(missed)}" if missed else "")

    def encode(self) -> str:
        self.model.eval()
        with torch.no_grad():
            self._expect_posterior(self.model.encode(self.xs, self.subsets), len(self.subsets), "all modalities present")
        return f"K={len(self.subsets)} subsets, B={BATCH}"

    def encode_missing(self) -> str:
        self.model.eval()
        cases = 0
        with torch.no_grad():
            for m in range(self.spec.num_modalities):
                rows = ~self.subsets[:, m]
                without = [None if i == m else x for i, x in enumerate(self.xs)]
                self._expect_posterior(self.model.encode(without, self.subsets[rows]), int(rows.sum()), f"x{m} None")
                only = [x if i == m else None for i, x in enumerate(self.xs)]
                unit = torch.zeros(1, self.spec.num_modalities, dtype=torch.bool, device=self.device)
                unit[0, m] = True
                self._expect_posterior(self.model.encode(only, unit), 1, f"only x{m}")
                cases += 2
        return f"{cases} cases (each modality left out, each modality alone)"

    def _expect_posterior(self, q: Any, k: int, case: str) -> None:
        if not isinstance(q, Distribution):
            raise CheckFailed(f"{case}: encode returned {type(q).__name__}, not a torch Distribution")
        latent_dim = self.model.latent_dim
        if tuple(q.batch_shape) != (k, BATCH) or tuple(q.event_shape) != (latent_dim,):
            raise CheckFailed(f"{case}: batch shape {tuple(q.batch_shape)}, event shape {tuple(q.event_shape)}; "
                              f"expected ({k}, {BATCH}) and ({latent_dim},)")
        _expect_tensor(q.sample(), (k, BATCH, latent_dim), f"{case}: encode(...).sample()")

    def decode(self) -> str:
        self.model.eval()
        with torch.no_grad():
            z = torch.randn(DECODE_BATCH, self.model.latent_dim, device=self.device)
            for m, modality in enumerate(self.spec.modalities):
                p = self.model.decode(z, m)
                if not isinstance(p, Distribution):
                    raise CheckFailed(f"decode(z, {m}) returned {type(p).__name__}, not a torch Distribution")
                _expect_tensor(p.mean, (DECODE_BATCH, *modality.shape), f"decode(z, {m}).mean")
                _expect_tensor(p.log_prob(self.decode_xs[m]), (DECODE_BATCH,), f"decode(z, {m}).log_prob(x)")
        return f"N={DECODE_BATCH} latents, {self.spec.num_modalities} modalities"

    def generate(self) -> str:
        self.model.eval()
        with torch.no_grad():
            out = self.model.generate(self.xs, self.subsets)
            self._expect_modalities(out, len(self.subsets), "generate(xs, subsets)")
            for m in range(self.spec.num_modalities):  # the way the coherence evaluator calls it
                rows = ~self.subsets[:, m]
                without = [None if i == m else x for i, x in enumerate(self.xs)]
                x = self.model.generate(without, self.subsets[rows], targets=[m])[m]
                _expect_tensor(x, (int(rows.sum()), BATCH, *self.spec.modalities[m].shape), f"generate(..., targets=[{m}])[{m}]")
        return "all subsets, and each target given the others"

    def sample(self) -> str:
        self.model.eval()
        with torch.no_grad():
            self._expect_modalities(self.model.sample(DECODE_BATCH), None, f"sample({DECODE_BATCH})")
        return f"n={DECODE_BATCH}"

    def _expect_modalities(self, out: Any, k: int | None, call: str) -> None:
        if not isinstance(out, (list, tuple)) or len(out) != self.spec.num_modalities:
            raise CheckFailed(f"{call} must return a list of {self.spec.num_modalities} tensors, not {_describe(out)}")
        lead = (DECODE_BATCH,) if k is None else (k, BATCH)
        for m, (x, modality) in enumerate(zip(out, self.spec.modalities)):
            _expect_tensor(x, (*lead, *modality.shape), f"{call}[{m}]")

    def deterministic(self) -> str:
        a, b = self.build(self.seed), self.build(self.seed)
        for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
            if not torch.equal(pa, pb):
                raise CheckFailed(f"two builds under torch.manual_seed({self.seed}) differ in {name}")
        a.train()
        b.train()
        outputs = []
        for model in (a, a, b):
            torch.manual_seed(self.seed + 1)
            outputs.append(model.objective(self.xs).detach())
        if not _close(outputs[0], outputs[1]):
            raise CheckFailed(f"objective differs between two calls after torch.manual_seed (max |diff| {_diff(outputs[0], outputs[1]):.3g})")
        if not _close(outputs[0], outputs[2]):
            raise CheckFailed(f"objective differs between two builds with the same seed (max |diff| {_diff(outputs[0], outputs[2]):.3g})")
        return "same parameters and objective for the same seed"

    def round_trip(self) -> str:
        source, target = self.build(self.seed), self.build(self.seed + 1)
        buffer = io.BytesIO()
        torch.save(source.state_dict(), buffer)
        buffer.seek(0)
        try:  # as training checkpoints are loaded: tensors only, strict keys
            target.load_state_dict(torch.load(buffer, map_location=self.device, weights_only=True))
        except Exception as exc:
            raise CheckFailed(f"load_state_dict failed: {_one_line(exc)}") from None
        z = torch.randn(DECODE_BATCH, source.latent_dim, device=self.device)
        compared = {}
        for model in (source, target):
            model.eval()
            with torch.no_grad():
                torch.manual_seed(self.seed)
                outputs = {"encode(...).sample()": model.encode(self.xs, self.subsets).sample(),
                           "objective": model.objective(self.xs)}
                outputs.update({f"decode(z, {m}).mean": model.decode(z, m).mean for m in range(self.spec.num_modalities)})
            for key, value in outputs.items():
                compared.setdefault(key, []).append(value)
        for key, (before, after) in compared.items():
            if not _close(before, after):
                raise CheckFailed(f"{key} changes after loading the state_dict into a fresh model "
                                  f"(max |diff| {_diff(before, after):.3g}); is some state outside parameters and buffers?")
        return f"{len(source.state_dict())} entries"

    def trains(self) -> str:
        model = self.build(self.seed)
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=TRAIN_LR)
        before = self._mean_loss(model)
        for step in range(TRAIN_STEPS):
            torch.manual_seed(self.seed + 100 + step)
            optimizer.zero_grad()
            loss = model.loss(self.xs)
            if not torch.isfinite(loss):
                raise CheckFailed(f"loss became {loss.item()} at step {step + 1}")
            loss.backward()
            optimizer.step()
        after = self._mean_loss(model)
        if not after < before:
            raise CheckFailed(f"loss went from {before:.4g} to {after:.4g} (Adam, lr {TRAIN_LR}, one fixed batch)")
        return f"{before:.4g} -> {after:.4g}"

    def _mean_loss(self, model: MultimodalVAE, repeats: int = 3) -> float:
        """The loss averaged over a few fixed seeds, so a stochastic objective compares fairly."""
        values = []
        with torch.no_grad():
            for k in range(repeats):
                torch.manual_seed(self.seed + k)
                values.append(model.loss(self.xs).item())
        return sum(values) / repeats


def _expect_tensor(value: Any, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} is {_describe(value)}, not a tensor")
    if tuple(value.shape) != tuple(shape):
        raise CheckFailed(f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    finite = torch.isfinite(value) if value.is_floating_point() else torch.ones_like(value, dtype=torch.bool)
    if not finite.all():
        raise CheckFailed(f"{what} has {int((~finite).sum())} non-finite value(s) of {value.numel()}")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() if a.shape == b.shape else float("inf")


def _describe(value: Any) -> str:
    return f"a {type(value).__name__} of length {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__


def _names(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
