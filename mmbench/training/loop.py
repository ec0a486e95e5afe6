"""The training loop: seeded, checkpointed each epoch, resumable to the identical result.

The checkpoint holds the model, the optimizer, the epoch, and every random state the loop draws
from (the global torch generator for the model's sampling, a private one for shuffling), so a run
killed at any point and resumed from its last checkpoint replays exactly what it would have done.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from mmbench.api.model import MultimodalVAE
from mmbench.data.base import MultimodalSplit
from mmbench.errors import ConfigError, MMBenchError, TrainingError
from mmbench.training.checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT = "checkpoint.pt"
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


@dataclass
class TrainResult:
    epochs: int
    seconds: float
    history: list[dict] = field(default_factory=list)


def train(
    model: MultimodalVAE,
    data: MultimodalSplit,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    run_dir: Path,
    device: torch.device,
    resume: bool = False,
    progress: bool = True,
    compile: bool = False,
    precision: str = "fp32",
    warmup_steps: int = 0,
    cooldown_epochs: int = 0,
    amsgrad: bool = False,
    on_step: Callable[[int], None] | None = None,
    on_epoch: Callable[[int], dict] | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train `model` on `data`, checkpointing to run_dir/checkpoint.pt after every epoch.

    The learning rate follows `learning_rate` (warm-up, constant, then a linear decay over the
    last `cooldown_epochs`), a function of the step count alone, so a resumed run replays it exactly.
    `on_step(step)` is called after every optimizer step with the number of steps taken so far
    (the learning-curve benchmark scores the model there); `on_epoch(epoch)` after every epoch,
    its dict joining that epoch's history row, which the checkpoint keeps (so a learning curve
    scored there survives --resume). Both must leave the model in train mode and the global RNG
    as they found it, or the run would differ from one without them. `on_row(row)` sees each
    finished history row (trackers log it live).

    `compile` runs the loss (forward and backward) under torch.compile; `precision="bf16"` runs
    it under bf16 autocast, weights, optimizer state and checkpoints staying fp32 (mostly a GPU
    option: CPUs without bf16 units run it slower than fp32)."""
    check_precision(precision)
    model.to(device)
    loss_fn = torch.compile(model.loss) if compile else model.loss
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, amsgrad=amsgrad, fused=True)
    shuffle = torch.Generator().manual_seed(seed)
    start, history, seconds = 0, [], 0.0
    path = Path(run_dir) / CHECKPOINT
    if resume and path.exists():
        start, history, seconds = _restore(path, model, optimizer, shuffle, device)
    else:
        torch.manual_seed(seed)

    n = len(data)
    steps = math.ceil(n / batch_size)
    decay_from = stable_epochs(epochs, cooldown_epochs) * steps
    for epoch in range(start, epochs):
        model.train()
        began = time.perf_counter()
        order = torch.randperm(n, generator=shuffle)
        total = 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for step in bar:
            done = epoch * steps + step
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(done, lr, warmup_steps, decay_from, epochs * steps)
            xs = [x.to(device, non_blocking=True) for x in data.batch(order[step * batch_size:(step + 1) * batch_size])]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = loss_fn(xs).float()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}; "
                    f"the last good checkpoint is kept at {path if path.exists() else '(none yet)'}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if on_step is not None:
                on_step(done + 1)
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.1f}")
        seconds += time.perf_counter() - began
        history.append({"epoch": epoch + 1, "step": (epoch + 1) * steps, "loss": total / steps,
                        **(on_epoch(epoch + 1) if on_epoch else {})})
        if on_row is not None:
            on_row(history[-1])
        if progress:
            tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {total / steps:.2f}")
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "history": history,
            "seconds": seconds,
            "shuffle_rng": shuffle.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        save_checkpoint(path, state)
    return TrainResult(epochs=epochs, seconds=seconds, history=history)


def stable_epochs(epochs: int, cooldown_epochs: int) -> int:
    """Epochs before the lr starts to decay. A cooldown longer than the run (a tier's schedule cut
    short with `--set train.epochs=3`) decays the whole run rather than refusing it."""
    return epochs - min(cooldown_epochs, epochs)


def learning_rate(step: int, lr: float, warmup_steps: int, decay_from: int, total: int) -> float:
    """Warm-up, stable, decay: from lr/warmup_steps up to lr over the first `warmup_steps` steps,
    lr until step `decay_from`, then linearly down to lr/(total - decay_from) at the last step.
    Annealing at the end lets a run settle (MoPoE's coherence plateaus under a constant lr), and a
    run stopped in its stable phase can be continued into a longer one's decay. Where warm-up and
    decay overlap (a run shorter than its warm-up), both factors apply."""
    warmup = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
    decay = (total - step) / (total - decay_from) if step >= decay_from else 1.0
    return lr * warmup * decay


def _restore(path: Path, model: MultimodalVAE, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
             device: torch.device) -> tuple[int, list[dict], float]:
    """Load every state a checkpoint holds; returns (epoch, history, seconds). A payload that loads
    but is not a checkpoint of this model (wrong type, missing keys, wrong shapes or RNG states)
    is a one-line MMBenchError, never a traceback."""
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        return int(state["epoch"]), list(state["history"]), float(state["seconds"])
    except (KeyError, TypeError, IndexError, RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [""])[0][:160]
        raise MMBenchError(f"checkpoint {path} is damaged or does not fit this model/config ({type(exc).__name__}: {reason})") from None
