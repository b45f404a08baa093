"""The ALFWorld searching expert: walkthroughs with detours, played in the real engine.

Games are the published sample games of the shared data folder (one per task type);
the test skips when they are absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skillzero.plugins.alfworld.expert import (
    SearchingExpert,
    object_in_view,
    receptacles_in_view,
)

pytestmark = pytest.mark.timeout(600)

FIRST = (
    "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room. Looking "
    "quickly around you, you see a bed 1, a desk 2, a drawer 1, a garbagecan 1, and a "
    "shelf 1.\n\nYour task is to: put some bowl on desk."
)


def test_receptacles_are_read_from_the_first_observation() -> None:
    assert receptacles_in_view(FIRST) == [
        "bed 1",
        "desk 2",
        "drawer 1",
        "garbagecan 1",
        "shelf 1",
    ]
    assert receptacles_in_view("Nothing happens.") == []


def test_object_in_view_matches_whole_instance_names() -> None:
    seen = "On the desk 1, you see a mug 2, a pen 1, and a cellphone 3."
    assert object_in_view(seen, "mug")
    assert object_in_view(seen, "cellphone")
    assert not object_in_view(seen, "phone")
    assert not object_in_view("The drawer 1 is closed.", "mug")


def _tasks(sample_root: Path):
    pytest.importorskip("textworld", reason="needs the alfworld extra (textworld)")
    from skillzero import registry

    spec = registry.get("envs", "alfworld")
    cfg = {"data_dir": str(sample_root), "max_steps": 30}
    return spec, cfg, spec.list_tasks(cfg, "valid_unseen")


def _play(spec, cfg, task, actions):
    env = spec.make_env(cfg)
    try:
        observation, info = env.reset(seed=0, options={"task": task})
        observations = [observation]
        for action in actions:
            observation, _reward, done, _truncated, info = env.step(action)
            observations.append(observation)
            if done:
                break
        return observations, bool(info.get("won"))
    finally:
        env.close()


def test_searching_plans_win_and_never_walk_past_the_object(sample_root: Path) -> None:
    spec, cfg, tasks = _tasks(sample_root)
    expert = SearchingExpert({**cfg, "expert_detours": 3})
    plain = SearchingExpert({**cfg, "expert_detours": 0})
    detoured = 0
    try:
        for task in tasks:
            walkthrough = plain.actions(task)
            plan = expert.actions(task)
            assert walkthrough
            assert plan
            # the plan is the walkthrough after zero or more searches
            assert plan[len(plan) - len(walkthrough) :] == walkthrough
            extra = plan[: len(plan) - len(walkthrough)]
            assert all(re.fullmatch(r"(go to|open) [a-z]+ \d+", a) for a in extra)
            detoured += bool(extra)
            observations, won = _play(spec, cfg, task, plan)
            assert won, (task.task_id, plan)
            taken = next(a for a in walkthrough if a.startswith("take "))
            object_class = taken.split()[1]
            for observation in observations[1 : len(extra) + 1]:
                assert not object_in_view(observation, object_class), (plan, observation)
            # deterministic per task
            assert expert.actions(task) == plan
    finally:
        expert.close()
    assert detoured >= 2, "searches should precede most walkthroughs at 3 detours"


def test_detours_fit_the_episode(sample_root: Path) -> None:
    _spec, cfg, tasks = _tasks(sample_root)
    plain = SearchingExpert({**cfg, "expert_detours": 0})
    for task in tasks:
        walkthrough = plain.actions(task)
        limit = len(walkthrough) + 1
        expert = SearchingExpert({**cfg, "expert_detours": 3, "max_steps": limit})
        try:
            plan = expert.actions(task)
        finally:
            expert.close()
        assert len(plan) <= limit
