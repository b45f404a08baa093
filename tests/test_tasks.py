"""TaskSampler: reproducible epochs, fixed order, and checkpoint resume."""

from __future__ import annotations

import json

import pytest

from skillzero.contracts.env import Task
from skillzero.core.tasks import TaskSampler

TASKS = [Task(f"task-{i}", f"type-{i % 3}") for i in range(10)]


def ids(tasks: list[Task]) -> list[str]:
    return [t.task_id for t in tasks]


def test_needs_tasks() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        TaskSampler([])


def test_same_seed_same_sequence() -> None:
    a, b = TaskSampler(TASKS, seed=3), TaskSampler(TASKS, seed=3)
    assert ids(a.next(35)) == ids(b.next(35))


def test_sequence_depends_on_seed_and_chunking_does_not_matter() -> None:
    whole = ids(TaskSampler(TASKS, seed=3).next(30))
    assert whole != ids(TaskSampler(TASKS, seed=4).next(30))
    chunked = TaskSampler(TASKS, seed=3)
    pieces = [ids(chunked.next(n)) for n in (1, 0, 7, 2, 11, 9)]
    assert [tid for piece in pieces for tid in piece] == whole


def test_every_task_once_per_epoch() -> None:
    sampler = TaskSampler(TASKS, seed=1)
    epochs = [ids(sampler.next(len(TASKS))) for _ in range(4)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(ids(TASKS))
    assert sampler.epoch == 3
    # epochs are fresh permutations, and shuffled at all
    assert len({tuple(e) for e in epochs}) == 4
    assert ids(TASKS) not in epochs


def test_no_shuffle_keeps_order_and_wraps() -> None:
    sampler = TaskSampler(TASKS, seed=123, shuffle=False)
    assert sampler.next(25) == TASKS + TASKS + TASKS[:5]
    assert sampler.epoch == 2
    assert sampler.position == 5


def test_next_zero_is_empty() -> None:
    sampler = TaskSampler(TASKS)
    assert sampler.next(0) == []
    assert sampler.state_dict()["position"] == 0


@pytest.mark.parametrize("consumed", [0, 4, 10, 13, 20, 27])
def test_state_dict_resumes_the_exact_sequence(consumed: int) -> None:
    original = TaskSampler(TASKS, seed=9)
    original.next(consumed)
    state = json.loads(json.dumps(original.state_dict()))  # survives a checkpoint file
    resumed = TaskSampler(TASKS, seed=0, shuffle=False)  # settings come from the state
    resumed.load_state_dict(state)
    assert resumed.state_dict() == original.state_dict()
    assert ids(resumed.next(23)) == ids(original.next(23))


def test_state_dict_restores_shuffle_flag() -> None:
    original = TaskSampler(TASKS, seed=2, shuffle=False)
    original.next(3)
    resumed = TaskSampler(TASKS, seed=2, shuffle=True)
    resumed.load_state_dict(original.state_dict())
    assert resumed.shuffle is False
    assert resumed.next(9) == TASKS[3:] + TASKS[:2]


def test_state_dict_with_mismatched_task_count_raises() -> None:
    state = TaskSampler(TASKS).state_dict()
    sampler = TaskSampler(TASKS[:7])
    with pytest.raises(ValueError, match="10 tasks"):
        sampler.load_state_dict(state)
    assert sampler.state_dict()["num_tasks"] == 7
