"""Prompt builder and action parser of the numberguess env.

Every step's prompt is a fresh single-turn chat rebuilt from the task, the last
``history_length`` turns, the current observation, the step number, the admissible
actions and the skill block (when skills are in context). The model answers
``<think>...</think><action>guess N</action>``; :func:`parse_action` builds the parser
that turns such an answer into the action sent to the env, and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from skillzero.contracts.env import ChatMessages, ParsedAction, PromptContext, history_window
from skillzero_numberguess.env import config_value, describe_task, parse_guess

ANSWER_FORMAT = (
    "First reason step by step inside <think> </think> tags, then give exactly one action "
    "inside <action> </action> tags, for example:\n"
    "<think>The number is between 1 and 10, so I try the middle.</think>"
    "<action>guess 5</action>"
)
# Longer contiguous lists of guesses are shown as a range, to keep prompts short.
MAX_LISTED_ACTIONS = 12


def format_admissible(actions: Sequence[str]) -> str:
    """The admissible actions as prompt text; a long run ``guess a``..``guess b`` is
    summarised as a range."""
    if not actions:
        return "(none)"
    numbers = sorted(n for n in map(parse_guess, actions) if n is not None)
    if (
        len(actions) > MAX_LISTED_ACTIONS
        and len(numbers) == len(actions)
        and numbers == list(range(numbers[0], numbers[-1] + 1))
    ):
        return f"guess N, for any whole number N from {numbers[0]} to {numbers[-1]}"
    return ", ".join(actions)


class NumberGuessPrompt:
    """Builds the one user message of each step (see the module docstring)."""

    def __init__(self, env_cfg: Mapping[str, Any] | None = None) -> None:
        self.history_length = int(config_value(env_cfg, "history_length", 2))

    def build(self, ctx: PromptContext) -> ChatMessages:
        parts = ["You are playing a number guessing game.", f"Task: {describe_task(ctx.task)}"]
        if ctx.skill_block.strip():
            parts.append(ctx.skill_block.strip())
        window = history_window(ctx.history, self.history_length)
        if window:
            lines = [f"Your last {len(window)} of {len(ctx.history)} turns (oldest first):"]
            first = len(ctx.history) - len(window) + 1
            for number, turn in enumerate(window, start=first):
                lines.append(f"[turn {number}] observation: {turn.observation}")
                lines.append(f"[turn {number}] action: {turn.action}")
            parts.append("\n".join(lines))
        parts.append(f"Step {ctx.step}. Current observation: {ctx.observation}")
        if ctx.admissible_actions is not None:
            parts.append(f"Admissible actions: {format_admissible(ctx.admissible_actions)}")
        parts.append(ANSWER_FORMAT)
        return [{"role": "user", "content": "\n\n".join(parts)}]


_WHITESPACE = re.compile(r"\s+")


class _Tag(NamedTuple):
    """An XML-ish tag pair, matched case-insensitively."""

    opening: str
    closing: str
    open_re: re.Pattern[str]
    close_re: re.Pattern[str]

    @classmethod
    def named(cls, name: str) -> _Tag:
        opening, closing = f"<{name}>", f"</{name}>"
        return cls(
            opening,
            closing,
            re.compile(re.escape(opening), re.IGNORECASE),
            re.compile(re.escape(closing), re.IGNORECASE),
        )


_ACTION_TAG = _Tag.named("action")
_THINK_TAG = _Tag.named("think")


def _invalid(reason: str) -> ParsedAction:
    return ParsedAction(action="", valid=False, reason=reason)


def _single_block(text: str, tag: _Tag) -> tuple[int, int] | str:
    """``(start, end)`` of the content of the one ``<tag>...</tag>`` block of ``text``
    (tags matched case-insensitively), or the reason why there is not exactly one."""
    opening, closing = tag.opening, tag.closing
    opens, closes = list(tag.open_re.finditer(text)), list(tag.close_re.finditer(text))
    if not opens and not closes:
        return f"no {opening}...{closing} block"
    if len(opens) != 1 or len(closes) != 1:
        return (
            f"expected exactly one {opening}...{closing} block, found {len(opens)} "
            f"{opening} and {len(closes)} {closing}"
        )
    start, end = opens[0].end(), closes[0].start()
    if end < start:
        return f"{closing} comes before {opening}"
    return start, end


def _parse(text: Any, admissible_actions: Sequence[str] | None) -> ParsedAction:
    if not isinstance(text, str):
        return _invalid(f"response is not text but {type(text).__name__}")
    action_span = _single_block(text, _ACTION_TAG)
    if isinstance(action_span, str):
        return _invalid(action_span)
    think_span = _single_block(text, _THINK_TAG)
    if isinstance(think_span, str):
        return _invalid(f"missing reasoning: {think_span}")
    if think_span[1] > action_span[0]:
        return _invalid("the <think> block must come before the <action> block")
    content = _WHITESPACE.sub(" ", text[action_span[0] : action_span[1]]).strip()
    if not content:
        return _invalid("empty <action> block")
    guess = parse_guess(content)
    if guess is None:
        shown = content if len(content) <= 40 else content[:37] + "..."
        return _invalid(f"action {shown!r} is not of the form 'guess N'")
    action = f"guess {guess}"
    if admissible_actions is not None and action not in admissible_actions:
        return _invalid(f"{action!r} is not an admissible action")
    return ParsedAction(action=action, valid=True)


def parse_action(env_cfg: Mapping[str, Any] | None = None) -> Callable[..., ParsedAction]:
    """The action parser of the numberguess env (``env_cfg`` is accepted for the factory
    signature; nothing in it changes parsing).

    The parser takes ``(text, admissible_actions=None)`` and returns a
    :class:`~skillzero.contracts.env.ParsedAction`: valid with the canonical ``guess N`` when
    the text holds exactly one ``<think>`` block followed by exactly one ``<action>``
    block whose content is ``guess N`` (and, when ``admissible_actions`` is given, one of
    them); otherwise invalid with ``action=""`` and a reason. It never raises.
    """

    def parse(text: str, admissible_actions: Sequence[str] | None = None) -> ParsedAction:
        try:
            return _parse(text, admissible_actions)
        except Exception as exc:  # the contract: never raise, whatever the input
            return _invalid(f"unparseable response ({type(exc).__name__})")

    return parse
