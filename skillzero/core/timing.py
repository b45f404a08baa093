"""Where one training step's time goes: the ``time/...`` metrics.

The collector reports generation, env and prompt time; :class:`StepClock` measures the
trainer's own phases and adds ``time/step`` (the whole step), ``time/validation`` and
``time/other``: the framework's own overhead, what is not generation, env stepping,
forward/backward passes, weight sync, validation or checkpoint writing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

ACCOUNTED: tuple[str, ...] = (
    "generation",
    "env",
    "log_probs",
    "callbacks",
    "update",
    "weight_sync",
    "validation",
    "checkpoint",
)
"""The phases ``time/other`` is the rest of."""


class StepClock:
    """Started with the step; :meth:`phase` times one phase, :meth:`metrics` reports."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as ``time/<name>``."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - begin

    def metrics(self, metrics: Mapping[str, float], validation_seconds: float) -> dict[str, float]:
        """``time/<phase>`` of each phase, ``time/step``, ``time/validation`` and
        ``time/other`` (``metrics`` holds the collector's ``time/...`` entries)."""
        out = {f"time/{key}": value for key, value in self.seconds.items()}
        out["time/step"] = time.perf_counter() - self.started
        out["time/validation"] = validation_seconds
        merged = {**metrics, **out}
        accounted = sum(merged.get(f"time/{key}", 0.0) for key in ACCOUNTED)
        out["time/other"] = max(0.0, out["time/step"] - accounted)
        return out


__all__ = ["ACCOUNTED", "StepClock"]
