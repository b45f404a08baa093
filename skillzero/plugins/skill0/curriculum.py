"""The SKILL0 skill curriculum (arXiv 2604.02268): pure logic, no torch.

Skills are withdrawn over training in ``S`` stages. Training step ``t`` (1-based) of
``T`` belongs to stage ``s = min(S-1, floor((t-1)·S/T))`` and has the skill budget
``M(s)``: either ``max_set_schedule[s]`` or, without a schedule, the paper's

    M(s) = ceil(N · (S - (s+1)) / (S - 1))        (s 0-based; N sources incl. general)

which gives ``[6, 3, 0]`` for N = 6, S = 3. A budget ``M >= 1`` keeps the general
sources plus the ``M-1`` top-ranked task sources; ``M = 0`` means no skills at all.

Every ``d`` steps the validation tasks are played twice, with skills and without, and
each task-specific source ``k`` is scored by its helpfulness

    Δ_k = mean over tasks i whose with-skill prompts used k of (won_i^with - won_i^without)

Sources with ``Δ_k < threshold`` (``<=`` when ``strict``; the released code keeps
``Δ >= 0``, the paper ``Δ > 0``) are dropped, the rest ranked by ``Δ_k`` descending. All
sources are re-scored at every validation, so a dropped source can come back.

**What is measured.** The with-skills pass must show *every* task-specific source
(the active restriction lifted, see :class:`~skillzero.plugins.skill0.callback.
Skill0Curriculum`): a source is scored on the tasks whose prompts contained it, so a
source missing from the pass would get no evidence and could never return once
dropped. The released code scored task *types* and mapped them to files, which only
coincides with this when the mapping is one file per type; attributing the delta to the
file actually in the prompt (``EpisodeResult.skill_sources``) also works for providers
that route by similarity rather than by type, and for files shared by several types.

Two deliberate departures from the released code: the first stage uses the *first*
budget (the original computed phase index -1 at step 0 and so trained steps 1-10 with
no skills), and a source without evidence in a round keeps its previous helpfulness.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HelpfulnessRow", "SkillCurriculum", "paper_schedule"]


def paper_schedule(num_sources: int, num_stages: int) -> list[int]:
    """``M(s) = ceil(N·(S-(s+1))/(S-1))`` for ``s = 0..S-1`` (``[N]`` when ``S = 1``)."""
    if num_sources < 0 or num_stages < 1:
        raise ValueError("need num_sources >= 0 and num_stages >= 1")
    if num_stages == 1:
        return [num_sources]
    span = num_stages - 1
    # Integer ceiling: exact for every N and S.
    return [-(-num_sources * (num_stages - (s + 1)) // span) for s in range(num_stages)]


@dataclass(frozen=True)
class HelpfulnessRow:
    """One source at one validation: its helpfulness ``delta`` (``None`` when it has
    never had evidence), the number of tasks that measured it this round, its ``rank``
    among kept task sources (0 = best; ``None`` for general or dropped sources), and
    whether it is in the active set chosen for the next step."""

    source: str
    delta: float | None
    tasks: int
    rank: int | None
    active: bool
    general: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "delta": self.delta,
            "tasks": self.tasks,
            "rank": self.rank,
            "active": self.active,
            "general": self.general,
        }


def _task_id(episode: Any) -> str:
    task = getattr(episode, "task", None)
    if task is not None:
        return str(task.task_id)
    return str(episode.task_id)


def _per_task(episodes: Iterable[Any]) -> tuple[dict[str, float], dict[str, set[str]]]:
    """Success rate and the union of skill sources seen, per task id."""
    wins: dict[str, list[float]] = {}
    sources: dict[str, set[str]] = {}
    for episode in episodes:
        key = _task_id(episode)
        wins.setdefault(key, []).append(1.0 if episode.won else 0.0)
        sources.setdefault(key, set()).update(getattr(episode, "skill_sources", ()) or ())
    return {k: sum(v) / len(v) for k, v in wins.items()}, sources


class SkillCurriculum:
    """Budget schedule and helpfulness ranking of SKILL0 (see the module docstring).

    ``sources``: every source in bank order (general ones included or not);
    ``general_sources``: those always shown while the budget is >= 1 and never ranked.
    ``max_set_schedule``: the budget of each stage (``None``: the paper's formula with
    ``num_stages`` stages; when given, its length is the number of stages).
    """

    def __init__(
        self,
        sources: Sequence[str],
        general_sources: Sequence[str],
        total_steps: int,
        max_set_schedule: Sequence[int] | None = (6, 3, 0),
        num_stages: int = 3,
        threshold: float = 0.0,
        strict: bool = False,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.general_sources: tuple[str, ...] = tuple(dict.fromkeys(general_sources))
        general = set(self.general_sources)
        self.task_sources: tuple[str, ...] = tuple(
            s for s in dict.fromkeys(sources) if s not in general
        )
        self.total_steps = int(total_steps)
        n = len(self.general_sources) + len(self.task_sources)
        if max_set_schedule is None:
            self.schedule = paper_schedule(n, num_stages)
        else:
            self.schedule = [int(m) for m in max_set_schedule]
            if not self.schedule or any(m < 0 for m in self.schedule):
                raise ValueError(f"max_set_schedule must be non-negative ints, got {self.schedule}")
        self.num_stages = len(self.schedule)
        self.threshold = float(threshold)
        self.strict = bool(strict)
        self._bank_pos = {s: i for i, s in enumerate(self.task_sources)}
        # Before any validation: bank order, nothing known.
        self.ranking: list[str] = list(self.task_sources)
        self.helpfulness: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []

    # -- schedule ---------------------------------------------------------------------

    def stage(self, step: int) -> int:
        """The stage of training step ``step`` (1-based; step 0 counts as step 1)."""
        t = max(1, int(step))
        return min(self.num_stages - 1, (t - 1) * self.num_stages // self.total_steps)

    def budget(self, step: int) -> int:
        """``M`` at training step ``step``: how many sources (general included) it shows."""
        return self.schedule[self.stage(step)]

    def active_for_budget(self, budget: int) -> list[str]:
        """General sources + the ``budget - 1`` top-ranked task sources; none for 0."""
        if budget <= 0:
            return []
        return [*self.general_sources, *self.ranking[: budget - 1]]

    def active_sources(self, step: int) -> list[str]:
        """The active sources for training step ``step`` under the current ranking."""
        return self.active_for_budget(self.budget(step))

    # -- helpfulness ------------------------------------------------------------------

    def _dropped(self, delta: float) -> bool:
        return delta <= self.threshold if self.strict else delta < self.threshold

    def update(
        self, step: int, with_skills: Sequence[Any], without_skills: Sequence[Any]
    ) -> list[HelpfulnessRow]:
        """Score every source from a pair of validation passes at ``step`` and re-rank.

        ``with_skills`` / ``without_skills``: episode results (``task.task_id``, ``won``,
        ``skill_sources``). Tasks played in only one pass are ignored. Returns the rows
        recorded in :attr:`history`; the active set they report is the one for the
        budget of ``step + 1``.
        """
        won_with, used = _per_task(with_skills)
        won_without, _ = _per_task(without_skills)
        paired = {t: won_with[t] - won_without[t] for t in won_with if t in won_without}
        return self.update_from_task_deltas(step, paired, used)

    def update_from_task_deltas(
        self,
        step: int,
        task_deltas: Mapping[str, float],
        task_sources: Mapping[str, Iterable[str]],
    ) -> list[HelpfulnessRow]:
        """Score every source from per-task helpfulness and re-rank (what :meth:`update`
        does after pairing the two passes).

        ``task_deltas``: ``task id -> Δ_i`` (with skills minus without, on that task);
        ``task_sources``: the sources in that task's with-skill prompts. A source's
        ``Δ_k`` is the mean ``Δ_i`` over the tasks that showed it."""
        deltas: dict[str, list[float]] = {}
        for task_id, delta in task_deltas.items():
            for source in task_sources.get(task_id, ()):
                deltas.setdefault(source, []).append(float(delta))
        paired = list(task_deltas)
        evidence = {s: len(v) for s, v in deltas.items()}
        for source, values in deltas.items():
            if source in self._bank_pos or source in self.general_sources:
                self.helpfulness[source] = sum(values) / len(values)

        previous = {s: i for i, s in enumerate(self.ranking)}
        kept = [
            s
            for s in self.task_sources
            if s not in self.helpfulness or not self._dropped(self.helpfulness[s])
        ]

        def key(source: str) -> tuple[int, float, int, int]:
            known = source in self.helpfulness
            # Measured sources first by Δ descending; never-measured ones after them.
            return (
                0 if known else 1,
                -self.helpfulness[source] if known else 0.0,
                previous.get(source, len(previous)),
                self._bank_pos[source],
            )

        self.ranking = sorted(kept, key=key)
        active = set(self.active_sources(step + 1))
        rank_of = {s: i for i, s in enumerate(self.ranking)}
        rows = [
            HelpfulnessRow(
                source=s,
                delta=self.helpfulness.get(s),
                tasks=evidence.get(s, 0),
                rank=rank_of.get(s),
                active=s in active,
                general=s in self.general_sources,
            )
            for s in (*self.general_sources, *self.task_sources)
        ]
        self.history.append(
            {
                "step": int(step),
                "budget": self.budget(step + 1),
                "paired_tasks": len(paired),
                "rows": [r.as_dict() for r in rows],
            }
        )
        return rows

    # -- checkpoints ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`load_state_dict` needs to resume the curriculum."""
        return {
            "sources": [*self.general_sources, *self.task_sources],
            "general_sources": list(self.general_sources),
            "schedule": list(self.schedule),
            "total_steps": self.total_steps,
            "ranking": list(self.ranking),
            "helpfulness": dict(self.helpfulness),
            "history": [dict(h) for h in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; the sources must be the same as this bank's."""
        saved = list(state["sources"])
        ours = [*self.general_sources, *self.task_sources]
        if sorted(saved) != sorted(ours) or list(state["general_sources"]) != list(
            self.general_sources
        ):
            raise ValueError(
                "skill curriculum checkpoint was made with other skill sources: "
                f"saved {saved}, current {ours}"
            )
        unknown = [s for s in state["ranking"] if s not in self._bank_pos]
        if unknown:
            raise ValueError(f"skill curriculum checkpoint ranks unknown sources {unknown}")
        self.ranking = list(state["ranking"])
        self.helpfulness = {str(k): float(v) for k, v in state["helpfulness"].items()}
        self.history = [dict(h) for h in state.get("history", [])]
