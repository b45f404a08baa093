"""Collecting one step's training batch and playing validation episodes.

What the trainer asks of a :class:`~skillzero.core.collector.Collector`, as pieces any
rollout driver can reuse (one backend in rank 0, or several engines): the seeds of every
episode (:func:`mix_seed`, :func:`group_assignments`, :func:`validation_assignments`),
the sampling settings (:func:`sampling_params`), dynamic sampling (:class:`GroupBatch`:
keep only groups whose returns differ, collect more rounds until the batch is full) and
the metrics of finished episodes (:func:`episode_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from skillzero.contracts.env import Task
from skillzero.contracts.rollout import SamplingParams
from skillzero.contracts.trajectory import StepSample
from skillzero.core.collector import Assignment, EpisodeResult, RolloutResult
from skillzero.core.config import to_container

VALIDATION_SEED = 7
"""Mixed into every validation seed: validation episodes never share a training seed."""


def mix_seed(*parts: int) -> int:
    """A seed in ``[0, 2**31 - 1)`` made from ``parts`` (run seed, step, round, group, ...)."""
    value = 0
    for part in parts:
        value = (value * 1_000_003 + int(part)) % (2**31 - 1)
    return value


def sampling_params(
    section: Any, *, seed: int | None = None, overrides: Mapping[str, Any] | None = None
) -> SamplingParams:
    """SamplingParams from a ``backend.sampling``-style config section, with
    ``overrides`` (what the env's response format asks for, see
    :func:`skillzero.contracts.env.sampling_overrides`) taking precedence."""
    base = to_container(section) if isinstance(section, DictConfig) else dict(section or {})
    merged = {**base, **dict(overrides or {})}
    return SamplingParams(
        max_new_tokens=int(merged.get("max_new_tokens", 256)),
        temperature=float(merged.get("temperature", 1.0)),
        top_p=float(merged.get("top_p", 1.0)),
        top_k=int(merged.get("top_k", -1)),
        stop=tuple(merged.get("stop", ()) or ()),
        seed=seed,
    )


def group_assignments(
    tasks: Sequence[Task], group_size: int, *, seed: int, step: int, round_index: int
) -> list[Assignment]:
    """``group_size`` episodes of each task (one group per task) for round
    ``round_index`` of training step ``step``; group ids are unique across rounds."""
    group_base = round_index * len(tasks)
    return [
        Assignment(
            task=task,
            seed=mix_seed(seed, step, round_index, g),
            group_id=group_base + g,
        )
        for g, task in enumerate(tasks)
        for _ in range(group_size)
    ]


def validation_assignments(tasks: Sequence[Task], seed: int) -> list[Assignment]:
    """One episode of each task, with the same env seeds at every validation, so that
    paired comparisons (with and without skills, before and after an update) play the
    same games."""
    return [
        Assignment(task=task, seed=mix_seed(seed, VALIDATION_SEED, i), group_id=i)
        for i, task in enumerate(tasks)
    ]


def validation_sampling(section: Any, seed: int, overrides: Mapping[str, Any]) -> SamplingParams:
    """The sampling settings of every validation: the same sampler seed each time, so
    paired comparisons also see the same sampling noise."""
    return sampling_params(section, seed=mix_seed(seed, VALIDATION_SEED), overrides=overrides)


class GroupBatch:
    """The groups kept for one training batch, round after round of collection.

    Without dynamic sampling the first round is the batch. With it (DAPO's dynamic
    sampling), a group whose episodes all have the same return carries no GRPO signal
    and is dropped; rounds are added until ``num_groups`` informative groups are kept.
    If no round had one, the last round is the batch (its advantages are zero; KL and
    entropy terms still apply). Time and prompt counters add up over every round.
    """

    def __init__(self, num_groups: int, *, dynamic: bool) -> None:
        self.num_groups = num_groups
        self.dynamic = dynamic
        self.samples: list[StepSample] = []
        self.episodes: list[EpisodeResult] = []
        self.kept_groups = 0
        self.timing = {"generation": 0.0, "env": 0.0, "prompt": 0.0}
        self.counters = {
            "truncated_prompts": 0.0,
            "shortened_histories": 0.0,
            "dropped_groups": 0.0,
        }
        self._last: RolloutResult | None = None

    def add(self, result: RolloutResult) -> bool:
        """Add one round; returns True when the batch is complete."""
        self._last = result
        self.timing["generation"] += result.generation_seconds
        self.timing["env"] += result.env_seconds
        self.timing["prompt"] += result.prompt_seconds
        self.counters["truncated_prompts"] += result.truncated_prompts
        self.counters["shortened_histories"] += result.shortened_histories
        if not self.dynamic:
            self.samples, self.episodes = result.samples, result.episodes
            return True
        returns: dict[int, set[float]] = {}
        for episode in result.episodes:
            returns.setdefault(episode.group_id, set()).add(round(episode.env_return, 6))
        informative = [g for g, values in sorted(returns.items()) if len(values) > 1]
        chosen = set(informative[: self.num_groups - self.kept_groups])
        self.counters["dropped_groups"] += len(returns) - len(chosen)
        self.samples += [s for s in result.samples if s.group_id in chosen]
        self.episodes += [e for e in result.episodes if e.group_id in chosen]
        self.kept_groups += len(chosen)
        return self.kept_groups >= self.num_groups

    def finish(self) -> tuple[list[StepSample], list[EpisodeResult]]:
        """The batch's step samples and episodes (see the class docstring)."""
        if self.dynamic and self.kept_groups == 0 and self._last is not None:
            self.samples, self.episodes = self._last.samples, self._last.episodes
        return self.samples, self.episodes

    def metrics(self, env_spec: Any) -> dict[str, float]:
        """``rollout/...`` metrics of the kept episodes and ``time/...`` of every round."""
        metrics = episode_metrics(self.episodes, env_spec, "rollout")
        metrics["rollout/samples"] = float(len(self.samples))
        for key, value in self.counters.items():
            metrics[f"rollout/{key}"] = value
        if self.dynamic:
            metrics["rollout/kept_groups"] = float(self.kept_groups)
        for key, value in self.timing.items():
            metrics[f"time/{key}"] = value
        return metrics


def episode_metrics(
    episodes: Sequence[EpisodeResult], env_spec: Any, prefix: str
) -> dict[str, float]:
    """Success (overall and per task type), valid-action ratio, episode length, tokens
    per step and return of finished episodes, as ``<prefix>/<name>``."""
    if not episodes:
        return {f"{prefix}/episodes": 0.0}
    records = [e.as_record() for e in episodes]
    metrics = env_spec.episode_metrics(records) if env_spec is not None else None
    if metrics is None:
        metrics = {
            "episodes": float(len(episodes)),
            "success_rate": sum(e.won for e in episodes) / len(episodes),
        }
        steps = sum(e.length for e in episodes)
        metrics["valid_action_ratio"] = (
            sum(e.valid_actions for e in episodes) / steps if steps else 1.0
        )
        metrics["episode_length"] = steps / len(episodes)
        by_type: dict[str, list[bool]] = {}
        for e in episodes:
            by_type.setdefault(e.task.task_type, []).append(e.won)
        for task_type, wins in sorted(by_type.items()):
            metrics[f"success_rate/{task_type}"] = sum(wins) / len(wins)
    steps = max(1, sum(e.length for e in episodes))
    metrics["prompt_tokens_per_step"] = sum(e.prompt_tokens for e in episodes) / steps
    metrics["response_tokens_per_step"] = sum(e.response_tokens for e in episodes) / steps
    metrics["skill_tokens_per_step"] = sum(e.skill_tokens * e.length for e in episodes) / steps
    metrics["return_mean"] = sum(e.env_return for e in episodes) / len(episodes)
    metrics["env_errors"] = float(sum(e.error is not None for e in episodes))
    return {f"{prefix}/{key}": float(value) for key, value in metrics.items()}


@dataclass
class ValidationResult:
    """Episodes of one validation pass and their metrics (keys prefixed by the tag)."""

    episodes: list[EpisodeResult]
    metrics: dict[str, float] = field(default_factory=dict)


__all__ = [
    "GroupBatch",
    "ValidationResult",
    "episode_metrics",
    "group_assignments",
    "mix_seed",
    "sampling_params",
    "validation_assignments",
    "validation_sampling",
]
