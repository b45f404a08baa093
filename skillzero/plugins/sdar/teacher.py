"""SDAR's teacher: the same policy, with privileged skills in its prompt.

After each rollout the :class:`SDARTeacher` callback rebuilds every step's prompt from
the :class:`~skillzero.contracts.env.PromptContext` the student prompt was built from, adds
the privileged skill block, and scores the student's own response tokens under it
(``teacher_log_probs``, at the rollout weights). SDAR, GRPO+OPSD, OPSD, Skill-SD and
RLSD all read that key.

Where the block goes. The teacher's chat is the student's chat with
``"[Privileged Skill Information]\\n{skills}\\n\\n"`` put *before the student's text
inside the last user message*, so the chat template's role tokens (and any system
block) still come first. The released code instead decoded the templated student
prompt and put the block in front of everything, template tokens included.

Over-long prompts (``env.max_prompt_tokens``). The released code left-truncated the
teacher prompt, which cuts the *start of the skill block* first. Here:

1. the history window shown is shortened, most recent turns kept
   (``history_kept`` = shown turns, ... , 0), until the prompt fits;
2. if even a prompt without history does not fit, it is returned whole, over the limit
   (``over_limit``): the overflow is at most the size of the skill block, and cutting
   anything else would either drop the skills or change the current observation the
   teacher judges the action against;
3. only when the skill block *on its own* is longer than ``max_prompt_tokens`` is it cut,
   at a line boundary (one skill per line), to fit in ``max_prompt_tokens`` tokens
   (``skill_cut``).

``truncated`` is true when anything was cut (history or skills).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.env import ChatMessages, PromptBuilder, PromptContext

if TYPE_CHECKING:
    from tensordict import TensorDict

PRIVILEGED_HEADER = "[Privileged Skill Information]"

ApplyChatTemplate = Callable[[ChatMessages], Sequence[int]]


def privileged_block(skill_block: str) -> str:
    """The text put before the student's prompt (``""`` when there are no skills)."""
    if not skill_block.strip():
        return ""
    return f"{PRIVILEGED_HEADER}\n{skill_block}\n\n"


def shown_history(builder: PromptBuilder, ctx: PromptContext) -> int:
    """How many past turns ``builder`` shows for ``ctx`` (its window, or all of them)."""
    window = getattr(builder, "history_length", None)
    total = len(ctx.history)
    return total if window is None else max(0, min(total, int(window)))


def teacher_chat(
    builder: PromptBuilder,
    ctx: PromptContext,
    skill_block: str,
    history_length: int | None = None,
) -> ChatMessages:
    """The student's chat for ``ctx`` with the privileged block in front of the text of
    its last user message.

    ``history_length`` keeps only the last turns of ``ctx.history`` (``ctx.step`` is
    left as it is, so the step number the prompt states does not change).
    """
    if history_length is not None:
        kept = tuple(ctx.history[-history_length:]) if history_length > 0 else ()
        ctx = dataclasses.replace(ctx, history=kept)
    messages = [dict(message) for message in builder.build(ctx)]
    users = [i for i, message in enumerate(messages) if message.get("role") == "user"]
    if not users:
        raise ValueError("the prompt builder returned a chat without a user message")
    last = users[-1]
    messages[last]["content"] = privileged_block(skill_block) + messages[last]["content"]
    return messages


@dataclass(frozen=True)
class TeacherPrompt:
    """A templated teacher prompt and what had to be done to fit it.

    ``history_kept``: past turns shown; ``truncated``: history or skills were cut;
    ``skill_cut``: the skill block was cut (only when it alone exceeds the limit);
    ``over_limit``: the prompt is longer than ``max_prompt_tokens`` (nothing more could be
    cut without cutting the skills or the current observation).
    """

    ids: list[int]
    history_kept: int
    truncated: bool
    skill_cut: bool
    over_limit: bool = False


def build_teacher_prompt(
    builder: PromptBuilder,
    ctx: PromptContext,
    skill_block: str,
    apply_chat_template: ApplyChatTemplate,
    max_prompt_tokens: int,
) -> TeacherPrompt:
    """Template the teacher prompt of ``ctx`` under ``max_prompt_tokens`` by the rules of
    the module docstring: history first, the skill block only when it alone is too long.
    """

    def ids_for(block: str, history: int) -> list[int]:
        return list(apply_chat_template(teacher_chat(builder, ctx, block, history)))

    shown = shown_history(builder, ctx)
    ids = ids_for(skill_block, shown)
    if len(ids) <= max_prompt_tokens:
        return TeacherPrompt(ids, shown, truncated=False, skill_cut=False)
    for history in range(shown - 1, -1, -1):
        ids = ids_for(skill_block, history)
        if len(ids) <= max_prompt_tokens:
            return TeacherPrompt(ids, history, truncated=True, skill_cut=False)
    # No history left to cut. The skill block's cost is measured in context, so that it
    # includes the header and whatever the tokenizer merges across the boundary.
    student_ids = len(apply_chat_template(builder.build(dataclasses.replace(ctx, history=()))))

    def fits(block: str) -> bool:
        return len(ids_for(block, 0)) - student_ids <= max_prompt_tokens

    if fits(skill_block):
        return TeacherPrompt(ids, 0, truncated=shown > 0, skill_cut=False, over_limit=True)
    cut = _cut_skill_block(skill_block, fits)
    ids = ids_for(cut, 0)
    return TeacherPrompt(
        ids, 0, truncated=True, skill_cut=True, over_limit=len(ids) > max_prompt_tokens
    )


def _largest(ok: Callable[[int], bool], upper: int) -> int:
    """The largest ``n`` in ``[0, upper]`` with ``ok(n)``, for ``ok`` true up to some
    point and false after it (``ok(0)`` is taken as true)."""
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _cut_skill_block(block: str, fits: Callable[[str], bool]) -> str:
    """The longest prefix of ``block`` that ``fits``: whole lines when at least one line
    fits, otherwise a prefix of the first line."""
    lines = block.split("\n")
    keep = _largest(lambda n: fits("\n".join(lines[:n])), len(lines))
    if keep > 0:
        return "\n".join(lines[:keep])
    first = lines[0]
    return first[: _largest(lambda n: fits(first[:n]), len(first))]


# ----------------------------------------------------------------------------------------
# The callback
# ----------------------------------------------------------------------------------------

DEFAULT_TEACHER_SKILLS: dict[str, Any] = {"provider": "category", "bank": None, "params": {}}
"""The teacher's skills when the callback is given none: the general skills plus those
of the task's type, from the bank named after the env (SDAR's ``skill_mapping.json``
routing)."""


class SDARTeacher(TrainerCallback):
    """Adds ``teacher_log_probs`` to every collected batch (callback ``sdar_teacher``).

    ``skills``: a skills-config mapping for the *privileged* provider (``provider``,
    ``bank``, ``params``); missing keys come from :data:`DEFAULT_TEACHER_SKILLS`, and
    ``bank: null`` means the bank named after the env. ``skill_all``: give the teacher
    every skill of the bank (provider ``all``), as SDAR's ``skill_all=true``. The
    student's own prompt is not affected: that is the ``skills`` config group. The block
    is rendered by ``trainer.render_skills`` under the teacher's own ``budget_tokens``
    (null by default: the whole block, as in the released code).

    Logs ``sdar/teacher_prompt_tokens`` (mean), ``sdar/skill_block_tokens`` (mean),
    ``sdar/truncated_samples``, ``sdar/skill_cut_samples``, ``sdar/over_limit_samples``
    and ``sdar/no_skill_samples`` (counts over the batch).
    """

    name = "sdar_teacher"

    def __init__(self, skills: Mapping[str, Any] | None = None, skill_all: bool = False) -> None:
        cfg = dict(DEFAULT_TEACHER_SKILLS)
        cfg.update(dict(skills or {}))
        if skill_all:
            cfg["provider"] = "all"
        self.skills_cfg = cfg
        self.provider: Any = None

    def provider_for(self, trainer: Any) -> Any:
        """The privileged skill provider (built on first use)."""
        if self.provider is None:
            cfg = dict(self.skills_cfg)
            if cfg.get("bank") is None:
                cfg["bank"] = trainer.env_cfg["name"]
            self.provider = trainer.build_skill_provider(cfg)
        return self.provider

    def on_train_start(self, trainer: Any) -> None:
        # Fail on a wrong skills config before the first rollout, not after it.
        self.provider_for(trainer)

    def after_rollout(self, trainer: Any, step: int, batch: TensorDict) -> None:
        from skillzero.contracts.trajectory import K

        provider = self.provider_for(trainer)
        max_tokens = int(trainer.env_cfg["max_prompt_tokens"])
        rendered: dict[str, Any] = {}
        prompts: list[TeacherPrompt] = []
        skill_blocks: list[Any] = []
        for ctx in batch[K.PROMPT_CONTEXT]:
            # The privileged skills depend on the task only, so render them once per task.
            key = ctx.task.task_id
            if key not in rendered:
                rendered[key] = trainer.render_skills(
                    provider, ctx, budget_tokens=self.skills_cfg.get("budget_tokens")
                )
            skills = rendered[key]
            skill_blocks.append(skills)
            prompts.append(
                build_teacher_prompt(
                    trainer.prompt_builder,
                    ctx,
                    skills.text,
                    trainer.apply_chat_template,
                    max_tokens,
                )
            )
        batch[K.TEACHER_LOG_PROBS] = trainer.score_responses([p.ids for p in prompts], batch)
        if getattr(trainer, "is_main_process", True):
            trainer.log(teacher_metrics(prompts, skill_blocks), step)


def teacher_metrics(prompts: Sequence[TeacherPrompt], skills: Sequence[Any]) -> dict[str, float]:
    """The callback's per-batch metrics (see :class:`SDARTeacher`); ``skills`` are the
    rows' :class:`~skillzero.contracts.skills.RenderedSkills`."""
    n = max(len(prompts), 1)
    return {
        "sdar/teacher_prompt_tokens": sum(len(p.ids) for p in prompts) / n,
        "sdar/skill_block_tokens": sum(s.tokens for s in skills) / n,
        "sdar/truncated_samples": float(sum(p.truncated for p in prompts)),
        "sdar/skill_cut_samples": float(sum(p.skill_cut for p in prompts)),
        "sdar/over_limit_samples": float(sum(p.over_limit for p in prompts)),
        "sdar/no_skill_samples": float(sum(not s.text.strip() for s in skills)),
    }
