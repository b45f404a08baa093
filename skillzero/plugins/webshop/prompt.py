"""Prompt builder and action parser of the WebShop env.

Prompts carry the information of verl-agent's WebShop templates, in our own wording:
the role, the task (the instruction from the first page), the skill provider's block
when skills are in context, the number of steps taken, the last ``history_length``
(observation, action) pairs, the current step and observation, the admissible actions,
and the answer format ``<think>...</think><action>...</action>``. As in verl-agent, an
observation is shown without its ``WebShop [SEP] Instruction: [SEP] <task>`` head, each
remaining segment quoted (``'Back to Search' [SEP] 'Page 1 (Total results: 50)' ...``),
the admissible actions as a bracketed list of quoted items (``'search[<your query>]',``
``'click[buy now]',``), and a prompt with history longer than ``max_prompt_chars``
(13,000) falls back to the prompt without history.

Response formats (``env.response_format``): ``standard`` asks for verl-agent's
``<think>...</think><action>...</action>``; ``compact`` for ``<action>...</action>``
alone, with at most 48 new tokens and generation stopped at ``</action>`` (for small
models on CPU; the benchmark is unchanged).

Validity rules (verl-agent's WebShop projection, each configurable where it is a choice):
the response is searched, lower-cased, for the first ``<action>`` and the first
``</action>`` after it, and the text between them, stripped, is the action (lower-cased
when ``lowercase``); ``<think>`` and ``</think>`` must both appear (``require_think``);
no CJK ideographs U+4E00-U+9FFF (``reject_cjk``). verl-agent still sends the action of a
response that fails the think or CJK rule; here every invalid response sends the empty
action, which the env answers as a no-op. ``require_admissible`` (off, as verl-agent)
also rejects actions that are not on the page's list (any ``search[...]`` counts when
``search[<your query>]`` is listed).
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

SEP = " [SEP] "
INSTRUCTION_MARKER = "Instruction:"
ROLE = (
    "You are an expert online shopping agent in WebShop, a simulated e-commerce web site. "
    "You search for products, open them, pick their options and buy the one that fits "
    "the instruction."
)
ANSWER_FORMAT = (
    "Now choose your next action. First reason step by step about the page and about "
    "which admissible action brings you closest to buying the right product; put this "
    "reasoning inside <think> </think> tags. Then write exactly one admissible action "
    "inside <action> </action> tags."
)
COMPACT_ANSWER_FORMAT = (
    "Now write exactly one admissible action inside <action> </action> tags "
    "(for a search, put your own query in the brackets: search[...])."
)


RESPONSE_FORMATS: dict[str, ResponseFormat] = {
    "standard": ResponseFormat("standard", True, ANSWER_FORMAT, None),
    "compact": ResponseFormat("compact", False, COMPACT_ANSWER_FORMAT, 48, ("</action>",)),
}
"""``standard``: verl-agent's ``<think>...</think><action>...</action>``; ``compact``:
``<action>...</action>`` alone, 48 new tokens (a search query or a long option value
fits), generation stopped at ``</action>``: for small models on CPU."""


def response_format(env_cfg: Mapping[str, Any] | Any | None) -> ResponseFormat:
    """The :class:`ResponseFormat` named by ``env.response_format`` (default
    ``standard``); an unknown name is an error that lists the known ones."""
    return _lookup_format(env_cfg, RESPONSE_FORMATS, "WebShop")


def task_description(observation: str) -> str:
    """The instruction shown on a WebShop page (the segment after ``Instruction:``), or
    ``""`` when the page shows none."""
    parts = observation.split(SEP)
    for position, part in enumerate(parts[:-1]):
        if part.strip() == INSTRUCTION_MARKER:
            return parts[position + 1].strip()
    return ""


def format_observation(observation: str, task: str) -> str:
    """The observation as the agent sees it: the segments after the task, each quoted;
    the raw observation when it does not show the task (the done page)."""
    parts = observation.split(SEP)
    if task and task in parts:
        rest = parts[parts.index(task) + 1 :]
        return SEP.join(f"'{p}'" for p in rest)
    return observation


def format_actions(actions: Sequence[str] | None) -> str:
    """The admissible actions as a bracketed list, one quoted action per line."""
    lines = "\n".join(f"'{a}'," for a in actions or ())
    return f"[\n{lines}\n]"


class WebshopPrompt:
    """Builds the one user message of each step (see the module docstring).

    ``env_cfg``: reads ``history_length`` (default 2), ``max_prompt_chars`` (13,000) and
    ``response_format``.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.history_length = int(cfg_get(env_cfg, "history_length", 2))
        self.max_prompt_chars = int(cfg_get(env_cfg, "max_prompt_chars", 13000))
        self.format = response_format(env_cfg)

    def sampling_overrides(self) -> dict[str, Any]:
        """Sampling settings the response format needs (see
        :class:`skillzero.contracts.env.PromptBuilder`)."""
        return self.format.sampling_overrides()

    def task_text(self, ctx: PromptContext) -> str:
        """The instruction of the episode, from the first page it appears on."""
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
        task = self.task_text(ctx)
        taken = max(ctx.step - 1, len(ctx.history))
        window = history_window(ctx.history, self.history_length)
        content = self._render(ctx, task, taken, window)
        if window and len(content) > self.max_prompt_chars:
            content = self._render(ctx, task, taken, ())
        return [{"role": "user", "content": content}]

    def _render(self, ctx: PromptContext, task: str, taken: int, window: Sequence[Any]) -> str:
        parts = [ROLE, f"Your task is to: {task}." if task else "Your task is not stated."]
        skills = ctx.skill_block.strip()
        if skills:
            parts.append(skills)
        current = format_observation(ctx.observation, task)
        if taken and window:
            first = taken - len(window) + 1
            lines = [
                f"You have already taken {taken} step(s). Your last {len(window)} "
                "observation(s) and the action you took after each:"
            ]
            for number, turn in enumerate(window, start=first):
                shown = format_observation(turn.observation, task)
                lines.append(f"[Observation {number}: {shown}, Action {number}: '{turn.action}']")
            parts.append("\n".join(lines))
            parts.append(f"This is step {taken + 1}. Your current observation is: {current}")
        elif taken:
            parts.append(
                f"You have already taken {taken} step(s). This is step {taken + 1}. "
                f"Your current observation is: {current}"
            )
        else:
            parts.append(f"Your current observation is: {current}")
        parts.append(
            "Your admissible actions in the current situation are:\n"
            + format_actions(ctx.admissible_actions)
        )
        parts.append(self.format.instruction)
        return "\n\n".join(parts)


# ----------------------------------------------------------------------------------------
# Action parsing
# ----------------------------------------------------------------------------------------

ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_CJK = re.compile("[\u4e00-\u9fff]")
# tags are found case-insensitively (verl-agent lower-cases the response first)
_ACTION_OPEN = re.compile(re.escape(ACTION_OPEN), re.IGNORECASE)
_ACTION_CLOSE = re.compile(re.escape(ACTION_CLOSE), re.IGNORECASE)
NOOP_ACTION = ""
"""What the env receives for an invalid response: not an action, so nothing happens."""


class WebshopActionParser:
    """Turns an LLM response into the action sent to the env; never raises.

    ``env_cfg``: ``require_think`` (``null``: as the response format asks, true for
    ``standard``, false for ``compact``), ``reject_cjk``, ``lowercase`` (true by default)
    and ``require_admissible`` (false). See the module docstring for the rules.
    :meth:`render` is the inverse (expert actions as supervised targets).
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

    def _parse(self, text: Any, admissible_actions: Sequence[str] | None) -> ParsedAction:
        if not isinstance(text, str):
            return _invalid(f"response is not text but {type(text).__name__}")
        opening = _ACTION_OPEN.search(text)
        closing = _ACTION_CLOSE.search(text, opening.end()) if opening else None
        if opening is None or closing is None:
            return _invalid(f"no {ACTION_OPEN}...{ACTION_CLOSE} block")
        if self.require_think and (THINK_OPEN not in text or THINK_CLOSE not in text):
            return _invalid(f"no {THINK_OPEN}...{THINK_CLOSE} block")
        if self.reject_cjk and _CJK.search(text):
            return _invalid("the response contains CJK characters")
        action = text[opening.end() : closing.start()].strip()
        if self.lowercase:
            action = action.lower()
        if not action:
            return _invalid(f"empty {ACTION_OPEN} block")
        if self.require_admissible and admissible_actions is not None:
            allowed = action in admissible_actions or (
                action.startswith("search[") and "search[<your query>]" in admissible_actions
            )
            if not allowed:
                shown = action if len(action) <= 60 else action[:57] + "..."
                return _invalid(f"{shown!r} is not an admissible action")
        return ParsedAction(action=action, valid=True)

    def render(self, action: str, thought: str | None = None) -> str:
        """The response of this format that parses to ``action``; with the ``standard``
        format ``thought`` fills the think block (a plain statement of the step when
        ``None``)."""
        if self.format.think:
            thought = thought if thought is not None else f"Next I will {action}."
            return f"{THINK_OPEN}{thought}{THINK_CLOSE}\n{ACTION_OPEN}{action}{ACTION_CLOSE}"
        return f"{ACTION_OPEN}{action}{ACTION_CLOSE}"


def _invalid(reason: str) -> ParsedAction:
    return ParsedAction(action=NOOP_ACTION, valid=False, reason=reason)
