"""Search-QA episode metrics: success (exact match) overall and per data source.

A pure function of episode records, so the trainer and ``skillzero eval`` report the
same numbers. A record's ``task_type`` is its question's data source (``nq``,
``hotpotqa``, ``synthetic_2hop``, ...). Papers report the mean of the per-source exact
match over their seven sets; ``success_rate/source_mean`` is that mean over the sources
present. Records that carry ``f1`` (the env reports it in every step's info, and the
trainer adds the last step's numeric info to each record) also give ``f1`` and
``f1/<source>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from skillzero.plugins.search.datasets import TASK_TYPES

__all__ = ["SOURCE_ORDER", "episode_metrics"]

SOURCE_ORDER: tuple[str, ...] = TASK_TYPES
"""The order per-source metrics are listed in (others follow, sorted)."""


def _key(source: str) -> str:
    return source.replace("/", "_") or "unknown"


def episode_metrics(episodes: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Aggregate metrics of finished episodes.

    Keys: ``episodes``; ``success_rate``; ``success_rate/<source>`` and
    ``episodes/<source>`` per data source present; ``success_rate/source_mean`` (with
    two or more sources); ``valid_action_ratio`` (valid steps over all steps);
    ``episode_length`` (mean turns); ``f1`` and ``f1/<source>`` when records carry
    ``f1``. An empty list gives ``{"episodes": 0}``.
    """
    records = [dict(e) for e in episodes]
    if not records:
        return {"episodes": 0.0}
    wins: dict[str, int] = {}
    counts: dict[str, int] = {}
    f1s: dict[str, list[float]] = {}
    for record in records:
        source = _key(str(record.get("task_type", "")))
        counts[source] = counts.get(source, 0) + 1
        wins[source] = wins.get(source, 0) + int(bool(record.get("won", False)))
        if record.get("f1") is not None:
            f1s.setdefault(source, []).append(float(record["f1"]))
    steps = sum(max(0, int(r.get("length", 0))) for r in records)
    valid = sum(
        min(
            max(0, int(r.get("valid_actions", r.get("length", 0)))), max(0, int(r.get("length", 0)))
        )
        for r in records
    )
    metrics: dict[str, float] = {
        "episodes": float(len(records)),
        "success_rate": sum(wins.values()) / len(records),
        "valid_action_ratio": valid / steps if steps else 1.0,
        "episode_length": steps / len(records),
    }
    order = [s for s in SOURCE_ORDER if s in counts] + sorted(set(counts) - set(SOURCE_ORDER))
    for source in order:
        metrics[f"success_rate/{source}"] = wins[source] / counts[source]
        metrics[f"episodes/{source}"] = float(counts[source])
    if len(order) > 1:
        metrics["success_rate/source_mean"] = sum(wins[s] / counts[s] for s in order) / len(order)
    if f1s:
        every = [v for values in f1s.values() for v in values]
        metrics["f1"] = sum(every) / len(every)
        for source in order:
            if source in f1s:
                metrics[f"f1/{source}"] = sum(f1s[source]) / len(f1s[source])
    return metrics
