"""Prompt builder and action parser of the ALFWorld env.

Prompts carry the information of the verl-agent / SKILL0 ALFWorld templates, in our own
wording: the role, the task (from the first observation's ``Your task is to: ...``), the
skill provider's block when skills are in context, the number of steps taken so far,
the last ``history_length`` (observation, action) pairs with their step numbers, the
current step and observation, the admissible actions, and the answer format. Every
prompt is a fresh single-turn chat built from that bounded window, so its length does not
grow over an episode.

Response formats (``env.response_format``):

``standard``
    ``<think>...</think><action>...</action>``, verl-agent's ALFWorld format (the default,
    and what the GPU configs use); responses may run to the backend's ``max_new_tokens``.
``compact``
    ``<action>...</action>`` alone, 24 new tokens, generation stopped at ``</action>``:
    a format a 135M model can follow after a short warm start, for CPU runs. The prompt
    also restates the task just before the answer instruction, where a small model
    attends most. The benchmark (games, actions, reward) is the same; only the answer
    asked for is shorter.

Validity rules (verl-agent's ALFWorld projection, each one configurable): exactly one
``<action>...</action>`` block with non-empty content; a ``<think>`` tag followed
somewhere later by ``</think>`` (``require_think``); no CJK ideographs U+4E00-U+9FFF
anywhere in the response (``reject_cjk``); the action is stripped and lower-cased
(``lowercase``). verl-agent does not check that the action is admissible, and neither do
we unless ``require_admissible`` is set. Tags are matched case-sensitively, as in verl-agent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from skillzero.contracts.env import (
    ChatMessages,
    ParsedAction,
    PromptContext,
    ResponseFormat,
    history_window,
)
from skillzero.contracts.env import response_format as _lookup_format
from skillzero.contracts.settings import cfg_get

TASK_MARKER = "Your task is to: "
ROLE = (
    "You are an expert household agent in ALFWorld, a text-based simulation of rooms "
    "and objects. You act by typing one command per step."
)
ANSWER_FORMAT = (
    "Reason step by step about what to do next inside <think> </think> tags. Then write "
    "exactly one action from the list above inside <action> </action> tags."
)
COMPACT_ANSWER_FORMAT = (
    "Write exactly one action from the list above inside <action> </action> tags."
)
NO_ACTIONS = "(none)"


RESPONSE_FORMATS: dict[str, ResponseFormat] = {
    "standard": ResponseFormat(
        "standard", think=True, instruction=ANSWER_FORMAT, max_new_tokens=None
    ),
    "compact": ResponseFormat(
        "compact",
        think=False,
        instruction=COMPACT_ANSWER_FORMAT,
        max_new_tokens=24,
        stop=("</action>",),
    ),
}


def response_format(env_cfg: Mapping[str, Any] | Any | None) -> ResponseFormat:
    """The :class:`ResponseFormat` named by ``env.response_format`` (default
    ``standard``); an unknown name is an error that lists the known ones."""
    return _lookup_format(env_cfg, RESPONSE_FORMATS, "ALFWorld")


def task_description(observation: str) -> str:
    """The goal stated in an ALFWorld first observation (the text after
    ``Your task is to: ``), or ``""`` when there is none."""
    start = observation.find(TASK_MARKER)
    if start < 0:
        return ""
    return observation[start + len(TASK_MARKER) :].strip()


def format_actions(actions: Sequence[str] | None) -> str:
    """Admissible actions, one per line."""
    if not actions:
        return NO_ACTIONS
    return "\n".join(f"- {a}" for a in actions)


class AlfworldPrompt:
    """Builds the one user message of each step (see the module docstring).

    ``env_cfg``: reads ``history_length`` (default 2) and ``response_format``.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.history_length = int(cfg_get(env_cfg, "history_length", 2))
        self.format = response_format(env_cfg)

    def sampling_overrides(self) -> dict[str, Any]:
        """Sampling settings the response format needs (see
        :class:`skillzero.contracts.env.PromptBuilder`)."""
        return self.format.sampling_overrides()

    def task_text(self, ctx: PromptContext) -> str:
        """The goal of the episode, from the first observation of ``ctx``."""
        for source in (
            ctx.first_observation,
            ctx.history[0].observation if ctx.history else "",
            ctx.observation,
        ):
            text = task_description(source or "")
            if text:
                return text
        return ""

    def build(self, ctx: PromptContext) -> ChatMessages:
        parts = [ROLE]
        skills = ctx.skill_block.strip()
        # ctx.step, not len(history): a caller may pass a shortened history (to fit a
        # token limit) without changing how many steps the agent has taken.
        taken = max(ctx.step - 1, len(ctx.history))
        if taken == 0:
            # First step: the observation itself states the task.
            if skills:
                parts.append(skills)
            parts.append(f"Your current observation is:\n{ctx.observation}")
        else:
            task = self.task_text(ctx)
            if task:
                parts.append(f"Your task is to: {task}")
            if skills:
                parts.append(skills)
            window = history_window(ctx.history, self.history_length)
            lines = [f"You have already taken {taken} step(s)."]
            if window:
                first = taken - len(window) + 1
                lines.append(
                    f"Here are your last {len(window)} observation(s) and the action you "
                    "took after each:"
                )
                for number, turn in enumerate(window, start=first):
                    lines.append(f"[Step {number}] Observation: {turn.observation}")
                    lines.append(f"[Step {number}] Action: {turn.action}")
            parts.append("\n".join(lines))
            parts.append(
                f"This is step {taken + 1}. Your current observation is:\n{ctx.observation}"
            )
        parts.append("The actions you can take now are:\n" + format_actions(ctx.admissible_actions))
        if self.format.name == "compact":
            # Small models copy from what is near the answer: the goal restated next to
            # the action list is what lets them pick the right object to take.
            task = self.task_text(ctx)
            if task:
                parts.append(f"Remember, your task is to: {task}")
        parts.append(self.format.instruction)
        return [{"role": "user", "content": "\n\n".join(parts)}]


# ----------------------------------------------------------------------------------------
# Action parsing
# ----------------------------------------------------------------------------------------

ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_CJK = re.compile("[\u4e00-\u9fff]")
NOOP_ACTION = ""
"""What the engine receives for an invalid response: not a command, so the engine
answers ``Nothing happens.`` and the game does not change."""


class AlfworldActionParser:
    """Turns an LLM response into the command sent to the engine; never raises.

    ``env_cfg``: ``require_think`` (``null``: as the response format asks, i.e. true for
    ``standard`` and false for ``compact``), ``reject_cjk``, ``lowercase`` (true by
    default) and ``require_admissible`` (false). See the module docstring for the rules.
    Invalid responses give ``ParsedAction(action="", valid=False, reason=...)``.
    :meth:`render` is the inverse: the response that the format expects for an action
    (used to turn expert actions into supervised targets).
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.format = response_format(env_cfg)
        require_think = cfg_get(env_cfg, "require_think", None)
        self.require_think = self.format.think if require_think is None else bool(require_think)
        self.reject_cjk = bool(cfg_get(env_cfg, "reject_cjk", True))
        self.lowercase = bool(cfg_get(env_cfg, "lowercase", True))
        self.require_admissible = bool(cfg_get(env_cfg, "require_admissible", False))

    def __call__(self, text: str, admissible_actions: Sequence[str] | None = None) -> ParsedAction:
        try:
            return self._parse(text, admissible_actions)
        except Exception as exc:  # the contract: never raise, whatever the input
            return _invalid(f"unparseable response ({type(exc).__name__})")

    def render(self, action: str, thought: str | None = None) -> str:
        """The response of this format that parses to ``action``; with the ``standard``
        format, ``thought`` fills the think block (a plain statement of the step when
        ``None``: experts have plans, not reasoning text)."""
        if self.format.think:
            thought = thought if thought is not None else f"Next I will {action}."
            return f"{THINK_OPEN}{thought}{THINK_CLOSE}\n{ACTION_OPEN}{action}{ACTION_CLOSE}"
        return f"{ACTION_OPEN}{action}{ACTION_CLOSE}"

    def _parse(self, text: Any, admissible_actions: Sequence[str] | None) -> ParsedAction:
        if not isinstance(text, str):
            return _invalid(f"response is not text but {type(text).__name__}")
        opens, closes = text.count(ACTION_OPEN), text.count(ACTION_CLOSE)
        if opens == 0 and closes == 0:
            return _invalid(f"no {ACTION_OPEN}...{ACTION_CLOSE} block")
        if opens != 1 or closes != 1:
            return _invalid(
                f"expected exactly one {ACTION_OPEN}...{ACTION_CLOSE} block, found {opens} "
                f"{ACTION_OPEN} and {closes} {ACTION_CLOSE}"
            )
        start = text.index(ACTION_OPEN) + len(ACTION_OPEN)
        end = text.index(ACTION_CLOSE)
        if end < start:
            return _invalid(f"{ACTION_CLOSE} comes before {ACTION_OPEN}")
        if self.require_think:
            think_open = text.find(THINK_OPEN)
            if think_open < 0 or text.find(THINK_CLOSE, think_open + len(THINK_OPEN)) < 0:
                return _invalid(f"no {THINK_OPEN}...{THINK_CLOSE} block")
        if self.reject_cjk and _CJK.search(text):
            return _invalid("the response contains CJK characters")
        action = text[start:end].strip()
        if self.lowercase:
            action = action.lower()
        if not action:
            return _invalid(f"empty {ACTION_OPEN} block")
        if (
            self.require_admissible
            and admissible_actions is not None
            and action not in admissible_actions
        ):
            shown = action if len(action) <= 60 else action[:57] + "..."
            return _invalid(f"{shown!r} is not an admissible action")
        return ParsedAction(action=action, valid=True)


def _invalid(reason: str) -> ParsedAction:
    return ParsedAction(action=NOOP_ACTION, valid=False, reason=reason)
