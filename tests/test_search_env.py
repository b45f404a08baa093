"""The Search-QA env in real worker processes against a real retrieval server: episodes,
rewards, the per-turn batched searches, the server a run starts for itself, and what
happens when the server is unreachable."""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from skillzero import registry
from skillzero.contracts.env import INFO_KEYS, Task
from skillzero.core.config import compose, to_container, validate
from skillzero.core.pool import EnvPool
from skillzero.plugins.search.datasets import SearchExpert, list_tasks
from skillzero.plugins.search.env import SearchEnv
from skillzero.plugins.search.generate import WorldSizes, generate_world
from skillzero.plugins.search.manager import MANAGED_URLS_VAR, stop_managed_servers

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, 11, WorldSizes.small())
    return root


@pytest.fixture(scope="module")
def env_cfg(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The composed env config of the generated world; listing its tasks starts the
    server (url null), which the module stops at the end."""
    cfg = validate(
        compose(
            [
                "env=search",
                "algo=grpo",
                f"env.world_dir={world}",
                f"env.episode_log={tmp_path_factory.mktemp('log') / 'episodes.jsonl'}",
            ]
        )
    )
    mapping = to_container(cfg.env)
    assert mapping["retriever"]["url"] is None
    yield mapping
    stop_managed_servers()


@pytest.fixture(scope="module")
def tasks(env_cfg: dict[str, Any]) -> list[Task]:
    return list_tasks(env_cfg, "test")


def _health(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/health", timeout=10).json()


def _log(env_cfg: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(env_cfg["episode_log"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_listing_tasks_starts_the_server_and_hands_on_its_url(
    env_cfg: dict[str, Any], tasks: list[Task]
) -> None:
    url = env_cfg["retriever"]["url"]
    assert url.startswith("http://127.0.0.1:")
    assert _health(url)["retriever"] == "bm25"
    assert url in json.loads(os.environ[MANAGED_URLS_VAR]).values()
    assert {t.task_type for t in tasks} == {"synthetic_1hop", "synthetic_2hop"}
    # listing again reuses the running server
    again = copy.deepcopy(env_cfg)
    again["retriever"]["url"] = None
    list_tasks(again, "train")
    assert again["retriever"]["url"] == url


def test_expert_plans_win_through_the_pool(env_cfg: dict[str, Any], tasks: list[Task]) -> None:
    spec = registry.get("envs", "search")
    expert = SearchExpert(env_cfg)
    chosen = tasks[:4]
    plans = {i: expert.actions(task) for i, task in enumerate(chosen)}
    before = len(_log(env_cfg))
    # a copy without the URL: workers find the started server through the environment
    fresh = copy.deepcopy(env_cfg)
    fresh["retriever"]["url"] = None
    with EnvPool(spec.env, fresh, num_groups=4, group_size=1, workers=2) as pool:
        started = pool.reset_envs({i: (task, i) for i, task in enumerate(chosen)})
        for i, reply in started.items():
            assert reply.observation == chosen[i].payload["question"]
            assert set(INFO_KEYS) <= set(reply.info)
        finished: dict[int, Any] = {}
        turn = 0
        while len(finished) < len(chosen):
            actions = {i: plans[i][turn] for i in plans if i not in finished}
            replies = pool.step(actions)
            for i, reply in replies.items():
                action = actions[i]
                if action.startswith("<search>"):
                    query = action[len("<search>") : -len("</search>")]
                    assert reply.observation.startswith(f'<information>Doc 1(Title: "{query}")')
                    assert not reply.done
                else:
                    finished[i] = reply
            turn += 1
    for i, reply in finished.items():
        assert reply.terminated
        assert reply.won
        assert reply.reward == 1.0
        assert reply.info["em"] == 1.0
        assert reply.info["f1"] == 1.0
        assert reply.info["searches"] == len(plans[i]) - 1
    logged = _log(env_cfg)[before:]
    assert len(logged) == 4
    assert all(r["ended"] == "answer" and r["em"] == 1.0 for r in logged)


def test_a_turns_searches_leave_in_one_request_per_worker(
    env_cfg: dict[str, Any], tasks: list[Task]
) -> None:
    spec = registry.get("envs", "search")
    url = env_cfg["retriever"]["url"]
    with EnvPool(spec.env, env_cfg, num_groups=3, group_size=2, workers=2) as pool:
        pool.reset(tasks[:3])
        before = _health(url)["batching"]
        queries = [t.payload["question"] for t in tasks[:3] for _ in range(2)]
        replies = pool.step({i: f"<search>{q}</search>" for i, q in enumerate(queries)})
        after = _health(url)["batching"]
    assert all(r.observation.startswith("<information>Doc 1(Title:") for r in replies.values())
    assert after["queries"] - before["queries"] == 6
    assert after["requests"] - before["requests"] == 2  # one per worker, not one per env


def test_invalid_actions_and_max_turns(env_cfg: dict[str, Any], tasks: list[Task]) -> None:
    cfg = {**env_cfg, "max_steps": 2}
    env = SearchEnv(cfg)
    task = tasks[0]
    before = len(_log(env_cfg))
    observation, info = env.reset(options={"task": task})
    assert observation == task.payload["question"]
    for bad in ("", "I think it is Paris", "<search></search>", "<search>a <answer>b</answer>"):
        env.reset(options={"task": task})
        observation, reward, terminated, truncated, info = env.step(bad)
        assert reward == 0.0
        assert not terminated
        assert not truncated
        assert observation.startswith("Your last response had no valid action")
        assert "<search> query </search>" in observation
    # max_steps turns without an answer: truncated, not won
    observation, reward, terminated, truncated, info = env.step("<search>anything</search>")
    assert truncated
    assert not terminated
    assert not info["won"]
    assert info["em"] == info["f1"] == 0.0
    assert env.steps_taken == 2
    env.reset(options={"task": task})
    _, reward, terminated, _, info = env.step("<answer>surely not this</answer>")
    assert terminated
    assert reward == 0.0
    assert info["em"] == 0.0
    logged = _log(env_cfg)[before:]
    assert [r["ended"] for r in logged] == ["max_turns", "answer"]
    assert logged[0]["invalid"] == 1
    assert logged[0]["searches"] == 1
    env.close()


def test_json_observations(env_cfg: dict[str, Any], tasks: list[Task]) -> None:
    env = SearchEnv({**env_cfg, "observation_format": "json"})
    env.reset(options={"task": tasks[0]})
    observation, *_ = env.step(f"<search>{tasks[0].payload['question']}</search>")
    assert observation.startswith("<information>{")
    payload = json.loads(observation[len("<information>") : -len("</information>")])
    assert payload["result"].startswith("Doc 1: ")
    with pytest.raises(ValueError, match="observation_format"):
        SearchEnv({**env_cfg, "observation_format": "xml"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_ends_episodes_truncated_and_logged(
    env_cfg: dict[str, Any], tasks: list[Task], tmp_path: Path
) -> None:
    spec = registry.get("envs", "search")
    dead = f"http://127.0.0.1:{_free_port()}"
    cfg = copy.deepcopy(env_cfg)
    cfg["retriever"].update(url=dead, retries=1, backoff=0.01)
    cfg["episode_log"] = str(tmp_path / "episodes.jsonl")
    with EnvPool(spec.env, cfg, num_groups=3, group_size=1, workers=1) as pool:
        pool.reset(tasks[:3])
        answer = tasks[2].payload["answers"][0]
        replies = pool.step(
            {
                0: "<search>first</search>",
                1: "<search>second</search>",
                2: f"<answer>{answer}</answer>",
            }
        )
        # the searches fail after the retries: those episodes end truncated, with the URL
        for i in (0, 1):
            assert replies[i].truncated
            assert not replies[i].won
            assert dead in replies[i].info["error"]
            assert "did not answer after 2 attempt(s)" in replies[i].info["error"]
        # the episode that did not search is unaffected
        assert replies[2].terminated
        assert replies[2].won
        # the pool goes on: the failed envs start new episodes
        again = pool.reset_envs({0: (tasks[3], 0)})
        assert again[0].observation == tasks[3].payload["question"]
    logged = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    ended = sorted(r["ended"] for r in logged)
    assert ended == ["answer", "retriever_error", "retriever_error"]
    assert all(dead in r["error"] for r in logged if r["ended"] == "retriever_error")


def test_no_server_configured_is_a_clear_error(
    tasks: list[Task], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MANAGED_URLS_VAR, raising=False)
    env = SearchEnv({"retriever": {"url": None, "index": "/nowhere"}, "splits": {"x": []}})
    env.reset(options={"task": tasks[0]})
    with pytest.raises(RuntimeError, match="no retrieval server"):
        env.step("<search>q</search>")
    # a task without a question is refused at reset
    with pytest.raises(ValueError, match="payload"):
        env.reset(options={"task": Task("x", "nq", payload={"question": "q"})})
