"""The multi-turn text-environment contract.

An environment plugin provides four pieces (see ``register_envs`` in
:mod:`skillzero.contracts.hookspecs`):

``TextEnv``
    A :class:`gymnasium.Env` whose observations and actions are strings. ``reset`` takes
    the task to play in ``options={"task": task}``; ``info`` always carries the keys of
    :data:`INFO_KEYS` (``won``, ``admissible_actions``, ``task_id``, ``task_type``).
``tasks``
    Lists the :class:`Task` objects of a split, in a stable order.
``PromptBuilder``
    Turns the agent's view of an episode (:class:`PromptContext`) into a fresh single-turn
    chat. Every step's prompt is rebuilt from a bounded history window, so its length
    stays bounded however long the episode runs.
``ActionParser``
    Turns an LLM response into the action sent to the engine, with a validity flag. It
    never raises: malformed output becomes an invalid action (which the trainer may
    penalise) and the engine receives a no-op.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
from gymnasium import spaces

from skillzero.contracts.settings import cfg_get

INFO_KEYS: tuple[str, ...] = ("won", "admissible_actions", "task_id", "task_type")
"""Keys every ``TextEnv`` puts in the ``info`` dict of ``reset`` and ``step``."""

# Gymnasium's Text space checks membership against a charset; LLM text may hold any
# character, so the spaces below advertise a broad printable set and the envs accept
# any string regardless.
TEXT_CHARSET = string.printable


@dataclass(frozen=True)
class Task:
    """One playable task of a benchmark.

    ``task_id`` is stable across runs and machines (e.g. a game path relative to the data
    root), ``task_type`` is its category (e.g. ``pick_and_place_simple``), ``split`` the
    split it belongs to, and ``payload`` whatever the env needs to start it (must be
    picklable: it travels to worker processes).
    """

    task_id: str
    task_type: str
    split: str = "train"
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """What one env reports after ``reset`` or ``step``, as the pool returns it."""

    observation: str
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    won: bool = False
    admissible_actions: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class TextEnv(gym.Env[str, str], ABC):
    """A text environment playing one episode of one :class:`Task` at a time.

    Subclasses implement :meth:`_reset` and :meth:`_step`; this base class fills the
    ``info`` keys every consumer relies on and enforces ``max_steps`` truncation.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    max_text_length: ClassVar[int] = 1 << 20

    def __init__(self, max_steps: int = 50) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps = max_steps
        self.observation_space = spaces.Text(self.max_text_length, charset=TEXT_CHARSET)
        self.action_space = spaces.Text(self.max_text_length, charset=TEXT_CHARSET)
        self.task: Task | None = None
        self.steps_taken = 0

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        """Start ``task``; return the first observation and an info dict (``won`` and
        ``admissible_actions`` where the benchmark has them)."""

    @abstractmethod
    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        """Apply ``action``; return (observation, reward, terminated, info)."""

    @classmethod
    def prepare_steps(cls, steps: Sequence[tuple[TextEnv, str]]) -> None:
        """Called by a pool worker with every ``(env, action)`` of this class that it is
        about to step in one call, before the first of them steps.

        Envs whose steps wait on I/O (a retrieval server, a web API) override it to send
        that I/O once for all of them, so that one pool step costs one round trip, not
        one per env. The default does nothing. An exception raised here is ignored by
        the pool: each env's :meth:`step` must still work on its own.
        """

    # -- gymnasium API ------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        task = (options or {}).get("task")
        if not isinstance(task, Task):
            raise ValueError("TextEnv.reset needs options={'task': Task(...)}")
        self.task = task
        self.steps_taken = 0
        observation, info = self._reset(task, seed)
        return observation, self._complete_info(info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("step() called before reset()")
        if not isinstance(action, str):
            action = str(action)
        observation, reward, terminated, info = self._step(action)
        self.steps_taken += 1
        truncated = not terminated and self.steps_taken >= self.max_steps
        return observation, float(reward), bool(terminated), truncated, self._complete_info(info)

    def _complete_info(self, info: dict[str, Any]) -> dict[str, Any]:
        assert self.task is not None
        info = dict(info)
        info["won"] = bool(info.get("won", False))
        info.setdefault("admissible_actions", None)
        info["task_id"] = self.task.task_id
        info["task_type"] = self.task.task_type
        return info


# ----------------------------------------------------------------------------------------
# The agent's side: prompts and action parsing
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnRecord:
    """One past turn as the agent saw it: the observation, then the action it took."""

    observation: str
    action: str


@dataclass(frozen=True)
class PromptContext:
    """Everything a prompt may show at one step of an episode.

    ``step`` is the number of the step being decided, counted from 1 (so it equals
    ``len(history) + 1`` when the whole history is kept). ``history`` holds the turns
    before this one, oldest first; builders show only the last ``history_length`` of
    them. ``first_observation`` is the episode's first observation (it usually states
    the task). ``skill_block`` is the rendered output of a skill
    provider (empty when no skills are in context); builders put it in their skill slot.
    """

    task: Task
    observation: str
    step: int
    history: Sequence[TurnRecord] = ()
    admissible_actions: Sequence[str] | None = None
    first_observation: str = ""
    skill_block: str = ""


ChatMessages = list[dict[str, str]]


@runtime_checkable
class PromptBuilder(Protocol):
    """Builds the chat for one step. ``history_length`` bounds the window shown.

    Optional: ``sampling_overrides() -> Mapping[str, Any]``, sampling settings that the
    env's response format needs (e.g. ``{"max_new_tokens": 24, "stop": ["</action>"]}``
    for a short action-only format). The trainer, ``skillzero eval`` and ``skillzero
    play`` apply them on top of ``backend.sampling`` / ``backend.val_sampling``; see
    :func:`sampling_overrides`. A builder whose env has :class:`ResponseFormat` entries
    returns its format's ``sampling_overrides()``.
    """

    history_length: int

    def build(self, ctx: PromptContext) -> ChatMessages:
        """Return the chat messages (``[{"role": "user", "content": ...}]``) for ``ctx``."""
        ...


@dataclass(frozen=True)
class ParsedAction:
    """The parser's verdict on one response.

    ``action`` is what the engine receives (a no-op when ``valid`` is false), ``reason``
    says why a response was invalid.
    """

    action: str
    valid: bool
    reason: str = ""


@runtime_checkable
class ActionParser(Protocol):
    """Turns LLM text into an action. Must never raise, whatever the input.

    Optional: ``render(action: str) -> str``, the inverse: the response of the env's
    format that parses to ``action``. ``skillzero sft`` needs it to turn expert actions
    into supervised targets.
    """

    def __call__(
        self, text: str, admissible_actions: Sequence[str] | None = None
    ) -> ParsedAction: ...


def sampling_overrides(prompt_builder: Any) -> dict[str, Any]:
    """The sampling settings ``prompt_builder``'s response format asks for (an empty dict
    when the builder has no ``sampling_overrides``)."""
    method = getattr(prompt_builder, "sampling_overrides", None)
    return dict(method()) if callable(method) else {}


@dataclass(frozen=True)
class ResponseFormat:
    """What the agent is asked to write, and the sampling limits that fit it.

    An env names its formats (``env.response_format``: ``standard``, the benchmark's
    published format, and ``compact``, a short one for small models, where it has one)
    and picks one with :func:`response_format`; only the instruction text and the limits
    are the env's own. Its prompt builder's ``sampling_overrides()`` returns the chosen
    format's :meth:`sampling_overrides`.
    """

    name: str
    think: bool
    """The format asks for a ``<think>...</think>`` block before the action."""
    instruction: str
    """The answer-format sentence the prompt ends with."""
    max_new_tokens: int | None = None
    """``None``: the backend's own setting."""
    stop: tuple[str, ...] = ()

    def sampling_overrides(self) -> dict[str, Any]:
        """The sampling settings this format needs (see :class:`PromptBuilder`)."""
        overrides: dict[str, Any] = {}
        if self.max_new_tokens is not None:
            overrides["max_new_tokens"] = self.max_new_tokens
        if self.stop:
            overrides["stop"] = list(self.stop)
        return overrides


def response_format(
    env_cfg: Mapping[str, Any] | Any | None,
    formats: Mapping[str, ResponseFormat],
    env_name: str,
) -> ResponseFormat:
    """The format of ``formats`` named by ``env_cfg``'s ``response_format`` (default
    ``standard``); an unknown name is a :class:`ValueError` that names ``env_name`` and
    lists the known formats."""
    name = str(cfg_get(env_cfg, "response_format", "standard") or "standard")
    if name not in formats:
        raise ValueError(
            f"env.response_format={name!r} is not a response format of {env_name}; "
            f"choose one of {sorted(formats)}"
        )
    return formats[name]


def render_response(parser: Any, action: str) -> str:
    """The response that ``parser`` reads as ``action`` (see :class:`ActionParser`)."""
    render = getattr(parser, "render", None)
    if not callable(render):
        raise TypeError(
            f"the action parser {type(parser).__name__} has no render(action) method, so "
            "expert actions cannot be turned into responses"
        )
    return str(render(action))


def history_window(history: Sequence[TurnRecord], history_length: int) -> Sequence[TurnRecord]:
    """The last ``history_length`` turns (none when ``history_length`` is 0)."""
    if history_length <= 0:
        return ()
    return history[-history_length:]
