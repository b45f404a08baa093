"""Skill providers over a :class:`~skillzero.plugins.skills.bank.SkillBank`.

Every provider is built from the ``skills`` config group,
``{provider, bank, budget_tokens, params}``, and honours ``active_sources`` (the sources a
curriculum leaves in play; ``None`` = all):

``category``
    The general sources plus the sources the bank maps to the task's ``task_type``
    (category routing, as SKILL0 and SkillRL's template mode do).
``all``
    Every skill of the bank, in bank order.

Both take ``max_per_source`` (default: no limit): the first N skills of each source, in
bank order, so that every source still appears in a short prompt (where a
``budget_tokens`` cut would drop the later sources whole).
``embedding``
    The ``top_k_general`` general skills and the ``top_k_task`` task-specific skills
    (from any source) most similar to the task text, by cosine similarity of
    all-MiniLM-L6-v2 sentence embeddings (SkillRL's embedding mode, with a small
    encoder). See :mod:`skillzero.plugins.skills.embedding`.

Bank-loading params (all providers): ``include_mistakes`` (JSON banks; default true).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from skillzero.contracts.env import Task
from skillzero.contracts.skills import Skill, SkillProvider
from skillzero.core.config import cfg_get
from skillzero.plugins.skills.bank import SkillBank, SkillBankError, load_bank

__all__ = [
    "AllSkillsProvider",
    "BankSkillProvider",
    "CategorySkillProvider",
    "EmbeddingSkillProvider",
    "make_all_provider",
    "make_category_provider",
    "make_embedding_provider",
]


def _params(skills_cfg: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    params = cfg_get(skills_cfg, "params", {}) or {}
    return dict(params.items()) if hasattr(params, "items") else {}


def bank_from_config(skills_cfg: Mapping[str, Any] | Any | None) -> SkillBank:
    """Load the bank named by ``skills_cfg.bank`` (with the ``include_mistakes`` param)."""
    bank = cfg_get(skills_cfg, "bank")
    if bank is None:
        provider = cfg_get(skills_cfg, "provider", "?")
        raise SkillBankError(
            f"skill provider {provider!r} needs a bank: set skills.bank to a shipped bank "
            "name (e.g. alfworld) or a path (see docs/skills.md)"
        )
    params = _params(skills_cfg)
    return load_bank(str(bank), include_mistakes=bool(params.get("include_mistakes", True)))


class BankSkillProvider(SkillProvider):
    """A provider that chooses from a :class:`SkillBank`; exposes the bank's sources so
    that a curriculum can rank and withdraw them. ``max_per_source``: keep only the
    first N skills of each source (None: all)."""

    def __init__(self, bank: SkillBank, max_per_source: int | None = None) -> None:
        if max_per_source is not None and int(max_per_source) < 1:
            raise ValueError(f"max_per_source must be >= 1 or null, got {max_per_source}")
        self.bank = bank
        self.max_per_source = None if max_per_source is None else int(max_per_source)

    def _first_of_each_source(self, skills: list[Skill]) -> list[Skill]:
        if self.max_per_source is None:
            return skills
        seen: dict[str, int] = {}
        kept = []
        for skill in skills:
            seen[skill.source] = seen.get(skill.source, 0) + 1
            if seen[skill.source] <= self.max_per_source:
                kept.append(skill)
        return kept

    def sources(self) -> tuple[str, ...]:
        """Every source of the bank, in bank order."""
        return self.bank.sources()

    def general_sources(self) -> tuple[str, ...]:
        """The sources that serve every task."""
        return self.bank.general_sources


class CategorySkillProvider(BankSkillProvider):
    """General skills plus the skills of the sources mapped to ``task.task_type``."""

    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        sources = (*self.bank.general_sources, *self.bank.sources_for(task.task_type))
        return self._filter(self._first_of_each_source(list(self.bank.skills_of(sources))))


class AllSkillsProvider(BankSkillProvider):
    """Every skill of the bank, whatever the task."""

    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        return self._filter(
            self._first_of_each_source(list(self.bank.skills_of(self.bank.sources())))
        )


class EmbeddingSkillProvider(BankSkillProvider):
    """The general and task-specific skills most similar to the task text.

    Skills are embedded once (as ``"title. text"``); task texts are embedded on first
    sight and cached (:meth:`prefetch` embeds many in batches). Scores are cosine
    similarities of L2-normalised mean-pooled embeddings. With an empty task text the
    task type (underscores as spaces) stands in for it.
    """

    def __init__(
        self,
        bank: SkillBank,
        *,
        top_k_general: int = 3,
        top_k_task: int = 3,
        encoder: Any = None,
        cache_size: int = 65536,
    ) -> None:
        super().__init__(bank)
        if top_k_general < 0 or top_k_task < 0:
            raise ValueError("top_k_general and top_k_task must be >= 0")
        if cache_size < 1:
            raise ValueError("cache_size must be >= 1")
        self.top_k_general = top_k_general
        self.top_k_task = top_k_task
        if encoder is None:
            from skillzero.plugins.skills.embedding import MiniLMEncoder

            encoder = MiniLMEncoder()
        self.encoder = encoder
        self.cache_size = cache_size
        self._skill_vectors: Any = None
        self._text_cache: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def skill_text(skill: Skill) -> str:
        """What is embedded for a skill."""
        return f"{skill.title}. {skill.text}" if skill.title else skill.text

    def _skill_matrix(self) -> Any:
        if self._skill_vectors is None:
            self._skill_vectors = self.encoder.encode(
                [self.skill_text(s) for s in self.bank.skills]
            )
        return self._skill_vectors

    def prefetch(self, texts: Sequence[str]) -> None:
        """Embed the task texts not cached yet, in batches."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if not missing:
            return
        vectors = self.encoder.encode(missing)
        for text, vector in zip(missing, vectors, strict=True):
            self._remember(text, vector)

    def _remember(self, text: str, vector: Any) -> None:
        self._text_cache[text] = vector
        self._text_cache.move_to_end(text)
        while len(self._text_cache) > self.cache_size:
            self._text_cache.popitem(last=False)

    def _vector(self, text: str) -> Any:
        if text in self._text_cache:
            self._text_cache.move_to_end(text)
        else:
            self.prefetch([text])
        return self._text_cache[text]

    def scores(self, task_text: str) -> list[float]:
        """Cosine similarity of ``task_text`` with each skill of the bank, in bank order."""
        return [float(x) for x in self._skill_matrix() @ self._vector(task_text)]

    def skills_for(self, task: Task, task_text: str = "") -> list[Skill]:
        text = task_text.strip() or task.task_type.replace("_", " ")
        scores = self.scores(text)
        general = set(self.bank.general_sources)
        active = self.active_sources
        # Stable ordering on equal scores: bank order.
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        ranked = [
            self.bank.skills[i]
            for i in order
            if active is None or self.bank.skills[i].source in active
        ]
        chosen = [s for s in ranked if s.source in general][: self.top_k_general]
        chosen += [s for s in ranked if s.source not in general][: self.top_k_task]
        return chosen


def make_category_provider(skills_cfg: Mapping[str, Any] | Any) -> CategorySkillProvider:
    """Factory of the ``category`` provider. Params: ``max_per_source`` (null)."""
    return CategorySkillProvider(
        bank_from_config(skills_cfg), _params(skills_cfg).get("max_per_source")
    )


def make_all_provider(skills_cfg: Mapping[str, Any] | Any) -> AllSkillsProvider:
    """Factory of the ``all`` provider. Params: ``max_per_source`` (null)."""
    return AllSkillsProvider(
        bank_from_config(skills_cfg), _params(skills_cfg).get("max_per_source")
    )


def make_embedding_provider(skills_cfg: Mapping[str, Any] | Any) -> EmbeddingSkillProvider:
    """Factory of the ``embedding`` provider. Params: ``top_k_general`` (3),
    ``top_k_task`` (3), ``model_path`` (default: the packaged all-MiniLM-L6-v2),
    ``device`` (cpu), ``batch_size`` (64)."""
    from skillzero.plugins.skills.embedding import MiniLMEncoder

    params = _params(skills_cfg)
    encoder = MiniLMEncoder(
        model_path=params.get("model_path"),
        device=str(params.get("device", "cpu")),
        batch_size=int(params.get("batch_size", 64)),
    )
    return EmbeddingSkillProvider(
        bank_from_config(skills_cfg),
        top_k_general=int(params.get("top_k_general", 3)),
        top_k_task=int(params.get("top_k_task", 3)),
        encoder=encoder,
    )
