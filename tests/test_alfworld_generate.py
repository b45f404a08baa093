"""The ALFWorld game generator: format, solvability, determinism, CLI, default set.

Generated games are written into temporary folders (never into the repository) and
played by the real engine: skillzero's loader and env pool, ALFWorld's own game
collection (``AlfredTWEnv``) and a bare ``textworld.gym`` env built as ALFWorld builds
it. Real games from ``$SKILLZERO_TEST_DATA/alfworld/sample`` are used, when present, to
compare the format. Tests that need the ``alfworld`` extra skip without it; the default
set at its real size and concurrent first uses are slow tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from skillzero.plugins.alfworld.games import SHORT_NAMES, count_by_type
from skillzero.plugins.alfworld.setup import list_tasks

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytestmark = pytest.mark.timeout(600)

TASK_TYPES = list(SHORT_NAMES)
GAME_KEYS = ["pddl_domain", "grammar", "pddl_problem", "solvable", "walkthrough"]
"""The keys of a real ``game.tw-pddl``, in their order."""


@pytest.fixture(scope="session")
def engine_installed() -> None:
    pytest.importorskip("textworld", reason="needs the alfworld extra (textworld)")
    pytest.importorskip("alfworld", reason="needs the alfworld extra (alfworld)")


@pytest.fixture(scope="session")
def generated(engine_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 train games (2 of each task type) and 6 valid_unseen games (1 of each)."""
    from skillzero.plugins.alfworld.generate.generator import generate

    root = tmp_path_factory.mktemp("generated")
    generate(root, 12, seed=7, splits=["train"], workers=2)
    generate(root, 6, seed=7, splits=["valid_unseen"], workers=2)
    return root


def trials(root: Path, split: str | None = None) -> list[Path]:
    pattern = f"json_2.1.1/{split or '*'}/*/trial_*"
    return sorted(p for p in root.glob(pattern) if p.is_dir())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "skillzero.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


# ----------------------------------------------------------------------------------------
# Rooms and tasks (no engine needed beyond alfworld's constants)
# ----------------------------------------------------------------------------------------


def test_floor_plans_come_from_the_alfworld_package(engine_installed: None) -> None:
    from skillzero.plugins.alfworld.generate import scenes

    c = scenes.constants()
    rtypes = set(scenes.receptacle_types())
    assert len(rtypes) == 30
    assert len(scenes.object_types()) == 79
    every = sorted(n for numbers in c.SCENE_TYPE.values() for n in numbers)
    assert len(every) == 120
    for scene in every:
        plan = scenes.floor_plan(scene)
        ids = [r.rid for r in plan.receptacles] + [t.oid for t in [*plan.fixtures, *plan.decor]]
        assert len(ids) == len(set(ids)), scene
        assert plan.receptacles, scene
        for receptacle in plan.receptacles:
            assert receptacle.rtype in rtypes
            assert receptacle.openable == (receptacle.rtype in c.OPENABLE_CLASS_SET)
            assert scenes.type_of_id(receptacle.rid) == receptacle.rtype
        for decor in plan.decor:
            host = next(r for r in plan.receptacles if r.rid == decor.receptacle)
            assert host.rtype in scenes.DECOR_HOSTS[decor.otype]
        # every receptacle type the floor plan lists is there
        assert {t for t in plan.types if t in rtypes} <= {r.rtype for r in plan.receptacles}
        kinds = {r.rtype for r in plan.receptacles}
        if plan.room == "Kitchen":
            assert {"Fridge", "Microwave", "SinkBasin", "CounterTop", "Cabinet"} <= kinds
            assert len(plan.receptacles_of("StoveBurner")) >= 4
        if plan.room == "Bedroom":
            assert "Bed" in kinds
        if plan.room == "Bathroom":
            assert {"Toilet", "SinkBasin"} <= kinds
    # a floor plan is the same every time (seeded by its number)
    scenes.floor_plan.cache_clear()
    again = scenes.floor_plan(10)
    scenes.floor_plan.cache_clear()
    assert scenes.floor_plan(10) == again
    # unseen rooms are never used by the other splits
    assert set(scenes.split_scenes("valid_unseen")) == {10, 219, 308, 424}
    assert not set(scenes.split_scenes("valid_unseen")) & set(scenes.split_scenes("train"))
    assert scenes.split_scenes("valid_seen") == scenes.split_scenes("train")


def test_sampled_tasks_follow_alfreds_rules(engine_installed: None) -> None:
    import random

    from skillzero.plugins.alfworld.generate import scenes, tasks

    c = scenes.constants()
    table = scenes.can_contain()
    for task_type in tasks.TASK_TYPE_NAMES:
        for split in ("train", "valid_unseen"):
            for seed in range(15):
                task = tasks.sample_task(task_type, split, random.Random(seed))
                goal, plan = task.goal, task.plan
                assert plan.scene in scenes.split_scenes(split)
                assert plan.room in c.GOALS_VALID[task_type]
                by_id = {r.rid: r for r in plan.receptacles}
                for thing in task.objects:
                    holder = by_id[thing.receptacle]
                    assert thing.otype in table[holder.rtype], (thing, holder)
                    assert thing.loc == holder.loc
                targets = [t for t in task.objects if t.otype == goal.object_target]
                assert 1 <= len(targets) <= tasks.MAX_INSTANCES
                for target in targets:  # the goal does not hold at the start
                    assert by_id[target.receptacle].rtype != goal.parent_target
                if task_type == "pick_two_obj_and_place":
                    assert len(targets) >= 2
                if task_type == "look_at_obj_in_light":
                    assert goal.toggle_target == "DeskLamp"
                    assert goal.parent_target == ""
                    assert plan.has_decor("DeskLamp")
                else:
                    assert goal.object_target in table[goal.parent_target]
                    assert goal.parent_target not in tasks.EXCLUDED_PARENTS.get(task_type, ())
                if task_type in tasks.OBJECT_KIND:
                    kind = tasks.OBJECT_KIND[task_type]
                    assert goal.object_target in scenes.action_objects(kind)
                    assert plan.has_receptacle(tasks.APPLIANCE[task_type])
                if task_type == "pick_cool_then_place_in_recep":
                    assert all(by_id[t.receptacle].rtype != "Fridge" for t in targets)
                assert task.agent not in plan.receptacle_locations
    with pytest.raises(tasks.TaskSamplingError, match="unknown task type"):
        tasks.sample_task("juggle", "train", random.Random(0))


def test_smaller_rooms_keep_what_each_task_needs(engine_installed: None) -> None:
    import random

    from skillzero.plugins.alfworld.generate import scenes, tasks

    table = scenes.can_contain()
    sizes = []
    for task_type in tasks.TASK_TYPE_NAMES:
        for seed in range(10):
            task = tasks.sample_task(task_type, "valid_unseen", random.Random(seed), 5)
            goal, plan = task.goal, task.plan
            full = scenes.floor_plan(plan.scene)
            sizes.append(len(full.receptacles))
            assert len(plan.receptacles) == min(5, len(full.receptacles))
            assert set(plan.receptacles) <= set(full.receptacles)
            kept = {r.rid for r in plan.receptacles}
            # objects only in kept receptacles, where they may be
            assert {t.receptacle for t in task.objects} <= kept
            by_id = {r.rid: r for r in plan.receptacles}
            for thing in task.objects:
                assert thing.otype in table[by_id[thing.receptacle].rtype]
            targets = [t for t in task.objects if t.otype == goal.object_target]
            assert targets
            if goal.parent_target:
                assert plan.has_receptacle(goal.parent_target)
                assert all(by_id[t.receptacle].rtype != goal.parent_target for t in targets)
            if task_type in tasks.APPLIANCE:
                assert plan.has_receptacle(tasks.APPLIANCE[task_type])
            if goal.toggle_target:
                assert plan.has_decor(goal.toggle_target)
            assert {d.receptacle for d in plan.decor} <= kept
    assert max(sizes) > 5  # the rooms really were cut
    with pytest.raises(ValueError, match="max_receptacles must be >= 4"):
        tasks.sample_task("pick_and_place_simple", "train", random.Random(0), 3)


def test_fewer_object_types_keep_the_goal_object(engine_installed: None) -> None:
    import random

    from skillzero.plugins.alfworld.generate import tasks

    for task_type in tasks.TASK_TYPE_NAMES:
        for seed in range(6):
            whole = tasks.sample_task(task_type, "train", random.Random(seed))
            task = tasks.sample_task(task_type, "train", random.Random(seed), None, 3)
            types = {t.otype for t in task.objects}
            assert task.goal.object_target in types
            assert len(types) == min(3, len({t.otype for t in whole.objects}))
            assert task.plan == whole.plan
            assert task.goal == whole.goal
    with pytest.raises(ValueError, match="max_object_types must be >= 1"):
        tasks.sample_task("pick_and_place_simple", "train", random.Random(0), None, 0)


def test_generated_small_rooms_are_won_by_their_walkthroughs(
    engine_installed: None, tmp_path: Path
) -> None:
    from skillzero.plugins.alfworld.check import play_walkthroughs
    from skillzero.plugins.alfworld.generate.generator import generate

    records = generate(
        tmp_path,
        6,
        seed=3,
        splits=["valid_unseen"],
        workers=2,
        max_receptacles=5,
        max_object_types=3,
    )
    assert len(records) == 6
    manifest = read_json(tmp_path / "skillzero-games.json")
    assert manifest["splits"]["valid_unseen"]["max_receptacles"] == 5
    assert manifest["splits"]["valid_unseen"]["max_object_types"] == 3
    tasks = list_tasks({"data_dir": str(tmp_path)}, "valid_unseen")
    for task in tasks:
        problem = (Path(task.payload["game_file"]).parent / "initial_state.pddl").read_text()
        facts = [line for line in problem.splitlines() if "(receptacleType " in line]
        assert 4 <= len([line for line in facts if "?" not in line]) <= 5  # not the goal's
    results = play_walkthroughs(tasks, {"data_dir": str(tmp_path)}, workers=1, envs=6)
    assert [r["won"] for r in results] == [True] * 6


def test_generated_sets_of_other_sizes_get_their_own_folders(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skillzero.plugins.alfworld.generate import default

    assert default.default_root().name == "v1-seed1"
    assert default.default_root(1, default.counts_for()).name == "v1-seed1"
    counts = default.counts_for(train=30, valid=6)
    assert counts == {"train": 30, "valid_seen": 6, "valid_unseen": 6}
    assert default.default_root(1, counts, 6).name == "v1-seed1-30x6x6-r6"
    assert default.default_root(2, None, 8).name == "v1-seed2-r8"
    assert default.default_root(1, counts, 6, 4).name == "v1-seed1-30x6x6-r6-o4"
    with pytest.raises(ValueError, match="at least 1 game"):
        default.counts_for(train=0)


def test_relevant_part_keeps_what_a_plan_needs(engine_installed: None) -> None:
    import random

    from skillzero.plugins.alfworld.generate import tasks

    for task_type in tasks.TASK_TYPE_NAMES:
        task = tasks.sample_task(task_type, "train", random.Random(3))
        part = task.relevant(random.Random(4))
        kept = {r.rid for r in part.plan.receptacles}
        goal = task.goal
        assert {o.otype for o in part.objects} == {goal.object_target}
        assert len(part.objects) == sum(o.otype == goal.object_target for o in task.objects)
        assert {o.receptacle for o in part.objects} <= kept
        assert not part.plan.fixtures
        if goal.parent_target:
            assert any(r.rtype == goal.parent_target for r in part.plan.receptacles)
        if task_type in tasks.APPLIANCE:
            appliance = tasks.APPLIANCE[task_type]
            assert {r.rid for r in task.plan.receptacles_of(appliance)} <= kept
        if task_type == "look_at_obj_in_light":
            assert [d.otype for d in part.plan.decor] == ["DeskLamp"]
            assert part.plan.decor[0].receptacle in kept
        assert part.agent == task.agent


def test_rename_entities_numbers_as_the_whole_game(engine_installed: None) -> None:
    from skillzero.plugins.alfworld.generate.generator import demangled_names, rename_entities

    cabinets = [
        f"cabinet_bar__plus_00_dot_{i}_bar__plus_00_dot_00_bar__plus_00_dot_00"
        for i in range(10, 15)
    ]
    basin = "sink_bar__plus_01_dot_00_bar__plus_00_dot_90_bar__plus_00_dot_00_bar_sinkbasin"
    full = [*cabinets, basin]
    names = demangled_names(full)
    assert sorted(names.values()) == [*(f"cabinet {i}" for i in range(1, 6)), "sinkbasin 1"]
    part = [full[1], full[3], full[5]]
    part_names = demangled_names(part)
    plan = [f"go to {part_names[full[3]]}", f"move mug 1 to {part_names[full[1]]}"]
    assert rename_entities(plan, part, full) == [
        f"go to {names[full[3]]}",
        f"move mug 1 to {names[full[1]]}",
    ]


def test_plan_games_balances_task_types_and_seeds_differ() -> None:
    from skillzero.plugins.alfworld.generate.generator import game_seed, plan_games

    specs = plan_games(12, 5, TASK_TYPES, ["train", "valid_seen"])
    assert len(specs) == 24
    for split in ("train", "valid_seen"):
        types = [s.task_type for s in specs if s.split == split]
        assert {t: types.count(t) for t in TASK_TYPES} == dict.fromkeys(TASK_TYPES, 2)
    seeds = {game_seed(5, s.split, s.index, a) for s in specs for a in range(3)}
    assert len(seeds) == 72
    assert game_seed(5, "train", 0) == game_seed(5, "train", 0) != game_seed(6, "train", 0)


# ----------------------------------------------------------------------------------------
# Generated games: format, loader, pool, real engine
# ----------------------------------------------------------------------------------------


def test_generated_layout_and_files(generated: Path) -> None:
    from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

    from skillzero.plugins.alfworld.generate import scenes

    domain = Path(ALFRED_PDDL_PATH).read_text()
    grammar = Path(ALFRED_TWL2_PATH).read_text()
    manifest = read_json(generated / "skillzero-games.json")
    assert manifest["seed"] == 7
    assert set(manifest["splits"]) == {"train", "valid_unseen"}
    assert not (generated / ".staging").exists()
    for split, n in (("train", 12), ("valid_unseen", 6)):
        found = trials(generated, split)
        assert len(found) == n
        files = [(t / "game.tw-pddl").relative_to(generated).as_posix() for t in found]
        assert manifest["splits"][split]["files"] == sorted(files)
        for trial in found:
            assert sorted(p.name for p in trial.iterdir()) == [
                "game.tw-pddl",
                "initial_state.pddl",
                "traj_data.json",
            ]
            game = read_json(trial / "game.tw-pddl")
            traj = read_json(trial / "traj_data.json")
            assert list(game) == GAME_KEYS
            assert game["pddl_domain"] == domain
            assert game["solvable"] is True
            assert game["pddl_problem"] == (trial / "initial_state.pddl").read_text()
            walkthrough = game["walkthrough"]
            assert walkthrough
            assert all(isinstance(a, str) for a in walkthrough)
            # the grammar is alfworld's, with the goal text (from ALFRED's templates)
            match = re.search(r"Your task is to: (.*?)\.\"", game["grammar"])
            assert match
            desc = match.group(1)
            assert game["grammar"] == grammar.replace("UNKNOWN GOAL", desc)
            assert traj["turk_annotations"]["anns"][0]["task_desc"].lower() == desc + "."
            # traj_data: the fields ALFWorld reads, consistent with the folder name
            params = traj["pddl_params"]
            task_type, obj, mrecep, parent, scene = trial.parent.name.split("-")
            assert traj["task_type"] == task_type
            assert params["object_target"] == obj
            assert mrecep == "None"
            assert parent == (params["toggle_target"] or params["parent_target"])
            assert traj["scene"]["scene_num"] == int(scene)
            assert traj["scene"]["floor_plan"] == f"FloorPlan{scene}"
            assert int(scene) in scenes.split_scenes(split)
            assert traj["task_id"] == trial.name
            assert traj["skillzero"]["split"] == split
            high = [h["discrete_action"]["action"] for h in traj["plan"]["high_pddl"]]
            assert high[0] == "GotoLocation"
            assert high[-1] == "NoOp"
            assert f"(problem plan_{trial.name})" in game["pddl_problem"]


def test_generated_format_matches_the_benchmark(generated: Path, sample_root: Path) -> None:
    """Same keys, declarations, predicates and goal blocks as the real games."""

    def predicates(problem: str) -> set[str]:
        init = problem.split("(:init", 1)[1].split("(:goal", 1)[0]
        return set(re.findall(r"\((\w+) ", init))

    def declarations(problem: str) -> list[str]:
        return sorted(re.findall(r"^\s*(\w+) - (?:otype|rtype)$", problem, re.M)) + sorted(
            re.findall(r"^\s*([A-Za-z]+) - object$", problem, re.M)
        )

    def goal_shape(problem: str) -> str:
        goal = problem.split("(:goal", 1)[1]
        return re.sub(r"\w+Type\b", "T", re.sub(r"\s+", " ", goal)).strip()

    real = {t.parent.name.split("-")[0]: t for t in trials(sample_root, "valid_unseen")}
    real_predicates: set[str] = set()
    for trial in real.values():
        real_predicates |= predicates(read_json(trial / "game.tw-pddl")["pddl_problem"])
    for trial in trials(generated):
        game = read_json(trial / "game.tw-pddl")
        traj = read_json(trial / "traj_data.json")
        ref = real[trial.parent.name.split("-")[0]]
        real_game = read_json(ref / "game.tw-pddl")
        real_traj = read_json(ref / "traj_data.json")
        assert list(game) == list(real_game)
        assert set(real_traj) - {"images"} <= set(traj)
        assert set(real_traj["pddl_params"]) == set(traj["pddl_params"])
        assert set(real_traj["scene"]) <= set(traj["scene"])
        assert set(real_traj["turk_annotations"]["anns"][0]) == set(
            traj["turk_annotations"]["anns"][0]
        )
        assert declarations(game["pddl_problem"]) == declarations(real_game["pddl_problem"])
        assert predicates(game["pddl_problem"]) <= real_predicates
        assert goal_shape(game["pddl_problem"]) == goal_shape(real_game["pddl_problem"])
        assert game["pddl_problem"].startswith("\n(define (problem plan_trial_")


def test_generated_games_load_and_win_through_the_pool(generated: Path) -> None:
    from skillzero.plugins.alfworld.check import play_walkthroughs
    from skillzero.plugins.alfworld.games import read_walkthrough

    cfg = {"data_dir": str(generated)}
    train = list_tasks(cfg, "train")
    unseen = list_tasks(cfg, "valid_unseen")
    assert count_by_type(train) == dict.fromkeys(SHORT_NAMES.values(), 2)
    assert count_by_type(unseen) == dict.fromkeys(SHORT_NAMES.values(), 1)
    only = list_tasks({**cfg, "task_types": [2, 4]}, "train")
    assert {t.task_type for t in only} == {TASK_TYPES[1], TASK_TYPES[3]}
    tasks = train + unseen
    records = play_walkthroughs(tasks, cfg, workers=2, envs=6)
    for task, record in zip(tasks, records, strict=True):
        assert record["won"], record
        assert "error" not in record
        assert record["steps"] == len(read_walkthrough(task.payload["game_file"]))
        assert record["first_observation"].startswith("-= Welcome to TextWorld, ALFRED! =-")
        assert "Your task is to: " in record["first_observation"]


ALFWORLD_ENGINE = r"""
import json, sys
root, out = sys.argv[1], sys.argv[2]
import textworld, textworld.gym
from alfworld.agents.environment import get_environment
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

# ALFWorld's own game collection (through traj_data.json), as for training.
config = {
    "env": {"goal_desc_human_anns_prob": 0, "task_types": [1, 2, 3, 4, 5, 6]},
    "dataset": {"data_path": root, "num_train_games": -1},
    "general": {"training_method": "dagger"},
}
games = sorted(get_environment("AlfredTWEnv")(config, "train").game_files)
# A bare textworld.gym env as ALFWorld's init_env builds it, playing the walkthroughs
# of the valid_unseen games (one per task type).
infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
results = {"collected": games, "played": []}
for game in [g for g in games if "/valid_unseen/" in g]:
    env_id = textworld.gym.register_games(
        [game], infos, batch_size=1, asynchronous=False, max_episode_steps=50,
        wrappers=[AlfredDemangler(shuffle=False), AlfredInfos],
    )
    env = textworld.gym.make(env_id)
    obs, info = env.reset()
    walkthrough = json.load(open(game))["walkthrough"]
    wins = []
    for action in walkthrough:
        obs2, scores, dones, info2 = env.step([action])
        wins.append(bool(info2["won"][0]))
    env.close()
    results["played"].append({"game": game, "first": obs[0], "wins": wins})
json.dump(results, open(out, "w"))
"""


def test_alfworld_itself_collects_and_plays_the_games(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "engine.json"
    proc = subprocess.run(
        [sys.executable, "-c", ALFWORLD_ENGINE, str(generated / "json_2.1.1"), str(out)],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_json(out)
    assert results["collected"] == sorted(str(t / "game.tw-pddl") for t in trials(generated))
    assert len(results["played"]) == 6
    for result in results["played"]:
        traj = read_json(Path(result["game"]).parent / "traj_data.json")
        desc = traj["turk_annotations"]["anns"][0]["task_desc"].lower()
        assert result["first"].startswith("-= Welcome to TextWorld, ALFRED! =-")
        assert f"Your task is to: {desc}" in result["first"]
        assert result["wins"][-1] is True
        assert not any(result["wins"][:-1])


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files(engine_installed: None, tmp_path: Path) -> None:
    from skillzero.plugins.alfworld.generate.generator import generate

    types = ["look", "pick_heat_then_place_in_recep", "6"]
    one = generate(tmp_path / "a", 3, seed=11, task_types=types, splits=["valid_seen"], workers=1)
    two = generate(tmp_path / "b", 3, seed=11, task_types=types, splits=["valid_seen"], workers=2)
    other = generate(tmp_path / "c", 3, seed=12, task_types=types, splits=["valid_seen"])
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert len(a) == 3 * 3 + 1
    assert a == b
    assert [r.path for r in one] == [r.path for r in two]
    assert [r.task_type for r in one] == [TASK_TYPES[1], TASK_TYPES[3], TASK_TYPES[5]]
    assert set(a) != set(c)
    assert [r.task_type for r in other] == [r.task_type for r in one]


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def test_generate_and_stats_commands_end_to_end(
    engine_installed: None, tmp_path: Path, sample_root: Path
) -> None:
    out = tmp_path / "games"
    jsonl = tmp_path / "games.jsonl"
    proc = _cli(
        "alfworld", "generate", "--out", str(out), "--n", "2", "--seed", "4",
        "--task-types", "look", "heat", "--split", "valid_seen", "valid_unseen",
        "--workers", "2", "--jsonl", str(jsonl), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert f"wrote 4 games to {out.resolve()}" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert rows[1][:4] == ["valid_seen", "look", "1", "0"]
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["split"], r["task_type"]) for r in records] == [
        ("valid_seen", TASK_TYPES[1]),
        ("valid_seen", TASK_TYPES[3]),
        ("valid_unseen", TASK_TYPES[1]),
        ("valid_unseen", TASK_TYPES[3]),
    ]
    assert all((out / r["path"]).is_file() for r in records)

    proc = _cli("alfworld", "check", "--data", str(out), "--split", "valid_seen", "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(row.split()[:3] == ["all", "2", "2"] for row in proc.stdout.splitlines())
    assert "using generated ALFWorld games" in proc.stderr

    proc = _cli("alfworld", "stats", str(out), "--compare", str(sample_root))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout
    header = table.splitlines()[0]
    for label in ("games/valid_seen", "games/valid_unseen", "sample/valid_unseen"):
        assert label in header
    rows = [line.split("|") for line in table.splitlines()[2:] if line.startswith("|")]
    cells = {row[1].strip(): row[2:-1] for row in rows}
    assert [c.strip() for c in cells["games"]] == ["2", "2", "12"]
    assert cells["task type: look"][0].strip() == "1 (50%)"
    assert cells["task type: pick"][0].strip() == "0 (0%)"
    for row in ("receptacles per room", "objects per room", "walkthrough length"):
        assert all(re.fullmatch(r"\d+\.\d \(\d+-\d+\)", c.strip()) for c in cells[row])

    proc = _cli("alfworld", "stats", str(out), "--split", "valid_unseen", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [summary] = json.loads(proc.stdout)
    assert summary["games"] == 2
    assert summary["task_types"]["look"] == summary["task_types"]["heat"] == 1
    assert summary["rooms"]["bedroom"] == 1
    assert summary["rooms"]["kitchen"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--n", "0"], "--n must be >= 1, got 0"),
        (["--n", "2", "--workers", "0"], "--workers must be >= 1"),
        (
            ["--n", "2", "--task-types", "pick", "juggle"],
            "--task-types: unknown task type 'juggle'",
        ),
        (["--n", "2", "--task-types", "7"], "unknown task type '7'"),
        (["--n", "2", "--out", "{file}"], "exists and is not a folder"),
        (
            ["--n", "2", "--out", "{full}"],
            "already holds games; use an empty folder or --overwrite",
        ),
        (["--n", "2", "--jsonl", "/no/such/dir/x.jsonl"], "--jsonl: folder"),
        (["--n", "2", "--max-receptacles", "3"], "--max-receptacles must be >= 4, got 3"),
        (["--n", "2", "--max-object-types", "0"], "--max-object-types must be >= 1, got 0"),
    ],
)
def test_generate_bad_arguments_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    file = tmp_path / "file.txt"
    file.write_text("x")
    full = tmp_path / "full"
    (full / "json_2.1.1" / "train" / "something").mkdir(parents=True)
    args = [a.format(file=file, full=full) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    proc = _cli("alfworld", "generate", *args, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert message in errors[0]
    assert not (tmp_path / "out" / "json_2.1.1").exists()


def test_generate_and_stats_usage_errors(tmp_path: Path) -> None:
    proc = _cli("alfworld", "generate", "--n", "2", timeout=120)
    assert proc.returncode == 2
    assert "--out" in proc.stderr
    assert "required" in proc.stderr
    proc = _cli("alfworld", "generate", "--out", str(tmp_path), "--n", "2", "--split", "x")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    proc = _cli("alfworld", "generate", "--out", str(tmp_path), "--n", "two", timeout=120)
    assert proc.returncode == 2
    assert "invalid int value" in proc.stderr
    proc = _cli("alfworld", "stats", str(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert f"error: DIR: no json_2.1.1/ folder in {tmp_path}" in proc.stderr
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    proc = _cli("alfworld", "stats", str(tmp_path), "--split", "valid_seen", timeout=120)
    assert proc.returncode == 2
    assert "no split 'valid_seen'" in proc.stderr
    assert "present: train" in proc.stderr
    proc = _cli("alfworld", timeout=120)
    assert proc.returncode == 2
    for command in ("check", "generate", "stats"):
        assert command in proc.stderr


# ----------------------------------------------------------------------------------------
# The default game set
# ----------------------------------------------------------------------------------------

SMALL = {"train": 6, "valid_seen": 6, "valid_unseen": 6}


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home and cache folder without any ALFWorld games, and no $ALFWORLD_DATA."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    monkeypatch.delenv("SKILLZERO_ALFWORLD_GENERATE", raising=False)
    return tmp_path


def test_default_set_is_generated_once_on_first_use(
    engine_installed: None,
    fresh_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from skillzero.plugins.alfworld.generate import default
    from skillzero.plugins.alfworld.setup import resolve_data_dir

    monkeypatch.setattr(default, "DEFAULT_COUNTS", SMALL)
    expected = fresh_home / "cache" / "skillzero" / "alfworld-generated"
    root = resolve_data_dir({})
    assert root.parent == expected.resolve()
    assert root.name == f"v1-seed{default.DEFAULT_SEED}"
    assert default.is_complete(root)
    marker = read_json(root / default.MARKER)
    assert marker["games"] == 18
    assert marker["counts"] == SMALL
    err = capsys.readouterr().err
    assert "generating the default set (6 train, 6 valid_seen, 6 valid_unseen games" in err
    assert err.count("alfworld: using generated ALFWorld games in") == 1
    assert "[generated default games]" in err
    assert not list(expected.glob(".*tmp-*"))

    # later uses find it at once; the validation split works; alfworld's own
    # $ALFWORLD_DATA default (set when alfworld is imported) does not hide it
    stamp = (root / default.MARKER).stat().st_mtime_ns
    monkeypatch.setenv("ALFWORLD_DATA", str(fresh_home / "home" / ".cache" / "alfworld"))
    assert resolve_data_dir({"data_dir": None}) == root
    assert (root / default.MARKER).stat().st_mtime_ns == stamp
    cfg = {"task_types": [1, 2, 3, 4, 5, 6]}
    for split in ("train", "valid_seen", "valid_unseen"):
        assert count_by_type(list_tasks(cfg, split)) == dict.fromkeys(SHORT_NAMES.values(), 1)
    assert "generating" not in capsys.readouterr().err


def test_default_set_is_not_used_when_alfworld_data_is_set_or_turned_off(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skillzero.plugins.alfworld.data import AlfworldDataError
    from skillzero.plugins.alfworld.setup import resolve_data_dir

    monkeypatch.setenv("ALFWORLD_DATA", str(fresh_home / "nowhere"))
    with pytest.raises(AlfworldDataError) as info:
        resolve_data_dir({})
    message = str(info.value)
    assert "generated default games (not used: $ALFWORLD_DATA is set)" in message
    assert "skillzero alfworld generate" in message
    monkeypatch.delenv("ALFWORLD_DATA")
    monkeypatch.setenv("SKILLZERO_ALFWORLD_GENERATE", "0")
    with pytest.raises(AlfworldDataError, match="turned off by SKILLZERO_ALFWORLD_GENERATE=0"):
        resolve_data_dir({})
    assert not (fresh_home / "cache" / "skillzero" / "alfworld-generated").exists()


@pytest.mark.slow
def test_default_set_at_full_size(
    engine_installed: None, fresh_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from skillzero.plugins.alfworld.check import play_walkthroughs
    from skillzero.plugins.alfworld.generate import default
    from skillzero.plugins.alfworld.generate.stats import split_stats
    from skillzero.plugins.alfworld.setup import resolve_data_dir

    root = resolve_data_dir({})
    assert root == default.default_root().resolve()
    cfg = {"data_dir": str(root)}
    for split, n in default.DEFAULT_COUNTS.items():
        tasks = list_tasks(cfg, split)
        assert count_by_type(tasks) == dict.fromkeys(SHORT_NAMES.values(), n // 6)
        stats = split_stats(root, split)
        assert 4.5 <= sum(stats.values("walkthrough")) / n <= 8
        assert 15 <= sum(stats.values("receptacles")) / n <= 30
    tasks = list_tasks(cfg, "valid_seen") + list_tasks(cfg, "valid_unseen")
    records = play_walkthroughs(tasks, cfg, workers=2, envs=8)
    assert all(r["won"] for r in records)
    print(capsys.readouterr().err)


CONCURRENT = """
import sys
from skillzero.plugins.alfworld.generate.default import ensure_default_games
print(ensure_default_games(counts={"train": 3, "valid_seen": 6, "valid_unseen": 6}, workers=1))
"""


@pytest.mark.slow
def test_concurrent_first_uses_generate_once(engine_installed: None, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=500) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
    roots = {o[0].strip() for o in outputs}
    assert len(roots) == 1
    stderr = "".join(o[1] for o in outputs)
    assert stderr.count("alfworld: generated 15 games") == 1
    assert "waiting for another process" in stderr
    root = Path(roots.pop())
    assert len(trials(root)) == 15
    assert sorted(p.name for p in root.parent.iterdir()) == [root.name, f"{root.name}.lock"]


@pytest.mark.slow
def test_planning_the_relevant_part_gives_optimal_walkthroughs(generated: Path) -> None:
    """The planner on the whole problem (as alfworld-generate) finds plans of the same
    length as the stored walkthroughs (planned on the goal-relevant part)."""
    from skillzero.plugins.alfworld.generate.generator import GameMaker

    maker = GameMaker(full_planning=True)
    try:
        for trial in trials(generated, "valid_unseen"):
            if trial.parent.name.startswith("pick_two"):
                continue  # minutes per game on the whole problem
            game = read_json(trial / "game.tw-pddl")
            plan = maker._plan(game)
            assert len(plan) == len(game["walkthrough"]), (trial, plan, game["walkthrough"])
    finally:
        maker.close()


def test_generation_summary() -> None:
    from skillzero.plugins.alfworld.generate.cli import format_generation_summary
    from skillzero.plugins.alfworld.generate.generator import GameRecord

    records = [
        GameRecord("train", i, TASK_TYPES[i % 2], f"p{i}", 10, 5 + i, 1 + i % 2, 0.5)
        for i in range(4)
    ]
    text = format_generation_summary(records)
    assert text.splitlines()[1].split() == ["train", "pick", "2", "0", "6.0", "0.50"]
    assert text.splitlines()[2].split() == ["train", "look", "2", "2", "7.0", "0.50"]
