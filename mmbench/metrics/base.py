"""The metric contract: accumulate with `update`, read with `compute`, versioned by name.

A metric's `version` is bumped whenever a change can move its numbers, so result records made
with different versions are never ranked side by side. Its direction, bounds and leaderboard
label are class attributes too (as in torchmetrics); `mmbench.metrics.families` reads them from
the classes, so each is declared once, here on the metric.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar


class Metric(ABC):
    """Streaming metric. `compute()` returns {"<name>/<detail>": value}, all plain floats."""

    name: ClassVar[str]
    """The family prefix of every name `compute()` returns, e.g. `fid` for `fid/m0`."""
    version: ClassVar[int] = 1
    higher_is_better: ClassVar[bool]
    label: ClassVar[str]
    """Short leaderboard label of the family; defaults to `name` (set by `__init_subclass__`)."""
    summary_label: ClassVar[str | None] = None
    """Label of the bare `name` (the family summary); None: `label`."""
    digits: ClassVar[int] = 3
    """Decimals shown in leaderboard tables."""
    lower: ClassVar[float | None] = None
    """Smallest valid value (None: unbounded); records with a value below it are rejected."""
    upper: ClassVar[float | None] = None
    """Largest valid value (None: unbounded)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "label" not in cls.__dict__:
            cls.label = cls.name

    def __init__(self):
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated."""

    @abstractmethod
    def update(self, *args, **kwargs) -> None:
        """Accumulate one batch."""

    @abstractmethod
    def compute(self) -> dict[str, float]:
        """The metric's values from everything accumulated so far."""
