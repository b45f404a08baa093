"""ALFWorld prompts and action parsing (no engine, no data needed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skillzero.contracts.env import (
    ActionParser,
    ParsedAction,
    PromptBuilder,
    PromptContext,
    Task,
    TurnRecord,
)
from skillzero.plugins.alfworld.config import AlfworldConfig
from skillzero.plugins.alfworld.prompt import (
    NOOP_ACTION,
    AlfworldActionParser,
    AlfworldPrompt,
    task_description,
)

FIRST = (
    "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking "
    "quickly around you, you see a cabinet 2, a cabinet 1, a coffeemachine 1, and a "
    "sinkbasin 1.\n\nYour task is to: put a clean mug in coffeemachine."
)
TASK = Task("json_2.1.1/valid_unseen/x/trial/game.tw-pddl", "pick_clean_then_place_in_recep")
ADMISSIBLE = ["go to cabinet 1", "go to cabinet 2", "inventory", "look"]


@pytest.fixture
def parse() -> AlfworldActionParser:
    return AlfworldActionParser(AlfworldConfig())


# ----------------------------------------------------------------------------------------
# Parser: validity rules
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("<think>go</think><action>go to cabinet 1</action>", "go to cabinet 1"),
        ("<think>a\nb</think>\n<action>  Go To Cabinet 1 \n</action>", "go to cabinet 1"),
        ("<action>look</action> <think>after is fine too</think>", "look"),
        (
            "prefix <think></think> mid <action>take mug 1 from cabinet 1</action> tail",
            "take mug 1 from cabinet 1",
        ),
        ("<think>x</think><action>not admissible at all</action>", "not admissible at all"),
    ],
)
def test_valid_responses(parse: AlfworldActionParser, text: str, action: str) -> None:
    result = parse(text, ADMISSIBLE)
    assert result == ParsedAction(action=action, valid=True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("go to cabinet 1", "no <action>"),
        ("<think>x</think>", "no <action>"),
        ("<think>x</think><action>a</action><action>b</action>", "exactly one"),
        ("<think>x</think><action>a", "exactly one"),
        ("<think>x</think>a</action>", "exactly one"),
        ("<think>x</think></action>a<action>", "comes before"),
        ("<action>look</action>", "no <think>"),
        ("<think>x<action>look</action>", "no <think>"),
        ("</think>x<think><action>look</action>", "no <think>"),
        ("<think>我想</think><action>look</action>", "CJK"),
        ("<think>x</think><action>look 看</action>", "CJK"),
        ("<think>x</think><action>   </action>", "empty"),
        ("<THINK>x</THINK><ACTION>look</ACTION>", "no <action>"),
    ],
)
def test_invalid_responses(parse: AlfworldActionParser, text: str, reason: str) -> None:
    result = parse(text, ADMISSIBLE)
    assert not result.valid
    assert result.action == NOOP_ACTION == ""
    assert reason in result.reason


def test_validity_rules_are_configurable() -> None:
    loose = AlfworldActionParser({"require_think": False, "reject_cjk": False, "lowercase": False})
    assert loose("<action>Look 看</action>") == ParsedAction("Look 看", True)
    strict = AlfworldActionParser({"require_admissible": True})
    assert strict("<think>x</think><action>look</action>", ADMISSIBLE).valid
    bad = strict("<think>x</think><action>fly away</action>", ADMISSIBLE)
    assert not bad.valid
    assert "not an admissible action" in bad.reason
    # without a list of admissible actions there is nothing to check against
    assert strict("<think>x</think><action>fly away</action>").valid


@pytest.mark.parametrize("value", [None, 3, b"<action>look</action>", ["<action>x</action>"]])
def test_non_text_is_invalid(parse: AlfworldActionParser, value: Any) -> None:
    result = parse(value)  # type: ignore[arg-type]
    assert not result.valid
    assert "not text" in result.reason


def test_parser_satisfies_the_protocol(parse: AlfworldActionParser) -> None:
    assert isinstance(parse, ActionParser)


# ----------------------------------------------------------------------------------------
# Parser: never raises (property-based)
# ----------------------------------------------------------------------------------------

TAGS = ["<think>", "</think>", "<action>", "</action>", "<ACTION>", "<", ">", "/"]
tagged_text = st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=30)), max_size=30).map(
    "".join
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), tagged_text, st.binary().map(lambda b: b.decode("latin-1"))))
@example(text="\ud800<action>\udfff</action>")
@example(text="<think>" * 10_000 + "<action>x</action>")
def test_parser_never_raises_on_any_text(text: str) -> None:
    parse = AlfworldActionParser(AlfworldConfig())
    result = parse(text, ADMISSIBLE)
    assert isinstance(result, ParsedAction)
    assert isinstance(result.action, str)
    assert isinstance(result.reason, str)
    if result.valid:
        assert result.action
        assert result.action == result.action.strip()
        assert result.action == result.action.lower()
        assert text.count("<action>") == 1
        assert text.count("</action>") == 1
        assert "<think>" in text
        assert "</think>" in text
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in text)
    else:
        assert result.action == ""
        assert result.reason


@settings(max_examples=200, deadline=None)
@given(
    think=st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=200),
    action=st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=80),
)
def test_well_formed_responses_round_trip(think: str, action: str) -> None:
    parse = AlfworldActionParser(AlfworldConfig())
    result = parse(f"<think>{think}</think><action>{action}</action>")
    has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in think + action)
    if has_cjk or not action.strip():
        assert not result.valid
    else:
        assert result.valid
        assert result.action == action.strip().lower()


@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_huge_inputs(parse: AlfworldActionParser, size: int) -> None:
    filler = "é" * size
    assert not parse(filler).valid
    result = parse(f"<think>{filler}</think><action>look</action>")
    assert result == ParsedAction("look", True)
    result = parse("<action>" * (size // 8))
    assert not result.valid
    assert "exactly one" in result.reason


# ----------------------------------------------------------------------------------------
# Prompts
# ----------------------------------------------------------------------------------------


def test_task_description() -> None:
    assert task_description(FIRST) == "put a clean mug in coffeemachine."
    assert task_description("You arrive at cabinet 1.") == ""


def test_first_step_prompt() -> None:
    builder = AlfworldPrompt(AlfworldConfig())
    assert isinstance(builder, PromptBuilder)
    ctx = PromptContext(TASK, FIRST, step=1, admissible_actions=ADMISSIBLE)
    [message] = builder.build(ctx)
    assert message["role"] == "user"
    text = message["content"]
    assert FIRST in text
    for action in ADMISSIBLE:
        assert f"- {action}\n" in text + "\n"
    assert "<think>" in text
    assert "</think>" in text
    assert "<action>" in text
    assert "</action>" in text
    assert "step(s)" not in text  # no history yet
    assert "ALFWorld" in text


def _history(n: int) -> list[TurnRecord]:
    turns = [TurnRecord(FIRST, "go to cabinet 1")]
    turns += [TurnRecord(f"You arrive at place {i}.", f"go to place {i + 1}") for i in range(1, n)]
    return turns


def test_later_step_prompt_shows_task_window_and_step_count() -> None:
    builder = AlfworldPrompt({"history_length": 2})
    history = _history(5)
    ctx = PromptContext(
        TASK,
        "You arrive at place 5.",
        step=6,
        history=history,
        admissible_actions=ADMISSIBLE,
        first_observation=FIRST,
        skill_block="Skills that may help with this task:\n- Clean before placing.",
    )
    text = builder.build(ctx)[0]["content"]
    assert "Your task is to: put a clean mug in coffeemachine." in text
    assert "already taken 5 step(s)" in text
    assert "[Step 4] Observation: You arrive at place 3." in text
    assert "[Step 4] Action: go to place 4" in text
    assert "[Step 5] Observation: You arrive at place 4." in text
    assert "[Step 5] Action: go to place 5" in text
    assert "[Step 3]" not in text
    assert "place 2." not in text
    assert "This is step 6" in text
    assert "You arrive at place 5." in text
    assert "- Clean before placing." in text
    # the skill block sits before the history, after the task
    assert text.index("Your task") < text.index("Skills that") < text.index("[Step 4]")
    assert "<action>" in text
    assert "- go to cabinet 1" in text


def test_compact_format_asks_for_the_action_alone_and_restates_the_task() -> None:
    builder = AlfworldPrompt({"history_length": 1, "response_format": "compact"})
    assert builder.sampling_overrides() == {"max_new_tokens": 24, "stop": ["</action>"]}
    for ctx in (
        PromptContext(TASK, FIRST, step=1, admissible_actions=ADMISSIBLE),
        PromptContext(
            TASK,
            "You arrive at cabinet 1.",
            step=2,
            history=_history(1),
            admissible_actions=ADMISSIBLE,
            first_observation=FIRST,
        ),
    ):
        text = builder.build(ctx)[0]["content"]
        assert "<think>" not in text
        reminder = "Remember, your task is to: put a clean mug in coffeemachine."
        # between the action list and the answer instruction, where the answer starts
        assert text.index("- go to cabinet 1") < text.index(reminder) < text.index("<action>")
    standard = AlfworldPrompt({"history_length": 1}).build(ctx)[0]["content"]
    assert "Remember, your task" not in standard


def test_task_comes_from_history_without_first_observation() -> None:
    builder = AlfworldPrompt({"history_length": 1})
    ctx = PromptContext(TASK, "Nothing happens.", step=3, history=_history(2))
    text = builder.build(ctx)[0]["content"]
    assert "Your task is to: put a clean mug in coffeemachine." in text
    assert "(none)" in text  # no admissible actions given


def test_history_length_zero_shows_no_turns() -> None:
    builder = AlfworldPrompt({"history_length": 0})
    ctx = PromptContext(TASK, "obs", step=4, history=_history(3), first_observation=FIRST)
    text = builder.build(ctx)[0]["content"]
    assert "already taken 3 step(s)" in text
    assert "[Step" not in text


def test_prompt_length_stays_bounded_over_50_steps() -> None:
    builder = AlfworldPrompt(AlfworldConfig())
    lengths = []
    for step in range(2, 51):
        history = [TurnRecord(FIRST, "look")] + [
            TurnRecord("You arrive at cabinet 1. The cabinet 1 is closed.", "open cabinet 1")
        ] * (step - 2)
        ctx = PromptContext(
            TASK,
            "You open the cabinet 1. The cabinet 1 is open.",
            step=step,
            history=history,
            admissible_actions=ADMISSIBLE,
            first_observation=FIRST,
        )
        lengths.append(len(builder.build(ctx)[0]["content"]))
    # from step 4 on, the window is full: only the step numbers' digits change
    assert max(lengths[2:]) - min(lengths[2:]) <= 8
    assert max(lengths) < 2 * min(lengths)
