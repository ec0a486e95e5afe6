"""The metric contract: accumulate with `update`, read with `compute`, versioned by name.

A metric's `version` is bumped whenever a change can move its numbers, so result records made
with different versions are never ranked side by side.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar


class Metric(ABC):
    """Streaming metric. `compute()` returns {"<name>/<detail>": value}, all plain floats."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    higher_is_better: ClassVar[bool]

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
