"""``skillzero play``: scripted, typed and model-played episodes of the real ALFWorld env.

The games are the project's default set, generated on first use into a temporary cache
(a few games instead of the full set), and played by the real TextWorld engine through
the env pool. Prompts are templated with the tiny test model's tokenizer; the model run
uses the tiny random model itself. Commands run in-process through ``skillzero.cli.main``.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from skillzero.cli import main

pytestmark = pytest.mark.timeout(600)

GAME_COUNTS = {"train": 2, "valid_seen": 1, "valid_unseen": 1}


@pytest.fixture(scope="module")
def default_games(tmp_path_factory: pytest.TempPathFactory):
    """The tasks of the default ``train`` split, generated on first use into a fresh
    cache (no ``$ALFWORLD_DATA``, no ``~/.cache/alfworld``), as on a new machine."""
    pytest.importorskip("textworld", reason="needs the alfworld extra (textworld)")
    pytest.importorskip("alfworld", reason="needs the alfworld extra (alfworld)")
    from skillzero.plugins.alfworld.generate import default
    from skillzero.plugins.alfworld.setup import list_tasks

    home = tmp_path_factory.mktemp("play-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home / "home"))
        patch.setenv("XDG_CACHE_HOME", str(home / "cache"))
        patch.delenv("ALFWORLD_DATA", raising=False)
        patch.delenv("SKILLZERO_ALFWORLD_GENERATE", raising=False)
        patch.setattr(default, "DEFAULT_COUNTS", GAME_COUNTS)
        # what `skillzero play` finds when nothing is configured: it generates the set
        tasks = list_tasks({}, "train")
        assert str(home / "cache") in tasks[0].payload["game_file"]
        yield tasks


def _walkthrough(task) -> list[str]:
    from skillzero.plugins.alfworld.games import read_walkthrough

    actions = read_walkthrough(task.payload["game_file"])
    assert actions, task.task_id
    return actions


def _play(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["play", "env=alfworld", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _field(out: str, name: str) -> str:
    """A line of the summary (``won        yes`` -> ``yes``)."""
    summary = out.split("=== summary ")[-1]
    match = re.search(rf"^{name} +(.*)$", summary, re.MULTILINE)
    assert match, (name, summary)
    return match.group(1).strip()


def test_the_walkthrough_as_a_script_wins(default_games, tiny_model_dir, tmp_path, capsys):
    task = default_games[1]
    actions = _walkthrough(task)
    lines = [f"<think>Step {i}: {a}.</think><action>{a}</action>" for i, a in enumerate(actions)]
    # a two-line response, written on one line with \n
    lines[0] = lines[0].replace("</think>", "</think>\\n")
    script = tmp_path / "walkthrough.txt"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")

    status, out, err = _play(
        ["--script", str(script), "--task", task.task_id, "--model", str(tiny_model_dir)], capsys
    )

    assert status == 0, err
    assert _field(out, "won") == "yes"
    assert _field(out, "ended") == "won"
    assert _field(out, "steps") == str(len(actions))
    assert _field(out, "valid") == f"{len(actions)} of {len(actions)}"
    assert _field(out, "return") == "10"  # won_reward, on the last step only
    assert out.count("=== step ") == len(actions)
    assert out.count("valid    '") == len(actions)
    assert "INVALID" not in out
    steps = out.split("=== step ")[1:]
    # the prompt as the model reads it: the chat template around the builder's message
    first_prompt = steps[0].split("--- response")[0]
    assert "<|im_start|>user\nYou are an expert household agent" in first_prompt
    assert first_prompt.rstrip().endswith("<|im_start|>assistant")
    assert "Your task is to:" in first_prompt
    # the decoded line break of the first response, then every action as parsed
    assert "</think>\n<action>" in steps[0]
    for number, action in enumerate(actions):
        assert f"valid    '{action}'" in steps[number]
    # later prompts carry the history window (the last env.history_length=2 turns)
    assert f"[Step 1] Action: {actions[0]}" in steps[1]
    if len(actions) >= 4:
        assert "history: 2 of 3 turns" in steps[3]
    assert "done: yes   won: yes" in steps[-1]
    assert "(reward 10)" in steps[-1]


def test_malformed_responses_are_invalid_and_the_episode_goes_on(
    default_games, tiny_model_dir, tmp_path
):
    from skillzero.core.config import compose, validate
    from skillzero.core.play import PlayOptions, play_episode

    task = default_games[0]
    first = _walkthrough(task)[0]
    malformed = [
        "",
        "I think I will go to the drawer.",
        "<think>a</think><action>look</action><action>inventory</action>",
        "<think>nothing to do</think><action>   </action>",
        "<think>先看看</think><action>look</action>",
        "\x00\x01 <action>go to",
        "</action>look<action>",
    ]
    script = tmp_path / "malformed.txt"
    script.write_text("\n".join([*malformed, f"<think>ok</think><action>{first}</action>"]))
    cfg = validate(compose(["env=alfworld", "env.pool.backend=inline"], fill_required=True))
    out = io.StringIO()

    result = play_episode(
        cfg,
        PlayOptions(model=str(tiny_model_dir), script=str(script), task=task.task_id),
        out=out,
    )

    text = out.getvalue()
    assert [step.valid for step in result.steps] == [False] * len(malformed) + [True]
    for step in result.steps[:-1]:
        assert step.reason  # the parser says why
        assert step.action == ""  # the env gets a no-op
        assert step.observation == "Nothing happens."
        assert not step.done
    assert result.steps[-1].action == first
    assert text.count("INVALID  ") == len(malformed)
    assert "INVALID  no <action>...</action> block" in text
    assert "CJK" in result.steps[4].reason
    # invalid responses appear in the next prompt's history as the collector writes them
    assert f"Action: (invalid response: {result.steps[0].reason})" in result.steps[1].prompt
    assert result.ended == "the script has no more lines"
    assert not result.won
    assert "ended      the script has no more lines" in text


def test_typed_actions_until_end_of_input(default_games, tiny_model_dir, monkeypatch, capsys):
    task = default_games[0]
    actions = _walkthrough(task)[:2]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(actions) + "\n"))

    status, out, err = _play(
        [
            "env.pool.backend=inline",
            "--human",
            "--raw",
            "--messages",
            "--task",
            "0",
            "--model",
            str(tiny_model_dir),
        ],
        capsys,
    )

    assert status == 0, err
    assert "Traceback" not in err
    assert _field(out, "steps") == "2"
    assert _field(out, "valid") == "2 of 2"
    assert _field(out, "ended") == "end of input"
    assert out.count("response> ") == 3  # two actions, then the end of input
    assert f"valid    '{actions[1]}'" in out
    assert "[user]\nYou are an expert household agent" in out  # --messages
    assert "<|im_start|>" not in out


def test_a_model_plays_two_steps(default_games, tiny_model_dir, capsys):
    status, out, err = _play(
        [
            "backend.val_sampling.max_new_tokens=8",
            "--model",
            str(tiny_model_dir),
            "--max-steps",
            "2",
            "--seed",
            "3",
        ],
        capsys,
    )

    assert status == 0, err
    assert out.count("=== step ") == 2
    assert re.search(r"^\(\d+ tokens, finish: (length|eos|stop)\)$", out, re.MULTILINE)
    assert f"responses  model {tiny_model_dir}" in out
    assert _field(out, "steps") == "2"
    assert _field(out, "ended") in ("step limit reached", "won")
    task_id = _field(out, "task").split()[0]
    assert task_id in {t.task_id for t in default_games}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "no-such-game"], "--task 'no-such-game' is neither a task id"),
        (["--task", "99"], "the split has 2 tasks"),
        (["--script", "/nonexistent/responses.txt"], "no such file"),
        (["--raw"], "--raw applies to typed or scripted responses"),
        (["--model", "/nonexistent/checkpoint", "--human"], "--model='/nonexistent/checkpoint'"),
        (["--split", "no_such_split", "--human"], "ALFWorld split 'no_such_split' not found"),
    ],
)
def test_usage_errors_are_one_line(default_games, tiny_model_dir, argv, message, capsys):
    if "--model" not in argv:
        argv = [*argv, "--model", str(tiny_model_dir)]
    status, out, err = _play(argv, capsys)
    assert status == 2
    assert message in err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert "=== step" not in out


def test_help_lists_play_options(capsys):
    with pytest.raises(SystemExit):
        main(["play", "--help"])
    out = capsys.readouterr().out
    for option in ("--human", "--script", "--raw", "--model", "--task", "--max-steps"):
        assert option in out


def test_script_lines_and_escapes(tmp_path: Path) -> None:
    from skillzero.core.play import decode_line, read_script

    assert decode_line("a\\nb\n") == "a\nb"
    assert decode_line("a\\\\nb") == "a\\nb"  # an escaped backslash, then n
    assert decode_line("path\\to") == "path\\to"  # other backslashes are kept
    script = tmp_path / "s.txt"
    script.write_text("one\n\nthree\u2028still three\r\n", encoding="utf-8")
    assert read_script(script) == ["one", "", "three\u2028still three"]
