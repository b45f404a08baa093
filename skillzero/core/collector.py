"""The collector: plays episodes in an :class:`EnvPool` with a :class:`RolloutBackend`.

Each turn, every env still in an episode gets a fresh single-turn prompt, rebuilt by the
env's :class:`PromptBuilder` from a :class:`PromptContext` (task, current observation,
bounded history window, admissible actions, skill block); all those prompts go to the
backend in one batched ``generate`` call; the env's :class:`ActionParser` turns each
response into an action and the pool steps the envs that acted. Envs that finished stop
generating. Every (prompt, response) pair becomes one :class:`StepSample`; when an
episode ends, its return and outcome are stamped on every step it produced.

The same loop serves training (one task per group, every env starts together) and
evaluation (a queue of tasks longer than the pool: an env that finishes is refilled
with the next task at once).

Prompts longer than ``max_prompt_tokens`` are shortened by showing fewer history turns
(the step count in the prompt stays right); only if the prompt without any history still
does not fit are its oldest tokens cut, and that is counted in ``truncated_prompts``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skillzero.contracts.env import ActionParser, PromptBuilder, PromptContext, Task, TurnRecord
from skillzero.contracts.rollout import Generation, RolloutBackend, SamplingParams
from skillzero.contracts.skills import (
    EMPTY_SKILLS,
    RenderedSkills,
    SkillProvider,
    render_skill_block,
)
from skillzero.contracts.trajectory import StepSample
from skillzero.core.pool import EnvPool

RenderSkills = Callable[[SkillProvider, PromptContext], RenderedSkills]


@dataclass(frozen=True)
class Assignment:
    """One episode to play: the task, the env seed, and the group it belongs to."""

    task: Task
    seed: int
    group_id: int


@dataclass
class EpisodeResult:
    """One finished episode, as metrics and curricula see it."""

    task: Task
    won: bool
    length: int
    valid_actions: int
    env_return: float
    group_id: int = 0
    traj_id: int = 0
    skill_sources: tuple[str, ...] = ()
    skill_ids: tuple[str, ...] = ()
    skill_tokens: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    truncated: bool = False
    error: str | None = None
    actions: tuple[str | None, ...] = ()
    """The action of each step as the env received it (``None``: an invalid response)."""
    seed: int | None = None
    final_info: dict[str, float] = field(default_factory=dict)
    """The numeric entries of the last step's ``info`` (e.g. WebShop's ``task_score``)."""

    def as_record(self) -> dict[str, Any]:
        """The dict that env metric functions read (``task_type``, ``won``, ...), with the
        numeric entries of the last step's ``info`` (never overriding those keys)."""
        return {
            **self.final_info,
            "task_type": self.task.task_type,
            "task_id": self.task.task_id,
            "won": self.won,
            "length": self.length,
            "valid_actions": self.valid_actions,
        }


@dataclass
class RolloutResult:
    """What one :meth:`Collector.run` produced."""

    samples: list[StepSample]
    episodes: list[EpisodeResult]
    generation_seconds: float = 0.0
    env_seconds: float = 0.0
    prompt_seconds: float = 0.0
    generate_calls: int = 0
    truncated_prompts: int = 0
    shortened_histories: int = 0
    prompts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Episode:
    """The collector's view of the episode running in one env."""

    assignment: Assignment
    traj_id: int
    observation: str
    first_observation: str
    admissible: list[str] | None
    skills: RenderedSkills = EMPTY_SKILLS
    history: list[TurnRecord] = field(default_factory=list)
    samples: list[StepSample] = field(default_factory=list)
    env_return: float = 0.0
    valid_actions: int = 0
    prompt_tokens: int = 0
    response_tokens: int = 0
    skill_ids: dict[str, None] = field(default_factory=dict)
    skill_sources: dict[str, None] = field(default_factory=dict)
    actions: list[str | None] = field(default_factory=list)


def skill_block_for(
    provider: SkillProvider,
    ctx: PromptContext,
    prompt_builder: PromptBuilder,
    count_tokens: Callable[[str], int],
    budget_tokens: int | None = None,
) -> RenderedSkills:
    """The skill block ``provider`` gives for the episode of ``ctx``: skills chosen for
    the task (and its text, from the builder's ``task_text`` when it has one), rendered
    under ``budget_tokens`` counted with ``count_tokens``."""
    task_text_of = getattr(prompt_builder, "task_text", None)
    task_text = task_text_of(ctx) if callable(task_text_of) else ctx.first_observation
    return render_skill_block(
        provider.skills_for(ctx.task, task_text),
        count_tokens=count_tokens,
        budget_tokens=budget_tokens,
    )


def fit_prompt(
    ctx: PromptContext,
    prompt_builder: PromptBuilder,
    apply_chat_template: Callable[[list[dict[str, str]]], list[int]],
    max_prompt_tokens: int,
) -> tuple[list[int], PromptContext, bool]:
    """Prompt ids for ``ctx``, with the history window shortened until it fits.

    Returns the ids, the context actually used (its history possibly shortened) and
    whether tokens had to be cut after all history was dropped. Training, evaluation,
    ``skillzero sft`` and ``skillzero play`` all build prompts here.
    """
    shown = min(len(ctx.history), max(0, prompt_builder.history_length))
    used = (
        ctx
        if shown == len(ctx.history)
        else dataclasses.replace(ctx, history=tuple(ctx.history[len(ctx.history) - shown :]))
    )
    ids = apply_chat_template(prompt_builder.build(used))
    while len(ids) > max_prompt_tokens and shown > 0:
        shown -= 1
        used = dataclasses.replace(ctx, history=tuple(ctx.history[len(ctx.history) - shown :]))
        ids = apply_chat_template(prompt_builder.build(used))
    if len(ids) > max_prompt_tokens:
        return ids[-max_prompt_tokens:], used, True
    return ids, used, False


def invalid_history_action(reason: str) -> str:
    """How an invalid response appears in later prompts' history."""
    return f"(invalid response: {reason})" if reason else "(invalid response)"


class Collector:
    """Plays episodes in ``pool`` with ``backend`` (see the module docstring).

    ``apply_chat_template`` turns a chat into prompt token ids (defaults to the backend's);
    ``render_skills`` chooses and renders a provider's skill block for a prompt context
    (the trainer's, which counts tokens with the policy tokenizer).
    """

    def __init__(
        self,
        pool: EnvPool,
        backend: RolloutBackend,
        prompt_builder: PromptBuilder,
        parser: ActionParser,
        *,
        max_prompt_tokens: int,
        render_skills: RenderSkills | None = None,
        apply_chat_template: Callable[[list[dict[str, str]]], list[int]] | None = None,
        eos_token_id: int | None = None,
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.prompt_builder = prompt_builder
        self.parser = parser
        self.max_prompt_tokens = int(max_prompt_tokens)
        self.render_skills = render_skills
        self.apply_chat_template = apply_chat_template or backend.apply_chat_template
        self.eos_token_id = eos_token_id

    # -- prompts -------------------------------------------------------------------------
    def build_prompt(self, ctx: PromptContext) -> tuple[list[int], PromptContext, bool]:
        """Prompt ids for ``ctx`` (see :func:`fit_prompt`)."""
        return fit_prompt(
            ctx, self.prompt_builder, self.apply_chat_template, self.max_prompt_tokens
        )

    # -- the loop ------------------------------------------------------------------------
    def run(
        self,
        assignments: Sequence[Assignment],
        sampling: SamplingParams,
        *,
        skill_provider: SkillProvider | None = None,
        record_samples: bool = True,
        traj_id_start: int = 0,
        progress: Any = None,
        keep_prompts: int = 0,
    ) -> RolloutResult:
        """Play every assignment once; returns the step samples and episode results.

        With ``len(assignments) <= pool.num_envs`` assignment ``i`` runs in env ``i``
        (training keeps a group's members side by side that way); longer queues refill
        envs as they finish. ``sampling.seed``, when set, seeds each generate call
        (``seed + call number``), so a run is reproducible. ``progress`` is an optional
        tqdm-like bar advanced once per finished episode. ``keep_prompts``: keep the text
        of the first that many prompts and their responses in ``result.prompts``.
        """
        result = RolloutResult(samples=[], episodes=[])
        queue = list(assignments)
        running: dict[int, _Episode] = {}
        next_traj = traj_id_start
        pool_env_before = self.pool.timings.wall_seconds

        def start(envs: dict[int, Assignment]) -> None:
            nonlocal next_traj
            replies = self.pool.reset_envs({i: (a.task, a.seed) for i, a in envs.items()})
            for index in sorted(envs):
                reply = replies[index]
                episode = _Episode(
                    assignment=envs[index],
                    traj_id=next_traj,
                    observation=reply.observation,
                    first_observation=reply.observation,
                    admissible=reply.admissible_actions,
                )
                next_traj += 1
                if reply.done:  # the env failed to start the task: an empty episode
                    self._finish(episode, reply.info.get("error"), result, truncated=True)
                    if progress is not None:
                        progress.update(1)
                    continue
                if skill_provider is not None and self.render_skills is not None:
                    ctx = self._context(episode)
                    episode.skills = self.render_skills(skill_provider, ctx)
                running[index] = episode

        first = {i: queue.pop(0) for i in range(min(len(queue), self.pool.num_envs))}
        start(first)
        # an env that failed at reset is free again; keep starting until all are busy
        while queue and len(running) < self.pool.num_envs:
            free = [i for i in range(self.pool.num_envs) if i not in running]
            start({i: queue.pop(0) for i in free[: len(queue)]})

        while running:
            order = sorted(running)
            begin = time.perf_counter()
            prompts: list[list[int]] = []
            contexts: list[PromptContext] = []
            for index in order:
                episode = running[index]
                ids, used, cut = self.build_prompt(self._context(episode))
                if cut:
                    result.truncated_prompts += 1
                if len(used.history) < min(
                    len(episode.history), self.prompt_builder.history_length
                ):
                    result.shortened_histories += 1
                prompts.append(ids)
                contexts.append(used)
            result.prompt_seconds += time.perf_counter() - begin

            params = sampling
            if sampling.seed is not None:
                params = dataclasses.replace(sampling, seed=sampling.seed + result.generate_calls)
            begin = time.perf_counter()
            generations = self.backend.generate(prompts, params)
            result.generation_seconds += time.perf_counter() - begin
            result.generate_calls += 1

            actions: dict[int, str] = {}
            parsed_of: dict[int, Any] = {}
            for position, (index, gens) in enumerate(zip(order, generations, strict=True)):
                episode = running[index]
                parsed = self.parser(gens[0].text, episode.admissible)
                if len(result.prompts) < keep_prompts:
                    chat = self.prompt_builder.build(contexts[position])
                    result.prompts.append(
                        {
                            "task_id": episode.assignment.task.task_id,
                            "turn": len(episode.history) + 1,
                            "prompt": "\n".join(m["content"] for m in chat),
                            "response": gens[0].text,
                            "skill_sources": list(episode.skills.sources),
                        }
                    )
                parsed_of[index] = parsed
                actions[index] = parsed.action
            replies = self.pool.step(actions)

            refill: dict[int, Assignment] = {}
            for position, index in enumerate(order):
                episode = running[index]
                gen: Generation = generations[position][0]
                parsed = parsed_of[index]
                reply = replies[index]
                ctx = contexts[position]
                response_ids, response_log_probs = self._response(gen)
                episode.prompt_tokens += len(prompts[position])
                episode.response_tokens += len(response_ids)
                episode.valid_actions += int(parsed.valid)
                episode.env_return += float(reply.reward)
                episode.skill_ids.update(dict.fromkeys(episode.skills.skill_ids))
                episode.skill_sources.update(dict.fromkeys(episode.skills.sources))
                if record_samples:
                    episode.samples.append(
                        StepSample(
                            prompt_ids=prompts[position],
                            response_ids=response_ids,
                            rollout_log_probs=response_log_probs,
                            reward=float(reply.reward),
                            group_id=episode.assignment.group_id,
                            traj_id=episode.traj_id,
                            step=len(episode.history),
                            action_valid=parsed.valid,
                            done=reply.done,
                            anchor_observation=episode.observation,
                            task_type=episode.assignment.task.task_type,
                            skill_ids=episode.skills.skill_ids,
                            task_id=episode.assignment.task.task_id,
                            prompt_context=ctx,
                        )
                    )
                shown_action = (
                    parsed.action if parsed.valid else invalid_history_action(parsed.reason)
                )
                episode.history.append(TurnRecord(episode.observation, shown_action))
                episode.actions.append(parsed.action if parsed.valid else None)
                episode.observation = reply.observation
                if reply.admissible_actions is not None or reply.done:
                    episode.admissible = reply.admissible_actions
                if reply.done:
                    del running[index]
                    self._finish(
                        episode,
                        reply.info.get("error"),
                        result,
                        won=reply.won,
                        truncated=reply.truncated,
                        final_info=reply.info,
                    )
                    if progress is not None:
                        progress.update(1)
                    if queue:
                        refill[index] = queue.pop(0)
            if refill:
                start(refill)
        result.env_seconds = self.pool.timings.wall_seconds - pool_env_before
        return result

    # -- helpers -------------------------------------------------------------------------
    def _context(self, episode: _Episode) -> PromptContext:
        return PromptContext(
            task=episode.assignment.task,
            observation=episode.observation,
            step=len(episode.history) + 1,
            history=tuple(episode.history),
            admissible_actions=tuple(episode.admissible) if episode.admissible else None,
            first_observation=episode.first_observation,
            skill_block=episode.skills.text,
        )

    def _response(self, gen: Generation) -> tuple[list[int], list[float]]:
        """The response tokens the policy produced, EOS included when it stopped on one
        (the trainer must learn to stop), with the sampler's log-probs."""
        ids, log_probs = list(gen.token_ids), list(gen.log_probs)
        if gen.finish_reason == "eos":
            eos = gen.extra.get("eos_token_id", self.eos_token_id)
            if eos is not None:
                ids.append(int(eos))
                log_probs.append(float(gen.extra.get("eos_log_prob", 0.0)))
        if not ids and self.eos_token_id is not None:
            # an empty response still needs one token to carry its advantage
            ids, log_probs = [int(self.eos_token_id)], [0.0]
        return ids, log_probs

    def _finish(
        self,
        episode: _Episode,
        error: str | None,
        result: RolloutResult,
        *,
        won: bool = False,
        truncated: bool = False,
        final_info: dict[str, Any] | None = None,
    ) -> None:
        for sample in episode.samples:
            sample.episode_return = episode.env_return
            sample.won = won
        result.samples.extend(episode.samples)
        result.episodes.append(
            EpisodeResult(
                task=episode.assignment.task,
                won=won,
                length=len(episode.history),
                valid_actions=episode.valid_actions,
                env_return=episode.env_return,
                group_id=episode.assignment.group_id,
                traj_id=episode.traj_id,
                skill_sources=tuple(episode.skill_sources),
                skill_ids=tuple(episode.skill_ids),
                skill_tokens=episode.skills.tokens,
                prompt_tokens=episode.prompt_tokens,
                response_tokens=episode.response_tokens,
                truncated=truncated,
                error=error,
                actions=tuple(episode.actions),
                seed=episode.assignment.seed,
                final_info={
                    str(k): float(v)
                    for k, v in (final_info or {}).items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
            )
        )
