"""Prompt builder and action parser of the Search-QA env (the Search-R1 protocol).

The agent answers with ``<search> query </search>`` (the env returns the top passages
inside ``<information> ... </information>``) or ``<answer> text </answer>`` (the
episode ends), after optional reasoning inside ``<think> ... </think>``.

Prompts carry the information of the Search-R1 / verl-agent search template in our own
wording: the role, the skill provider's block when skills are in context, the question,
how many steps were taken and how many remain, the last ``history_length`` steps (each
search with the ``<information>`` it returned, as verl-agent's search memory shows
them), and the answer format. Every prompt is a fresh single-turn chat.

Validity rules (verl-agent's search projection): the response is cut after the first
``</search>`` or ``</answer>``; it then needs exactly one ``<search>...</search>`` or
exactly one ``<answer>...</answer>`` block, not both kinds, with non-empty content.
Tags are matched case-sensitively. The action the env receives is the canonical block
(``<search>query</search>``); an invalid response becomes the empty action, which the
env answers with an explanation and no search.
"""

from __future__ import annotations

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

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "RESPONSE_FORMATS",
    "SEARCH_CLOSE",
    "SEARCH_OPEN",
    "SearchActionParser",
    "SearchPrompt",
    "parse_response",
    "response_format",
]

SEARCH_OPEN, SEARCH_CLOSE = "<search>", "</search>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
NOOP_ACTION = ""
ROLE = (
    "You are a research agent answering a question step by step. You do not know the "
    "facts you need: a search engine returns them, a few passages per query."
)
STANDARD_FORMAT = (
    "First reason inside <think> </think>. Then do exactly one of two things:\n"
    "(1) search: write a query inside <search> </search>; the top passages come back "
    "inside <information> </information>;\n"
    "(2) answer: when you know the answer, write it inside <answer> </answer>, a few "
    "words without explanation, e.g. <answer> Beijing </answer>."
)
COMPACT_FORMAT = (
    "Write exactly one of: <search> query </search> to look something up, or "
    "<answer> a few words </answer> when you know the answer. Nothing else."
)
LAST_STEP = "This is your last step: give your answer now."

RESPONSE_FORMATS: dict[str, ResponseFormat] = {
    "standard": ResponseFormat(
        "standard", think=True, instruction=STANDARD_FORMAT, stop=(SEARCH_CLOSE, ANSWER_CLOSE)
    ),
    "compact": ResponseFormat(
        "compact",
        think=False,
        instruction=COMPACT_FORMAT,
        max_new_tokens=32,
        stop=(SEARCH_CLOSE, ANSWER_CLOSE),
    ),
}
"""Both stop generating at the end of the first block; ``compact`` is also short."""


def response_format(env_cfg: Mapping[str, Any] | Any | None) -> ResponseFormat:
    """The :class:`ResponseFormat` named by ``env.response_format`` (default
    ``standard``); an unknown name is an error that lists the known ones."""
    return _lookup_format(env_cfg, RESPONSE_FORMATS, "Search-QA")


def question_of(ctx: PromptContext) -> str:
    """The question of the episode: the task's, else its first observation."""
    payload = ctx.task.payload or {}
    question = payload.get("question") if isinstance(payload, Mapping) else None
    return str(question) if question else (ctx.first_observation or ctx.observation)


class SearchPrompt:
    """Builds the one user message of each step (see the module docstring).

    ``env_cfg``: ``history_length`` (4), ``max_steps`` (4, to say how many steps
    remain) and ``response_format`` (``standard``: think, then search or answer;
    ``compact``: the tag alone, for small models on CPU).
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.history_length = int(cfg_get(env_cfg, "history_length", 4))
        self.max_steps = int(cfg_get(env_cfg, "max_steps", 4))
        self.format = response_format(env_cfg)
        self.response_format = self.format.name

    def task_text(self, ctx: PromptContext) -> str:
        """The question (what skill providers match skills against)."""
        return question_of(ctx)

    def sampling_overrides(self) -> dict[str, Any]:
        """Stop generating at the end of the first block; the compact format is short."""
        return self.format.sampling_overrides()

    def build(self, ctx: PromptContext) -> ChatMessages:
        parts = [ROLE]
        skills = ctx.skill_block.strip()
        if skills:
            parts.append(skills)
        parts.append(f"Question: {question_of(ctx)}")
        taken = max(ctx.step - 1, len(ctx.history))
        left = max(1, self.max_steps - taken)
        if taken:
            window = list(history_window(ctx.history, self.history_length))
            lines = [f"You have taken {taken} step(s); {left} step(s) remain, this one included."]
            if window:
                first = taken - len(window) + 1
                lines.append(f"Your last {len(window)} step(s), each with what it returned:")
                # the observation after step k is the next turn's observation (or the
                # current one for the last step shown)
                after = [turn.observation for turn in window[1:]] + [ctx.observation]
                for number, (turn, result) in enumerate(zip(window, after, strict=True), first):
                    lines.append(f"Step {number}: {turn.action}\n{result}")
            parts.append("\n".join(lines))
        parts.append(self.format.instruction)
        if left == 1:
            parts.append(LAST_STEP)
        return [{"role": "user", "content": "\n\n".join(parts)}]


# ----------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------


def _invalid(reason: str) -> ParsedAction:
    return ParsedAction(action=NOOP_ACTION, valid=False, reason=reason)


def parse_response(text: Any) -> ParsedAction:
    """The action of a response under the Search-R1 rules (see the module docstring);
    never raises."""
    try:
        return _parse(text)
    except Exception as exc:  # the contract: never raise, whatever the input
        return _invalid(f"unparseable response ({type(exc).__name__})")


def _parse(text: Any) -> ParsedAction:
    if not isinstance(text, str):
        return _invalid(f"response is not text but {type(text).__name__}")
    ends = [i + len(tag) for tag in (SEARCH_CLOSE, ANSWER_CLOSE) if (i := text.find(tag)) >= 0]
    if ends:
        text = text[: min(ends)]
    searches, answers = text.count(SEARCH_OPEN), text.count(ANSWER_OPEN)
    if searches and answers:
        return _invalid(f"both {SEARCH_OPEN} and {ANSWER_OPEN}: write only one")
    if searches > 1 or answers > 1:
        tag = SEARCH_OPEN if searches > 1 else ANSWER_OPEN
        return _invalid(f"more than one {tag}")
    if not searches and not answers:
        return _invalid(
            f"no {SEARCH_OPEN}...{SEARCH_CLOSE} or {ANSWER_OPEN}...{ANSWER_CLOSE} block"
        )
    opening, closing, what = (
        (SEARCH_OPEN, SEARCH_CLOSE, "query") if searches else (ANSWER_OPEN, ANSWER_CLOSE, "answer")
    )
    start = text.index(opening) + len(opening)
    end = text.find(closing, start)
    if end < 0:
        return _invalid(f"{opening} is not closed by {closing}")
    content = " ".join(text[start:end].split())
    if not content:
        return _invalid(f"empty {what}")
    return ParsedAction(action=f"{opening}{content}{closing}", valid=True)


class SearchActionParser:
    """Turns an LLM response into the env's action (see :func:`parse_response`)."""

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        del env_cfg  # the rules are the protocol's; nothing to configure

    def __call__(self, text: str, admissible_actions: Sequence[str] | None = None) -> ParsedAction:
        return parse_response(text)

    def render(self, action: str) -> str:
        """A response that parses to ``action`` (a canonical search or answer block)."""
        parsed = parse_response(action)
        if not parsed.valid:
            raise ValueError(f"not a search or answer action: {action!r}")
        return parsed.action.replace(">", "> ", 1).replace("</", " </", 1)
