"""The TextEnv contract: reset options, info keys, truncation, gymnasium API shape."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import pytest
from gymnasium import spaces
from helpers.envs import CorridorEnv, corridor_task

from skillzero.contracts.env import (
    INFO_KEYS,
    ActionParser,
    ParsedAction,
    PromptBuilder,
    PromptContext,
    StepResult,
    Task,
    TextEnv,
    TurnRecord,
    history_window,
)


class BareEnv(TextEnv):
    """Returns loosely typed values and no info keys: the base class must fix them up."""

    def __init__(self, max_steps: int = 50) -> None:
        super().__init__(max_steps=max_steps)
        self.actions: list[Any] = []

    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        return "hello", {}

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        self.actions.append(action)
        done = action == "finish"
        # an int reward, a truthy non-bool flag, a wrong task id and a truthy "won"
        return "ok", 1, 1 if done else 0, {"task_id": "spoofed", "won": 1 if done else 0}


def test_reset_requires_a_task_in_options() -> None:
    env = CorridorEnv()
    with pytest.raises(ValueError, match="options"):
        env.reset()
    with pytest.raises(ValueError, match="options"):
        env.reset(options={})
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"task": {"task_id": "t", "task_type": "x"}})
    with pytest.raises(ValueError, match="options"):
        env.reset(seed=0, options={"task": "t0"})


def test_step_before_reset_raises() -> None:
    with pytest.raises(RuntimeError, match="before reset"):
        CorridorEnv().step("forward")


def test_max_steps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        BareEnv(max_steps=0)


def test_text_env_is_abstract() -> None:
    with pytest.raises(TypeError):
        TextEnv()  # type: ignore[abstract]


def test_gymnasium_api_shape() -> None:
    env = CorridorEnv({"max_steps": 10})
    assert isinstance(env, gym.Env)
    assert isinstance(env.observation_space, spaces.Text)
    assert isinstance(env.action_space, spaces.Text)
    task = corridor_task("t0", 2)
    out = env.reset(seed=3, options={"task": task})
    assert isinstance(out, tuple)
    assert len(out) == 2
    observation, info = out
    assert isinstance(observation, str)
    assert isinstance(info, dict)
    assert env.observation_space.contains(observation)
    assert env.action_space.contains("forward")
    out = env.step("forward")
    assert isinstance(out, tuple)
    assert len(out) == 5
    observation, reward, terminated, truncated, info = out
    assert isinstance(observation, str)
    assert type(reward) is float
    assert type(terminated) is bool
    assert type(truncated) is bool
    assert isinstance(info, dict)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert env.step("forward")[1:4] == (1.0, True, False)


def test_info_always_has_the_contract_keys() -> None:
    env = CorridorEnv()
    task = corridor_task("t0", 2)
    _, info = env.reset(options={"task": task})
    assert set(INFO_KEYS) <= set(info)
    assert info["task_id"] == "t0"
    assert info["task_type"] == task.task_type
    assert info["won"] is False
    assert info["admissible_actions"] == ["forward", "back", "wait"]
    for action in ("wait", "bogus", "forward", "forward"):
        info = env.step(action)[4]
        assert set(INFO_KEYS) <= set(info)
        assert info["task_id"] == "t0"
    assert info["won"] is True


def test_base_class_normalises_loose_subclass_values() -> None:
    env = BareEnv()
    task = Task("real", "kind")
    _, info = env.reset(options={"task": task})
    assert info == {
        "won": False,
        "admissible_actions": None,
        "task_id": "real",
        "task_type": "kind",
    }
    _, reward, terminated, truncated, info = env.step("go")
    assert (type(reward), type(terminated), type(truncated)) == (float, bool, bool)
    assert (reward, terminated, truncated) == (1.0, False, False)
    assert info["task_id"] == "real"  # the env cannot report another task
    assert info["won"] is False
    _, _, terminated, _, info = env.step("finish")
    assert terminated is True
    assert info["won"] is True
    env.step(42)  # type: ignore[arg-type]
    assert env.actions[-1] == "42"


def test_max_steps_truncates() -> None:
    env = CorridorEnv({"max_steps": 3})
    env.reset(options={"task": corridor_task("t", 10)})
    assert env.step("wait")[2:4] == (False, False)
    assert env.step("wait")[2:4] == (False, False)
    assert env.step("wait")[2:4] == (False, True)
    # a new episode starts the count again
    env.reset(options={"task": corridor_task("t", 10)})
    assert env.steps_taken == 0
    assert env.step("wait")[2:4] == (False, False)


def test_termination_on_the_last_step_is_not_truncation() -> None:
    env = CorridorEnv({"max_steps": 2})
    env.reset(options={"task": corridor_task("t", 2)})
    env.step("forward")
    _, reward, terminated, truncated, info = env.step("forward")
    assert (reward, terminated, truncated, info["won"]) == (1.0, True, False, True)


def test_reset_seed_is_reproducible() -> None:
    task = corridor_task("t", 3)
    a, b = CorridorEnv(), CorridorEnv()
    first = a.reset(seed=5, options={"task": task})[0]
    assert b.reset(seed=5, options={"task": task})[0] == first
    assert a.reset(seed=6, options={"task": task})[0] != first


def test_task_and_step_result() -> None:
    task = Task("id", "type", "valid", {"n": 1})
    assert pickle.loads(pickle.dumps(task)) == task
    assert Task("id", "type").split == "train"
    with pytest.raises(AttributeError):
        task.task_id = "other"  # type: ignore[misc]
    assert not StepResult("o").done
    assert StepResult("o", terminated=True).done
    assert StepResult("o", truncated=True).done


def test_history_window() -> None:
    history = [TurnRecord(f"o{i}", f"a{i}") for i in range(5)]
    assert list(history_window(history, 2)) == history[3:]
    assert list(history_window(history, 10)) == history
    assert list(history_window(history, 0)) == []
    assert list(history_window(history, -1)) == []


def test_protocols_are_runtime_checkable() -> None:
    class Builder:
        history_length = 2

        def build(self, ctx: PromptContext) -> list[dict[str, str]]:
            shown = history_window(ctx.history, self.history_length)
            return [{"role": "user", "content": f"{len(shown)} {ctx.observation}"}]

    def parser(text: str, admissible_actions: Any = None) -> ParsedAction:
        return ParsedAction(text.strip(), valid=bool(text.strip()))

    assert isinstance(Builder(), PromptBuilder)
    assert not isinstance(object(), PromptBuilder)
    assert isinstance(parser, ActionParser)
    ctx = PromptContext(Task("t", "k"), "obs", step=3, history=[TurnRecord("o", "a")] * 4)
    assert Builder().build(ctx) == [{"role": "user", "content": "2 obs"}]
