"""Prompt builder and action parser of the ALFWorld env.

Prompts carry the information of the verl-agent / SKILL0 ALFWorld templates, in our own
wording: the role, the task (from the first observation's ``Your task is to: ...``), the
skill provider's block when skills are in context, the number of steps taken so far,
the last ``history_length`` (observation, action) pairs with their step numbers, the
current step and observation, the admissible actions, and the answer format
``<think>...</think><action>...</action>``. Every prompt is a fresh single-turn chat
built from that bounded window, so its length does not grow over an episode.

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

from skillzero.core.env import ChatMessages, ParsedAction, PromptContext, history_window
from skillzero.plugins.alfworld.config import cfg_get

TASK_MARKER = "Your task is to: "
ROLE = (
    "You are an expert household agent in ALFWorld, a text-based simulation of rooms "
    "and objects. You act by typing one command per step."
)
ANSWER_FORMAT = (
    "Reason step by step about what to do next inside <think> </think> tags. Then write "
    "exactly one action from the list above inside <action> </action> tags."
)
NO_ACTIONS = "(none)"


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

    ``env_cfg``: reads ``history_length`` (default 2).
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.history_length = int(cfg_get(env_cfg, "history_length", 2))

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
        parts.append(ANSWER_FORMAT)
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

    ``env_cfg``: ``require_think``, ``reject_cjk``, ``lowercase`` (all true by default)
    and ``require_admissible`` (false). See the module docstring for the rules. Invalid
    responses give ``ParsedAction(action="", valid=False, reason=...)``.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.require_think = bool(cfg_get(env_cfg, "require_think", True))
        self.reject_cjk = bool(cfg_get(env_cfg, "reject_cjk", True))
        self.lowercase = bool(cfg_get(env_cfg, "lowercase", True))
        self.require_admissible = bool(cfg_get(env_cfg, "require_admissible", False))

    def __call__(self, text: str, admissible_actions: Sequence[str] | None = None) -> ParsedAction:
        try:
            return self._parse(text, admissible_actions)
        except Exception as exc:  # the contract: never raise, whatever the input
            return _invalid(f"unparseable response ({type(exc).__name__})")

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
