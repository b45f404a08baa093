"""The ALFWorld plugin on real games: discovery, env, engine fidelity, pool and CLI.

Real games come from the 12-game sample in ``$SKILLZERO_TEST_DATA/alfworld/sample``
(the ``json_2.1.1/valid_unseen`` layout of ``alfworld-download``); the tests skip with
the reason when it, or the ``alfworld`` extra, is missing. The full splits are tested in
``test_alfworld_full.py`` (slow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from skillzero import registry
from skillzero.contracts.env import INFO_KEYS, Task
from skillzero.core.pool import EnvPool, ProcessWorkerBackend
from skillzero.core.tasks import TaskSampler
from skillzero.plugins.alfworld.config import AlfworldConfig
from skillzero.plugins.alfworld.data import AlfworldDataError
from skillzero.plugins.alfworld.games import (
    SHORT_NAMES,
    TASK_TYPES,
    count_by_type,
    list_tasks,
    read_walkthrough,
    scan_split,
    short_task_type,
    task_type_of,
)
from skillzero.plugins.alfworld.setup import resolve_data_dir

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytestmark = pytest.mark.timeout(300)

ENV_FACTORY = "skillzero.plugins.alfworld.env:AlfworldEnv"
EXTRA_ACTIONS = ["look", "", "not a command", "help", "inventory", "LOOK"]
"""Played before each walkthrough: engine commands, no-ops the engine answers with
``Nothing happens.``, and ``help`` (hidden from the agent but still an engine command)."""


@pytest.fixture(scope="session")
def engine_installed() -> None:
    pytest.importorskip("textworld", reason="needs the alfworld extra (textworld)")
    pytest.importorskip("alfworld", reason="needs the alfworld extra (alfworld)")


@pytest.fixture(scope="session")
def sample_tasks(sample_root: Path) -> list[Task]:
    return list_tasks({"data_dir": str(sample_root)}, "valid_unseen")


def process_backend() -> ProcessWorkerBackend:
    return ProcessWorkerBackend(start_method="spawn", startup_timeout=120.0)


def play(pool: EnvPool, tasks: Sequence[Task], plans: Sequence[Sequence[str]]) -> list[Any]:
    """Reset ``pool`` (one task per group) and play ``plans[g]`` in every env of group
    ``g``; returns, per env, the reset result then one result per step."""
    results: list[list[Any]] = [[r] for r in pool.reset(list(tasks))]
    position = [0] * pool.num_envs
    live = {i for i in range(pool.num_envs) if not results[i][0].done}
    while live:
        actions = {}
        for i in sorted(live):
            plan = plans[pool.group_of(i)]
            if position[i] >= len(plan):
                live.discard(i)
            else:
                actions[i] = plan[position[i]]
        if not actions:
            break
        for i, result in pool.step(actions).items():
            results[i].append(result)
            position[i] += 1
            if result.done:
                live.discard(i)
    return results


# ----------------------------------------------------------------------------------------
# Data root and game discovery
# ----------------------------------------------------------------------------------------


def test_data_dir_resolution_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_root: Path
) -> None:
    home = tmp_path / "home"
    (home / ".cache" / "alfworld" / "json_2.1.1").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    assert resolve_data_dir({}) == (home / ".cache" / "alfworld").resolve()
    monkeypatch.setenv("ALFWORLD_DATA", str(sample_root))
    assert resolve_data_dir(None) == sample_root.resolve()
    # an explicit data_dir wins, and may name the json_2.1.1 folder itself
    assert resolve_data_dir({"data_dir": str(sample_root / "json_2.1.1")}) == sample_root
    monkeypatch.setenv("SAMPLE_ROOT", str(sample_root))
    assert resolve_data_dir(AlfworldConfig(data_dir="$SAMPLE_ROOT")) == sample_root


def test_missing_data_error_names_every_place_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ALFWORLD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(AlfworldDataError) as info:
        resolve_data_dir({})
    message = str(info.value)
    assert "$ALFWORLD_DATA" in message
    assert str(tmp_path / "nowhere") in message
    assert "~/.cache/alfworld" in message
    assert "alfworld-download" in message
    with pytest.raises(AlfworldDataError, match="data_dir=/no/such/dir"):
        resolve_data_dir({"data_dir": "/no/such/dir"})


def test_sample_tasks_are_sorted_typed_and_relative(
    sample_root: Path, sample_tasks: list[Task]
) -> None:
    assert len(sample_tasks) == 12
    assert count_by_type(sample_tasks) == dict.fromkeys(SHORT_NAMES.values(), 2)
    assert [t.task_id for t in sample_tasks] == sorted(t.task_id for t in sample_tasks)
    for task in sample_tasks:
        assert task.split == "valid_unseen"
        assert task.task_id.startswith("json_2.1.1/valid_unseen/")
        assert task.task_id.endswith("/game.tw-pddl")
        game = Path(task.payload["game_file"])
        assert game.is_file()
        assert game == sample_root / task.task_id
        assert task.task_type == task_type_of(task.task_id)
        assert task.task_type in TASK_TYPES.values()
    # task types come from the config, as ALFWorld's env.task_types
    only = list_tasks({"data_dir": str(sample_root), "task_types": [2, 6]}, "valid_unseen")
    assert {short_task_type(t.task_type) for t in only} == {"look", "pick_two"}
    assert len(only) == 4


def test_unknown_split_and_task_type_are_clear_errors(sample_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"split 'valid_seen'.*present: valid_unseen"):
        list_tasks({"data_dir": str(sample_root)}, "valid_seen")
    with pytest.raises(ValueError, match="unknown task type id 7"):
        list_tasks({"data_dir": str(sample_root), "task_types": [1, 7]}, "valid_unseen")


def _write_game(folder: Path, **data: Any) -> None:
    folder.mkdir(parents=True)
    (folder / "game.tw-pddl").write_text(json.dumps(data))


def test_selection_rules_match_alfworld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    split = tmp_path / "json_2.1.1" / "train"
    _write_game(split / "pick_and_place_simple-Mug-None-Desk-1" / "trial_a", solvable=True)
    _write_game(split / "pick_two_obj_and_place-Pen-None-Desk-2" / "trial_b", solvable=True)
    _write_game(split / "pick_cool_then_place_in_recep-Apple-None-Desk-3" / "trial_c")
    _write_game(split / "look_at_obj_in_light-Book-None-Lamp-4" / "trial_d", solvable=False)
    _write_game(split / "pick_heat_then_place_in_recep-AppleSliced-None-X-5" / "t", solvable=True)
    _write_game(split / "pick_and_place_with_movable_recep-Pen-Mug-Desk-6" / "t", solvable=True)
    _write_game(split / "no_such_type-Pen-None-Desk-7" / "trial_e", solvable=True)
    (split / "pick_clean_then_place_in_recep-Cup-None-Sink-8" / "trial_f").mkdir(parents=True)

    records = scan_split(split)
    assert [(r.task_type, r.solvable) for r in records] == [
        ("look_at_obj_in_light", False),
        ("pick_and_place_simple", True),
        ("pick_two_obj_and_place", True),
    ]
    tasks = list_tasks({"data_dir": str(tmp_path)}, "train")
    assert [short_task_type(t.task_type) for t in tasks] == ["pick", "pick_two"]

    # The index in the cache folder is re-used, and refreshed when a game file changes.
    indexes = list((tmp_path / "cache" / "skillzero" / "alfworld").glob("index-train-*.json"))
    assert len(indexes) == 1
    game = split / "look_at_obj_in_light-Book-None-Lamp-4" / "trial_d" / "game.tw-pddl"
    game.write_text(json.dumps({"solvable": True, "padding": "x" * 10}))
    assert sum(r.solvable for r in scan_split(split)) == 3
    # a damaged game file is an error that names it
    game.write_text("{not json")
    with pytest.raises(ValueError, match=r"cannot read ALFWorld game .*trial_d"):
        scan_split(split)


def test_task_order_is_deterministic_given_the_seed(sample_tasks: list[Task]) -> None:
    def order(seed: int) -> list[str]:
        return [t.task_id for t in TaskSampler(sample_tasks, seed=seed).next(30)]

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert sorted(order(3)[:12]) == sorted(t.task_id for t in sample_tasks)


# ----------------------------------------------------------------------------------------
# Engine fidelity: our env and pool against the bare TextWorld env
# ----------------------------------------------------------------------------------------

BARE_TEXTWORLD = r"""
import json, sys
request = json.loads(open(sys.argv[1]).read())  # read before textworld edits sys.argv
out_path = sys.argv[2]
import textworld, textworld.gym
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

# Exactly ALFWorld's AlfredTWEnv.init_env for eval (no expert), as verl-agent calls it.
infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
trajectories = []
for game, actions in request:
    env_id = textworld.gym.register_games(
        [game], infos, batch_size=1, asynchronous=True, max_episode_steps=50,
        wrappers=[AlfredDemangler(shuffle=False), AlfredInfos],
    )
    env = textworld.gym.make(env_id)
    obs, info = env.reset()
    steps = [[obs[0], info["admissible_commands"][0], bool(info["won"][0]), False]]
    for action in actions:
        obs, scores, dones, info = env.step([action])
        steps.append([obs[0], info["admissible_commands"][0], bool(info["won"][0]),
                      bool(dones[0])])
    env.close()
    trajectories.append(steps)
with open(out_path, "w") as handle:
    json.dump(trajectories, handle)
"""


def _bare_textworld(request: list[Any], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    (tmp / f"{name}.in.json").write_text(json.dumps(request))
    return subprocess.Popen(
        [sys.executable, "-c", BARE_TEXTWORLD, str(tmp / f"{name}.in.json"), str(tmp / name)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def fidelity(
    engine_installed: None, sample_tasks: list[Task], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Every sample game played by the bare TextWorld env (two clean processes without
    our engine caches, in the background) and by our env in a pool of 2 workers."""
    tmp = tmp_path_factory.mktemp("fidelity")
    plans = [EXTRA_ACTIONS + read_walkthrough(t.payload["game_file"]) for t in sample_tasks]
    request = [[t.payload["game_file"], p] for t, p in zip(sample_tasks, plans, strict=True)]
    half = len(request) // 2
    procs = [_bare_textworld(request[:half], tmp, "a"), _bare_textworld(request[half:], tmp, "b")]
    with EnvPool(
        env_factory=ENV_FACTORY,
        env_cfg={},
        num_groups=len(sample_tasks),
        group_size=1,
        workers=2,
        backend=process_backend(),
    ) as pool:
        ours = play(pool, sample_tasks, plans)
    bare = []
    for name, proc in zip("ab", procs, strict=True):
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
        bare += json.loads((tmp / name).read_text())
    return {"plans": plans, "ours": ours, "bare": bare}


def test_first_observations_equal_bare_textworld(
    fidelity: dict[str, Any], sample_tasks: list[Task]
) -> None:
    for task, ours, bare in zip(sample_tasks, fidelity["ours"], fidelity["bare"], strict=True):
        first = ours[0]
        assert first.observation == bare[0][0]
        assert first.observation.startswith("-= Welcome to TextWorld, ALFRED! =-")
        assert "Your task is to: " in first.observation
        assert first.admissible_actions == [c for c in bare[0][1] if c != "help"]
        assert "help" in bare[0][1]
        assert "help" not in first.admissible_actions
        assert not first.won
        assert not first.done
        assert set(INFO_KEYS) <= set(first.info)
        assert first.info["task_id"] == task.task_id
        assert first.info["task_type"] == task.task_type


def test_every_step_equals_bare_textworld(fidelity: dict[str, Any]) -> None:
    """Observations, admissible commands and ``won`` match the engine without our caches
    and without the no-op shortcut, step by step, including no-ops and ``help``."""
    for plan, ours, bare in zip(fidelity["plans"], fidelity["ours"], fidelity["bare"], strict=True):
        assert len(ours) == len(bare) == len(plan) + 1
        for action, mine, theirs in zip(plan, ours[1:], bare[1:], strict=True):
            observation, commands, won, _done = theirs
            assert mine.observation == observation, action
            assert mine.admissible_actions == [c for c in commands if c != "help"], action
            assert mine.won == won
            assert mine.terminated == won
            assert mine.reward == (10.0 if won else 0.0)
            assert not mine.truncated


def test_noops_change_nothing(fidelity: dict[str, Any]) -> None:
    for ours in fidelity["ours"]:
        after_look = ours[1]
        for index in (2, 3, 6):  # "", "not a command", "LOOK"
            assert ours[index].observation == "Nothing happens."
            assert ours[index].admissible_actions == after_look.admissible_actions
        assert ours[4].observation != "Nothing happens."  # help goes to the engine
        assert ours[4].admissible_actions == after_look.admissible_actions


def test_translations_with_the_caches_equal_fast_downwards(
    engine_installed: None, sample_tasks: list[Task]
) -> None:
    """The cached translator (the optimised translation re-using the plain one's
    exploration) writes exactly the SAS texts fast-downward writes without the caches, and
    keeps no exploration once a game's two translations are done."""
    import fast_downward

    from skillzero.plugins.alfworld import engine

    games = [json.loads(Path(t.payload["game_file"]).read_text()) for t in sample_tasks[:4]]

    def translate_all() -> list[tuple[str, str, list[str]]]:
        argv = list(sys.argv)  # the translator overwrites sys.argv
        try:
            out = []
            for game in games:
                domain, problem = game["pddl_domain"], game["pddl_problem"]
                task, plain = fast_downward.pddl2sas(domain, problem)
                _, optimised = fast_downward.pddl2sas(domain, problem, optimize=True)
                out.append((plain, optimised, [a.name for a in task.actions]))
            return out
        finally:
            sys.argv[:] = argv

    was_installed = engine.engine_caches_installed()
    engine.uninstall_engine_caches()
    try:
        original = translate_all()
        engine.install_engine_caches()
        cached = translate_all()
        explore = engine.engine_cache_stats()["explore"]
    finally:
        engine.uninstall_engine_caches()
        if was_installed:
            engine.install_engine_caches()
    assert cached == original
    assert explore == {"hits": len(games), "misses": len(games), "size": 0}
    assert len({plain for plain, _, _ in original}) == len(games)  # different games


def test_sample_walkthroughs_win_through_the_pool(
    fidelity: dict[str, Any], sample_tasks: list[Task]
) -> None:
    for task, plan, ours in zip(sample_tasks, fidelity["plans"], fidelity["ours"], strict=True):
        last = ours[-1]
        assert last.won, task.task_id
        assert last.terminated
        assert last.reward == 10.0
        assert len(ours) - 1 == len(plan)
        assert not any(r.won for r in ours[:-1])


# ----------------------------------------------------------------------------------------
# The env in-process: episodes, truncation, rewards, reuse
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(engine_installed: None) -> Iterator[Any]:
    from skillzero.plugins.alfworld.env import AlfworldEnv

    env = AlfworldEnv({"max_steps": 4, "won_reward": 1.0})
    yield env
    env.close()


def test_noops_only_advance_the_step_counter_until_truncation(
    env: Any, sample_tasks: list[Task]
) -> None:
    task = sample_tasks[0]
    first, _ = env.reset(options={"task": task})
    for step in range(1, 5):
        observation, reward, terminated, truncated, info = env.step("")
        assert observation == "Nothing happens."
        assert reward == 0.0
        assert not terminated
        assert not info["won"]
        assert truncated == (step == 4)
        assert env.steps_taken == step
    # the same game again: reused, same first observation; fast-downward's translator
    # overwrites sys.argv, and the env puts it back
    argv = list(sys.argv)
    again, info = env.reset(options={"task": sample_tasks[1]})
    assert sys.argv == argv
    again, info = env.reset(options={"task": task})
    assert again == first
    assert info["game_file"] == task.payload["game_file"]


def test_won_reward_is_configurable_and_ends_the_episode(
    env: Any, sample_tasks: list[Task]
) -> None:
    task = next(t for t in sample_tasks if len(read_walkthrough(t.payload["game_file"])) <= 4)
    env.reset(options={"task": task})
    for action in read_walkthrough(task.payload["game_file"]):
        _observation, reward, terminated, truncated, info = env.step(action)
    assert info["won"]
    assert terminated
    assert not truncated
    assert reward == 1.0


def test_reset_without_a_game_file_is_an_error(env: Any) -> None:
    with pytest.raises(ValueError, match="game_file"):
        env.reset(options={"task": Task("x", "pick_and_place_simple")})


# ----------------------------------------------------------------------------------------
# Pool: groups and a worker killed mid-episode
# ----------------------------------------------------------------------------------------


def test_groups_share_a_game_and_a_killed_worker_loses_nothing(
    engine_installed: None, sample_tasks: list[Task]
) -> None:
    tasks = [sample_tasks[0], sample_tasks[5]]
    plans = [read_walkthrough(t.payload["game_file"]) for t in tasks]
    # 2 groups x 2 envs on 2 workers: worker 0 holds envs 0 and 2, worker 1 envs 1 and 3.
    with EnvPool(
        env_factory=ENV_FACTORY,
        env_cfg={},
        num_groups=2,
        group_size=2,
        workers=2,
        backend=process_backend(),
    ) as pool:
        first = pool.reset(tasks)
        assert first[0].observation == first[1].observation != first[2].observation
        assert first[2].observation == first[3].observation
        results = pool.step({i: plans[pool.group_of(i)][0] for i in range(4)})
        assert set(results) == {0, 1, 2, 3}
        old_pids = pool.worker_pids()

        pool.kill_worker(0)
        results = pool.step({0: plans[0][1], 1: plans[0][1]})
        # env 0 was asked to act and env 2 was mid-episode: both lost, once each; env 1
        # lives on the other worker and moved on.
        assert set(results) == {0, 1, 2}
        for i in (0, 2):
            assert results[i].truncated
            assert not results[i].won
            assert results[i].info["worker_restarted"] is True
            assert results[i].info["task_id"] == tasks[pool.group_of(i)].task_id
        assert "worker_restarted" not in results[1].info
        assert pool.worker_restarts == 1
        assert pool.worker_pids()[0] != old_pids[0]
        assert pool.worker_pids()[1] == old_pids[1]
        assert pool.active == [False, True, False, True]

        # the survivors finish their games; nothing is reported twice
        steps = {1: 2, 3: 1}
        won: dict[int, bool] = {}
        while any(pool.active):
            live = [i for i, a in enumerate(pool.active) if a]
            results = pool.step({i: plans[pool.group_of(i)][steps[i]] for i in live})
            assert set(results) == set(live)
            for i, result in results.items():
                assert i not in won
                steps[i] += 1
                if result.done:
                    won[i] = result.won
        assert won == {1: True, 3: True}

        # a new episode works on every env, including the restarted worker's
        outcome = play(pool, tasks, plans)
        assert all(r[-1].won for r in outcome)
        assert pool.worker_restarts == 1


# ----------------------------------------------------------------------------------------
# Plugin registration, configs, CLI
# ----------------------------------------------------------------------------------------


def test_plugin_registers_env_config_and_command() -> None:
    spec = registry.get("envs", "alfworld")
    assert spec.plugin == "alfworld"
    assert spec.task_types == tuple(TASK_TYPES.values())
    assert spec.config is AlfworldConfig
    assert isinstance(spec.env, str)
    assert isinstance(spec.tasks, str)
    assert "alfworld" in registry.components("commands")
    assert "pkg://skillzero.plugins.alfworld.conf" in registry.config_search_paths()


def test_discovery_does_not_import_the_engine() -> None:
    code = (
        "import json, sys\n"
        "from skillzero import registry\n"
        "registry.get('envs', 'alfworld'); registry.components('commands')\n"
        "print(json.dumps(sorted(m for m in ('textworld', 'alfworld', 'torch', "
        "'fast_downward', 'skillzero.plugins.alfworld.env') if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_env_yaml_matches_the_schema() -> None:
    import yaml
    from omegaconf import OmegaConf

    import skillzero.plugins.alfworld as package

    path = Path(package.__file__).parent / "conf" / "env" / "alfworld.yaml"
    data = yaml.safe_load(path.read_text())
    merged = OmegaConf.merge(OmegaConf.structured(AlfworldConfig), data)
    defaults = OmegaConf.to_container(OmegaConf.structured(AlfworldConfig))
    for key, value in data.items():
        if key != "pool":
            assert merged[key] == value == defaults[key], key


def test_env_group_entry_composes_and_validates(plugin: Any, tmp_path: Path) -> None:
    from skillzero import hookimpl
    from skillzero.core.config import ConfigError, compose, validate

    stub = "alfworld-test-stub"
    (tmp_path / "algo").mkdir()
    (tmp_path / "algo" / f"{stub}.yaml").write_text(f"name: {stub}\nadvantage:\n  name: {stub}\n")
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / f"{stub}.yaml").write_text(f"name: {stub}\n")

    class StubGroups:
        @hookimpl
        def register_config_paths(self, register: Any) -> None:
            register("file://" + str(tmp_path))

        @hookimpl
        def register_advantage_estimators(self, register: Any) -> None:
            register(stub, "builtins:object")

        @hookimpl
        def register_rollout_backends(self, register: Any) -> None:
            register(stub, "builtins:object")

    plugin(StubGroups(), "alfworld-stub-groups")
    base = ["env=alfworld", f"algo={stub}", f"backend={stub}"]
    cfg = validate(compose([*base, "env.history_length=3", "env.task_types=[1,2]"]))
    assert cfg.env._metadata.object_type is AlfworldConfig
    assert cfg.env.name == "alfworld"
    assert cfg.env.val_split == "valid_unseen"
    assert cfg.env.history_length == 3
    assert list(cfg.env.task_types) == [1, 2]
    assert cfg.env.won_reward == 10.0
    assert cfg.env.max_steps == 50
    with pytest.raises(ConfigError, match=r"env\.won_reward"):
        validate(compose([*base, "env.won_reward=lots"]))


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skillzero.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_check_command_end_to_end(
    engine_installed: None, sample_root: Path, sample_tasks: list[Task], tmp_path: Path
) -> None:
    out = tmp_path / "check.jsonl"
    proc = _cli(
        "alfworld", "check", "--data", str(sample_root), "--out", str(out), "--workers", "2"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["game"] for line in lines] == [t.task_id for t in sample_tasks]
    for line, task in zip(lines, sample_tasks, strict=True):
        assert set(line) == {"game", "split", "task_type", "first_observation", "won", "steps"}
        assert (sample_root / line["game"]).is_file()
        assert line["task_type"] == task.task_type
        assert line["first_observation"].startswith("-= Welcome to TextWorld, ALFRED! =-")
        assert line["won"] is True
        assert line["steps"] == len(read_walkthrough(task.payload["game_file"]))
    summary = proc.stdout
    for short in SHORT_NAMES.values():
        assert any(row.split()[:3] == [short, "2", "2"] for row in summary.splitlines())
    assert any(row.split()[:3] == ["all", "12", "12"] for row in summary.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/no/such/folder"], "--data: /no/such/folder is not a folder"),
        (["--data", "{tmp}"], "ALFWorld games not found"),
        (["--data", "{sample}", "--split", "valid_seen"], "split 'valid_seen' not found"),
        (["--data", "{sample}", "--out", "/no/such/dir/x.jsonl"], "does not exist"),
        (["--data", "{sample}", "--workers", "0"], "--workers must be >= 1"),
        (["--data", "{sample}", "--backend", "nope"], "--backend"),
    ],
)
def test_check_command_bad_input_exits_2_with_one_line(
    args: list[str], message: str, sample_root: Path, tmp_path: Path
) -> None:
    args = [a.format(tmp=tmp_path, sample=sample_root) for a in args]
    proc = _cli("alfworld", "check", *args, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert message in errors[0]


def test_alfworld_command_without_subcommand_shows_help() -> None:
    proc = _cli("alfworld", timeout=120)
    assert proc.returncode == 2
    assert "check" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _cli("alfworld", "check", "--split", "nope", timeout=120)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
