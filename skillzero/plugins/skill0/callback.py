"""The SKILL0 curriculum as a trainer callback (``skill0_curriculum``).

It drives :class:`~skillzero.plugins.skill0.curriculum.SkillCurriculum` from the training
loop:

- ``on_train_start``: builds the curriculum from the sources of the trainer's skill
  provider (a bank provider such as ``skills=category``) and restricts the provider to
  the first stage's active set (general + the first ``M-1`` task sources in bank order).
- ``before_rollout``: applies the budget of the coming step; at a stage boundary that
  is not a validation step it re-cuts the current ranking, which costs nothing.
- ``after_update``: every ``every`` steps (never after the last step) plays the
  validation tasks twice, with *all* task sources available (the provider's restriction
  lifted, so every source is measured and a dropped one can return) and with no skills,
  re-ranks the sources and restricts the training provider to the active set of the
  next step. Logs ``skill0/delta/<source>``, ``skill0/next_budget``,
  ``skill0/next_active_sources`` and the table ``skill0/helpfulness``; every step's
  record also has the ``skill0/budget`` and ``skill0/active_sources`` its rollouts used.
- ``on_train_end``: with ``final_eval_without_skills``, a last validation with no skills
  (``final/no_skills``): SKILL0's agent runs with zero skills at inference.

**What helpfulness measures** (``helpfulness``). ``success`` (the paper's, the default):
validation success with skills minus without, per task. ``expert_likelihood`` (opt-in;
not in the paper): on the same validation tasks, the env expert's plan is replayed with
skills and without, and each task's ``Δ_i`` is the mean, over the plan's steps, of
``log π(a*_t | prompt with skills) - log π(a*_t | prompt without)``: how much the skills
raise the policy's probability of the expert's action. No game is played (two forward
passes over the plans' steps), and the signal is continuous: with a dozen validation
games and a policy that wins one of them, success deltas are all 0 (nothing to rank by),
while likelihood deltas still order the files. It needs an env with an expert (ALFWorld:
the walkthroughs) and is what the CPU quickstart uses. The curriculum logic (drop below
the threshold, rank, cut to the budget) is the same for both.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.skills import NoSkills, SkillProvider
from skillzero.core.tasks import balanced_subset
from skillzero.plugins.skill0.curriculum import HelpfulnessRow, SkillCurriculum

__all__ = [
    "ExpertSteps",
    "Skill0Curriculum",
    "action_log_probs",
    "pair_expert_steps",
    "provider_sources",
    "unrestricted",
]

log = logging.getLogger(__name__)

WITH_SKILLS_TAG = "curriculum/with_skills"
WITHOUT_SKILLS_TAG = "curriculum/without_skills"
FINAL_TAG = "final/no_skills"
INITIAL_TAG = "initial/no_skills"
EXPERT_TAG = "curriculum/expert"
_BUDGET_KEYS = ("skill0/budget", "skill0/active_sources")
HELPFULNESS_MEASURES = ("success", "expert_likelihood")


@dataclass
class ExpertSteps:
    """The expert's plan steps on the helpfulness tasks, rendered twice: with every
    skill source available and with none (same responses, paired by position)."""

    with_skills: list[Any]
    without_skills: list[Any]
    task_ids: list[str]
    sources: dict[str, tuple[str, ...]]


def pair_expert_steps(with_skills: Any, without_skills: Any) -> ExpertSteps:
    """Pair two :class:`~skillzero.core.sft.ReplayResult` of the same plans by
    ``(task_id, step)``; steps present in one replay only are left out."""
    other = {(s.task_id, s.step): s for s in without_skills.samples}
    paired_with, paired_without, task_ids = [], [], []
    for sample in with_skills.samples:
        match = other.get((sample.task_id, sample.step))
        if match is None or list(match.response_ids) != list(sample.response_ids):
            continue
        paired_with.append(sample)
        paired_without.append(match)
        task_ids.append(str(sample.task_id))
    return ExpertSteps(paired_with, paired_without, task_ids, dict(with_skills.skill_sources))


def provider_sources(provider: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(all sources, general sources) of a provider: from its ``bank`` when it has one,
    else from its ``sources()`` / ``general_sources()`` methods."""
    bank = getattr(provider, "bank", None)
    if bank is not None:
        return tuple(bank.sources()), tuple(bank.general_sources)
    sources = getattr(provider, "sources", None)
    general = getattr(provider, "general_sources", None)
    if callable(sources) and callable(general):
        return tuple(sources()), tuple(general())
    return (), ()


def unrestricted(provider: SkillProvider) -> SkillProvider:
    """A shallow copy of ``provider`` with every source active. It shares the bank and
    any caches (embeddings) with the original, whose restriction is left untouched."""
    full = copy.copy(provider)
    full.set_active_sources(None)
    return full


def action_log_probs(trainer: Any, samples: Sequence[Any]) -> list[float]:
    """``log π(response | prompt)`` of each sample under the trainer's current policy,
    summed over the response tokens, a final end-of-sequence token left out (generation
    stops at the format's stop string before it). Collective; one forward pass."""
    from skillzero.contracts.trajectory import action_mask, collate_steps

    batch = collate_steps(list(samples), pad_token_id=trainer.pad_token_id)
    log_probs = trainer.policy.compute_log_probs(batch, pad_token_id=trainer.pad_token_id)
    mask = action_mask(batch, trainer.tokenizer.eos_token_id)
    return [float(v) for v in (log_probs.float() * mask).sum(-1)]


class Skill0Curriculum(TrainerCallback):
    """SKILL0's helpfulness-ranked skill withdrawal (see the module docstring).

    ``every``: validation interval ``d`` in steps; ``max_set_schedule``: the budget of
    each stage (``None``: the paper's ``M(s)`` with ``num_stages`` stages);
    ``threshold`` / ``strict``: drop a source when ``Δ < threshold`` (``<=`` if strict);
    ``final_eval_without_skills``: validate with zero skills after training
    (``final/no_skills``); ``initial_eval_without_skills``: also before the first step
    (``initial/no_skills``), so the zero-skill agent is compared with itself before and
    after training on the same tasks and seeds. ``val_tasks``: the helpfulness
    validations play N of the trainer's validation tasks, taken round-robin over task
    types (N = the number of types measures each type once); null: all of them.
    ``helpfulness``: ``success`` (the paper's) or ``expert_likelihood`` (see the module
    docstring).
    """

    name = "skill0_curriculum"

    def __init__(
        self,
        every: int = 10,
        max_set_schedule: Sequence[int] | None = (6, 3, 0),
        threshold: float = 0.0,
        strict: bool = False,
        final_eval_without_skills: bool = True,
        num_stages: int = 3,
        initial_eval_without_skills: bool = False,
        val_tasks: int | None = None,
        helpfulness: str = "success",
    ) -> None:
        if helpfulness not in HELPFULNESS_MEASURES:
            raise ValueError(
                f"skill0_curriculum: helpfulness must be one of {list(HELPFULNESS_MEASURES)}, "
                f"got {helpfulness!r}"
            )
        self.helpfulness = helpfulness
        self._expert_steps: ExpertSteps | None = None
        if int(every) < 1:
            raise ValueError(f"skill0_curriculum: every must be >= 1, got {every}")
        if val_tasks is not None and int(val_tasks) < 1:
            raise ValueError(f"skill0_curriculum: val_tasks must be >= 1 or null, got {val_tasks}")
        self.val_tasks = None if val_tasks is None else int(val_tasks)
        self.every = int(every)
        self.max_set_schedule = (
            None if max_set_schedule is None else [int(m) for m in max_set_schedule]
        )
        self.num_stages = int(num_stages)
        self.threshold = float(threshold)
        self.strict = bool(strict)
        self.final_eval_without_skills = bool(final_eval_without_skills)
        self.initial_eval_without_skills = bool(initial_eval_without_skills)
        self.curriculum: SkillCurriculum | None = None
        self._pending_state: dict[str, Any] | None = None

    # -- hooks ------------------------------------------------------------------------

    def on_train_start(self, trainer: Any) -> None:
        provider = trainer.skill_provider
        sources, general = provider_sources(provider)
        if not sources:
            raise ValueError(
                f"skill0_curriculum needs a skill provider over a skill bank (e.g. "
                f"skills=category with skills.bank=<bank>); the training provider "
                f"{type(provider).__name__} exposes no skill sources"
            )
        if self.helpfulness == "expert_likelihood" and (
            getattr(getattr(trainer, "env_spec", None), "expert", None) is None
        ):
            raise ValueError(
                "skill0_curriculum: helpfulness=expert_likelihood needs an env with an "
                f"expert; env {getattr(trainer.env_spec, 'name', '?')!r} has none "
                "(use helpfulness=success)"
            )
        bank = getattr(provider, "bank", None)
        task_types = getattr(getattr(trainer, "env_spec", None), "task_types", ())
        if bank is not None and task_types and hasattr(bank, "resolve"):
            # Logs a warning for task types no source serves (their prompts would hold
            # the general skills only, and no task file could be measured on them).
            bank.resolve(tuple(task_types))
        self.curriculum = SkillCurriculum(
            sources,
            general,
            int(trainer.total_steps),
            max_set_schedule=self.max_set_schedule,
            num_stages=self.num_stages,
            threshold=self.threshold,
            strict=self.strict,
        )
        if self._pending_state is not None:
            self.curriculum.load_state_dict(self._pending_state)
            self._pending_state = None
        self._apply(trainer, int(trainer.step) + 1)
        if self.initial_eval_without_skills and int(trainer.step) == 0:
            trainer.validate(skill_provider=NoSkills(), tag=INITIAL_TAG)

    def before_rollout(self, trainer: Any, step: int) -> None:
        active = self._apply(trainer, step, log_change=False)
        # every step's record says which budget and how many sources its rollouts used
        self._log(trainer, self._metrics(step, active, ()), step)

    def after_update(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        if step % self.every != 0 or step >= int(trainer.total_steps):
            return
        curriculum = self._require()
        tasks = None
        if self.val_tasks is not None:
            tasks = balanced_subset(list(trainer.val_tasks), self.val_tasks)
        if self.helpfulness == "expert_likelihood":
            rows = self._update_from_expert(trainer, step, tasks)
        else:
            with_skills = trainer.validate(
                skill_provider=unrestricted(trainer.skill_provider),
                tasks=tasks,
                tag=WITH_SKILLS_TAG,
            )
            without_skills = trainer.validate(
                skill_provider=NoSkills(), tasks=tasks, tag=WITHOUT_SKILLS_TAG
            )
            rows = curriculum.update(step, with_skills.episodes, without_skills.episodes)
        active = self._apply(trainer, step + 1, log_change=False)
        metrics = {
            f"skill0/next_{key.removeprefix('skill0/')}" if key in _BUDGET_KEYS else key: value
            for key, value in self._metrics(step + 1, active, rows).items()
        }
        self._log(trainer, metrics, step)
        if getattr(trainer, "is_main_process", True):
            trainer.log_table("skill0/helpfulness", [r.as_dict() for r in rows], step)

    def on_train_end(self, trainer: Any) -> None:
        if self.final_eval_without_skills:
            trainer.validate(skill_provider=NoSkills(), tag=FINAL_TAG)

    # -- expert likelihood --------------------------------------------------------------

    def _update_from_expert(
        self, trainer: Any, step: int, tasks: Sequence[Any] | None
    ) -> list[HelpfulnessRow]:
        """``Δ_i`` per task from the expert's plan steps (collective: every rank scores
        the same steps; the main process replays the plans once and caches them)."""
        begin = time.perf_counter()
        if self._expert_steps is None:
            steps = None
            if getattr(trainer, "is_main_process", True):
                with_skills, without_skills = trainer.expert_samples(
                    list(trainer.val_tasks if tasks is None else tasks),
                    [unrestricted(trainer.skill_provider), NoSkills()],
                )
                steps = pair_expert_steps(with_skills, without_skills)
                if not steps.task_ids:
                    raise ValueError(
                        "skill0_curriculum (helpfulness=expert_likelihood): the env's "
                        "expert gave no plan steps on the validation tasks"
                    )
            self._expert_steps = trainer.ctx.broadcast_object(steps)
        expert = self._expert_steps
        assert expert is not None
        with_skills = action_log_probs(trainer, expert.with_skills)
        without_skills = action_log_probs(trainer, expert.without_skills)
        per_task: dict[str, list[float]] = {}
        for task_id, a, b in zip(expert.task_ids, with_skills, without_skills, strict=True):
            per_task.setdefault(task_id, []).append(a - b)
        deltas = {t: sum(v) / len(v) for t, v in per_task.items()}
        rows = self._require().update_from_task_deltas(step, deltas, expert.sources)
        self._log(
            trainer,
            {
                f"{EXPERT_TAG}/with_skills/action_log_prob": sum(with_skills) / len(with_skills),
                f"{EXPERT_TAG}/without_skills/action_log_prob": sum(without_skills)
                / len(without_skills),
                f"{EXPERT_TAG}/steps": float(len(with_skills)),
                f"{EXPERT_TAG}/tasks": float(len(deltas)),
                "time/curriculum/helpfulness": time.perf_counter() - begin,
            },
            step,
        )
        return rows

    # -- state ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        if self.curriculum is not None:
            return self.curriculum.state_dict()
        return dict(self._pending_state or {})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.curriculum is not None:
            self.curriculum.load_state_dict(state)
        else:
            # Checkpoints are restored before on_train_start builds the curriculum.
            self._pending_state = dict(state)

    # -- helpers ----------------------------------------------------------------------

    def _require(self) -> SkillCurriculum:
        if self.curriculum is None:
            raise RuntimeError("skill0_curriculum: on_train_start was not called")
        return self.curriculum

    def _apply(self, trainer: Any, step: int, log_change: bool = True) -> list[str]:
        """Restrict the training provider to the active set of ``step``, if it is not
        already; budget 0 gives the empty set, so no skill is rendered."""
        curriculum = self._require()
        active = curriculum.active_sources(step)
        provider = trainer.skill_provider
        wanted = frozenset(active)
        if getattr(provider, "active_sources", None) != wanted:
            provider.set_active_sources(active)
            log.info(
                "skill0: step %d budget %d, active sources: %s",
                step,
                curriculum.budget(step),
                ", ".join(active) or "(none)",
            )
            if log_change:
                self._log(trainer, self._metrics(step, active, ()), step)
        return active

    def _metrics(
        self, step: int, active: Sequence[str], rows: Sequence[HelpfulnessRow]
    ) -> dict[str, float]:
        curriculum = self._require()
        metrics = {
            "skill0/budget": float(curriculum.budget(step)),
            "skill0/active_sources": float(len(active)),
        }
        for row in rows:
            if row.delta is not None:
                metrics[f"skill0/delta/{row.source}"] = float(row.delta)
        return metrics

    @staticmethod
    def _log(trainer: Any, metrics: dict[str, float], step: int) -> None:
        if getattr(trainer, "is_main_process", True):
            trainer.log(metrics, step)
