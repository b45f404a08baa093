"""Skills and skill providers.

A :class:`Skill` is a piece of natural-language guidance (id, category, title, text).
A :class:`SkillProvider` chooses the skills for a task; :func:`render_skill_block` turns
them into the text that fills an env prompt's skill slot, under a token budget.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from skillzero.contracts.env import Task


@dataclass(frozen=True)
class Skill:
    """One skill. ``category`` is ``general`` or a task type / task family; ``source``
    is the file (or bank entry) it came from, the unit a curriculum ranks."""

    id: str
    category: str
    title: str
    text: str
    source: str = ""


@dataclass(frozen=True)
class RenderedSkills:
    """A rendered skill block: its text, the skills it holds, its token count, and the
    skills left out because the budget ran out."""

    text: str
    skill_ids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    tokens: int = 0
    dropped: tuple[str, ...] = ()


EMPTY_SKILLS = RenderedSkills("")


class SkillProvider(ABC):
    """Chooses skills for a task. Providers may be restricted to an active subset of
    sources (a curriculum withdraws skill files over training)."""

    active_sources: frozenset[str] | None = None

    @abstractmethod
    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        """The skills for ``task``, most relevant first."""

    def sources(self) -> tuple[str, ...]:
        """Every skill source this provider can show, in bank order; empty when the
        provider has no fixed set of sources (a curriculum then has nothing to rank)."""
        return ()

    def general_sources(self) -> tuple[str, ...]:
        """The sources shown to every task; a curriculum keeps them while any skill is
        in context."""
        return ()

    def set_active_sources(self, sources: Sequence[str] | None) -> None:
        """Restrict (or, with ``None``, stop restricting) which skill sources are used."""
        self.active_sources = None if sources is None else frozenset(sources)

    def _filter(self, skills: list[Skill]) -> list[Skill]:
        if self.active_sources is None:
            return skills
        return [s for s in skills if s.source in self.active_sources]


def format_skill(skill: Skill) -> str:
    return f"- {skill.title}: {skill.text}" if skill.title else f"- {skill.text}"


def render_skill_block(
    skills: Sequence[Skill],
    count_tokens: Callable[[str], int] = lambda text: len(text.split()),
    budget_tokens: int | None = None,
    header: str = "Skills that may help with this task:",
) -> RenderedSkills:
    """Render ``skills`` in order under a token budget.

    Whole skills are kept or dropped, never cut mid-sentence: a skill that does not fit
    is dropped (and reported in ``dropped``) and later, shorter ones may still fit.
    ``count_tokens`` should be the policy tokenizer's length function (the default
    counts words).
    """
    if not skills:
        return EMPTY_SKILLS
    lines = [header]
    kept: list[Skill] = []
    dropped: list[str] = []
    tokens = count_tokens(header)
    for skill in skills:
        line = format_skill(skill)
        cost = count_tokens(line) + 1
        if budget_tokens is not None and tokens + cost > budget_tokens:
            dropped.append(skill.id)
            continue
        lines.append(line)
        kept.append(skill)
        tokens += cost
    if not kept:
        return RenderedSkills("", dropped=tuple(dropped))
    text = "\n".join(lines)
    return RenderedSkills(
        text=text,
        skill_ids=tuple(s.id for s in kept),
        sources=tuple(dict.fromkeys(s.source for s in kept)),
        tokens=count_tokens(text),
        dropped=tuple(dropped),
    )


@dataclass
class StaticSkillProvider(SkillProvider):
    """Gives every task the same skills (or, with ``by_category``, the general skills
    plus those whose category equals the task type)."""

    skills: list[Skill] = field(default_factory=list)
    by_category: bool = True

    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        chosen = [
            s
            for s in self.skills
            if not self.by_category or s.category in ("general", task.task_type)
        ]
        return self._filter(chosen)

    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.source for s in self.skills))

    def general_sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.source for s in self.skills if s.category == "general"))


class NoSkills(SkillProvider):
    """The zero-skill provider: nothing in context."""

    def __init__(self, cfg: object = None) -> None:
        del cfg  # takes the skills config like every provider, and needs none of it

    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        return []
