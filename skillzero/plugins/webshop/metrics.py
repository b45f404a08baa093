"""WebShop episode metrics: success overall and per product category, the mean task
score when the records carry it, valid-action ratio and episode length.

A pure function of episode records, so the trainer, the evaluator and ``skillzero
webshop check`` report the same numbers. Papers report WebShop as *score* (the mean
purchase score x 100) and *success rate* (purchases scoring 1). A record's score is read
from ``task_score`` (or ``score``); records without one contribute no ``score`` key
rather than a misleading 0. A category with no episode in the batch has no key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from skillzero.plugins.webshop.config import TASK_TYPES


def _score_of(record: Mapping[str, Any]) -> float | None:
    for key in ("task_score", "score"):
        value = record.get(key)
        if value is not None:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def episode_metrics(episodes: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Aggregate metrics of finished episodes (dicts with ``task_type``, ``won``,
    ``length``, ``valid_actions`` and optionally ``task_score``).

    Keys: ``episodes``; ``success_rate``; ``score`` (mean task score in [0, 1]) when
    every record has one; ``success_rate/<category>`` and ``episodes/<category>`` per
    category present; ``valid_action_ratio`` (valid steps over all steps; 1.0 with no
    steps) and ``episode_length`` (mean steps). An empty list gives ``{"episodes": 0}``.
    """
    records = list(episodes)
    if not records:
        return {"episodes": 0.0}
    wins: dict[str, int] = {}
    counts: dict[str, int] = {}
    steps = valid = 0
    scores: list[float] = []
    for record in records:
        category = str(record.get("task_type", "")) or "unknown"
        won = bool(record.get("won", False))
        counts[category] = counts.get(category, 0) + 1
        wins[category] = wins.get(category, 0) + int(won)
        length = max(0, int(record.get("length", record.get("steps", 0)) or 0))
        steps += length
        valid += min(max(0, int(record.get("valid_actions", length) or 0)), length)
        score = _score_of(record)
        if score is not None:
            scores.append(score)
    metrics: dict[str, float] = {
        "episodes": float(len(records)),
        "success_rate": sum(wins.values()) / len(records),
        "valid_action_ratio": valid / steps if steps else 1.0,
        "episode_length": steps / len(records),
    }
    if len(scores) == len(records):
        metrics["score"] = sum(scores) / len(scores)
    order = list(TASK_TYPES) + sorted(set(counts) - set(TASK_TYPES))
    for category in order:
        if category in counts:
            metrics[f"success_rate/{category}"] = wins[category] / counts[category]
            metrics[f"episodes/{category}"] = float(counts[category])
    return metrics
