"""Search-QA protocol pieces that need no server: answer scoring (EM normalisation, F1),
the action parser, the prompt builder and the episode metrics."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skillzero.contracts.env import ActionParser, PromptBuilder, PromptContext, Task, TurnRecord
from skillzero.plugins.search.config import SearchConfig
from skillzero.plugins.search.env import format_information
from skillzero.plugins.search.metrics import episode_metrics
from skillzero.plugins.search.prompt import (
    LAST_STEP,
    NOOP_ACTION,
    SearchActionParser,
    SearchPrompt,
    parse_response,
)
from skillzero.plugins.search.scoring import exact_match, f1_score, normalize_answer

# ----------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The Beatles", "beatles"),
        ("  a   Tale of Two Cities ", "tale of two cities"),
        ("U.S.A.", "usa"),
        ("Rock 'n' Roll!", "rock n roll"),
        ("An apple, the pear and a plum.", "apple pear and plum"),
        ("theatre", "theatre"),  # articles are whole words only
        ("anthem", "anthem"),
        ("14 December 1972 UTC", "14 december 1972 utc"),
        ("Wilhelm Conrad Röntgen", "wilhelm conrad röntgen"),  # non-ASCII kept
        ("", ""),
        ("\tA\nB\r\nC ", "b c"),
    ],
)
def test_normalize_answer(text: str, normalised: str) -> None:
    assert normalize_answer(text) == normalised


def test_exact_match_against_any_gold_answer() -> None:
    golds = ["14 December 1972 UTC", "December 1972"]
    assert exact_match("december 1972.", golds)
    assert exact_match("The  December 1972", golds)
    assert not exact_match("1972", golds)
    assert not exact_match("", golds)
    assert not exact_match("anything", [])


def test_f1_is_the_best_token_overlap() -> None:
    assert f1_score("December 1972", ["14 December 1972 UTC"]) == pytest.approx(2 / 3)
    assert f1_score("Paris", ["London", "paris"]) == 1.0
    assert f1_score("Paris France", ["Paris"]) == pytest.approx(2 / 3)
    assert f1_score("Berlin", ["Paris"]) == 0.0
    assert f1_score("x", []) == 0.0


# ----------------------------------------------------------------------------------------
# parsing (verl-agent's search projection rules)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("<search>capital of japan</search>", "<search>capital of japan</search>"),
        (
            "<think>I need facts</think>\n<search>  Evan\n Morris  </search>",
            "<search>Evan Morris</search>",
        ),
        ("<answer> Tokyo </answer>", "<answer>Tokyo</answer>"),
        (
            "<think>sure</think><answer>14 December 1972</answer> and more",
            "<answer>14 December 1972</answer>",
        ),
        # cut after the first closing tag: what follows is ignored
        ("<search>q1</search><answer>a</answer>", "<search>q1</search>"),
        ("<search>q1</search><search>q2</search>", "<search>q1</search>"),
        ("<answer>a</answer><search>q</search>", "<answer>a</answer>"),
    ],
)
def test_valid_responses(text: str, action: str) -> None:
    parsed = parse_response(text)
    assert parsed.valid, parsed.reason
    assert parsed.action == action


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Tokyo", "no <search>"),
        ("", "no <search>"),
        ("<search></search>", "empty query"),
        ("<search>   \n </search>", "empty query"),
        ("<answer> </answer>", "empty answer"),
        ("<search>a <answer>b</answer>", "both"),
        ("<search>a <search>b</search>", "more than one <search>"),
        ("<answer>a <answer>b</answer>", "more than one <answer>"),
        ("<search>never closed", "not closed"),
        ("</search><search>late", "no <search>"),  # cut at the first closing tag
        ("<SEARCH>upper</SEARCH>", "no <search>"),  # tags are case-sensitive
    ],
)
def test_invalid_responses(text: str, reason: str) -> None:
    parsed = parse_response(text)
    assert not parsed.valid
    assert parsed.action == NOOP_ACTION
    assert reason in parsed.reason


def test_parser_satisfies_the_protocol_and_renders_its_actions() -> None:
    parser = SearchActionParser(SearchConfig())
    assert isinstance(parser, ActionParser)
    for action in ("<search>who wrote x</search>", "<answer>Ann Lee</answer>"):
        rendered = parser.render(action)
        assert rendered != action  # the response form has spaces inside the tags
        assert parser(rendered).action == action
    with pytest.raises(ValueError, match="not a search or answer"):
        parser.render("go north")


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("<search>" * 1000)
@example("<answer></answer></search><search>")
@example("<search>\x00\ud800</search>")
def test_parser_never_raises(text: str) -> None:
    parsed = parse_response(text)
    assert isinstance(parsed.valid, bool)
    if parsed.valid:
        assert parsed.action.startswith(("<search>", "<answer>"))
        assert parse_response(parsed.action) == parsed  # canonical actions are fixed points
    else:
        assert parsed.action == NOOP_ACTION
        assert parsed.reason


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_parser_accepts_non_text(value: object) -> None:
    parsed = parse_response(value)
    assert not parsed.valid


# ----------------------------------------------------------------------------------------
# prompts
# ----------------------------------------------------------------------------------------

TASK = Task(
    "synthetic_2hop/test_1",
    "synthetic_2hop",
    payload={"question": "Where was the author of The Glass Map born?", "answers": ["Oslo"]},
)


def _ctx(
    step: int, history: tuple[TurnRecord, ...] = (), observation: str = "", skills: str = ""
) -> PromptContext:
    return PromptContext(
        task=TASK,
        observation=observation or TASK.payload["question"],
        step=step,
        history=history,
        first_observation=TASK.payload["question"],
        skill_block=skills,
    )


def test_first_prompt_states_question_format_and_skills() -> None:
    builder = SearchPrompt(SearchConfig())
    assert isinstance(builder, PromptBuilder)
    assert builder.history_length == 4
    text = builder.build(_ctx(1, skills="## Skills\n1. Search first."))[0]["content"]
    assert "Question: Where was the author of The Glass Map born?" in text
    for tag in ("<search>", "<answer>", "<think>"):
        assert tag in text
    assert "Search first." in text
    assert "step(s)" not in text  # no history on the first step
    assert builder.task_text(_ctx(1)) == TASK.payload["question"]


def test_history_pairs_each_search_with_what_it_returned() -> None:
    builder = SearchPrompt({"history_length": 2, "max_steps": 4})
    info = [f'<information>Doc 1(Title: "T{i}") result {i}</information>' for i in range(3)]
    history = (
        TurnRecord(TASK.payload["question"], "<search>q0</search>"),
        TurnRecord(info[0], "<search>q1</search>"),
        TurnRecord(info[1], "(invalid response: no <search>...</search> block)"),
    )
    text = builder.build(_ctx(4, history, observation=info[2]))[0]["content"]
    assert "You have taken 3 step(s); 1 step(s) remain" in text
    # the window: the last two steps, each followed by the observation it produced
    assert "<search>q0</search>" not in text
    assert text.index("Step 2: <search>q1</search>") < text.index("result 1")
    assert text.index("result 1") < text.index("Step 3: (invalid response")
    assert text.index("Step 3: (invalid") < text.index("result 2")
    assert "result 0" not in text
    assert LAST_STEP in text


def test_compact_format_and_sampling_overrides() -> None:
    standard = SearchPrompt({"response_format": "standard"})
    compact = SearchPrompt({"response_format": "compact"})
    assert standard.sampling_overrides() == {"stop": ["</search>", "</answer>"]}
    assert compact.sampling_overrides()["stop"] == ["</search>", "</answer>"]
    assert compact.sampling_overrides()["max_new_tokens"] > 0
    text = compact.build(_ctx(1))[0]["content"]
    assert "<think>" not in text
    assert "<search> query </search>" in text
    with pytest.raises(ValueError, match="response_format"):
        SearchPrompt({"response_format": "verbose"})


def test_information_formats() -> None:
    hits = [
        {"id": "0", "contents": '"Evan Morris"\nEvan L. Morris was a lobbyist.', "score": 3.0},
        {"id": "1", "contents": '"Tokyo"\nTokyo is the capital of Japan.', "score": 1.0},
    ]
    searchr1 = format_information(hits)
    assert searchr1 == (
        '<information>Doc 1(Title: "Evan Morris") Evan L. Morris was a lobbyist.\n'
        'Doc 2(Title: "Tokyo") Tokyo is the capital of Japan.</information>'
    )
    as_json = format_information(hits, "json")
    assert as_json.startswith('<information>{"result": "Doc 1: \\"Evan Morris\\"\\n')
    assert format_information([]) == "<information>No passage found.</information>"


# ----------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------


def test_metrics_per_data_source() -> None:
    records = [
        {"task_type": "nq", "won": True, "length": 2, "valid_actions": 2},
        {"task_type": "nq", "won": False, "length": 4, "valid_actions": 3},
        {"task_type": "hotpotqa", "won": True, "length": 3, "valid_actions": 3, "f1": 1.0},
        {"task_type": "bamboogle", "won": False, "length": 1, "valid_actions": 0, "f1": 0.5},
    ]
    metrics = episode_metrics(records)
    assert metrics["episodes"] == 4
    assert metrics["success_rate"] == 0.5
    assert metrics["success_rate/nq"] == 0.5
    assert metrics["success_rate/hotpotqa"] == 1.0
    assert metrics["success_rate/bamboogle"] == 0.0
    assert metrics["success_rate/source_mean"] == pytest.approx(0.5)
    assert metrics["valid_action_ratio"] == pytest.approx(8 / 10)
    assert metrics["episode_length"] == 2.5
    assert metrics["f1"] == pytest.approx(0.75)
    assert metrics["f1/hotpotqa"] == 1.0
    # the papers' order of the seven sets
    keys = [k for k in metrics if k.startswith("episodes/")]
    assert keys == ["episodes/nq", "episodes/hotpotqa", "episodes/bamboogle"]
    assert episode_metrics([]) == {"episodes": 0.0}
    single = episode_metrics([{"task_type": "synthetic_1hop", "won": True, "length": 1}])
    assert "success_rate/source_mean" not in single


# ----------------------------------------------------------------------------------------
# discovery and config
# ----------------------------------------------------------------------------------------


def test_discovery_is_import_light() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from skillzero import registry\n"
        "spec = registry.get('envs', 'search')\n"
        "registry.get('commands', 'search')\n"
        "heavy = {'faiss', 'torch', 'fastapi', 'uvicorn', 'bm25s', 'transformers', 'pyarrow'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
        "print(spec.plugin, len(spec.task_types))\n"
    )
    env = {**os.environ, "SKILLZERO_LOAD_PLUGINS": "search"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "search 9"]


def test_env_search_composes_with_its_schema() -> None:
    from skillzero.core.config import ConfigError, compose, validate

    cfg = validate(compose(["env=search", "algo=grpo"]))
    assert cfg.env.name == "search"
    assert cfg.env.max_steps == 4
    assert cfg.env.history_length == 4
    assert cfg.env.invalid_action_penalty == 0.01
    assert cfg.env.retriever.url is None
    assert cfg.env.retriever.topk == 3
    assert cfg.env.episode_log.endswith("search_episodes.jsonl")
    assert cfg.skills.provider == "none"
    cfg = validate(compose(["env=search", "algo=skill0", "env.retriever.topk=5"]))
    assert cfg.skills.bank == "search"
    assert cfg.env.retriever.topk == 5
    with pytest.raises(ConfigError, match="topk"):
        validate(compose(["env=search", "algo=grpo", "env.retriever.topk=many"]))
    with pytest.raises(ConfigError, match="retriever"):
        validate(compose(["env=search", "algo=grpo", "+env.retriever.colour=red"]))
