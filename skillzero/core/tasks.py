"""Deterministic task order: which task each env group plays next.

The sampler walks seeded permutations of the task list, epoch after epoch, so a run's
task order depends only on its seed, and its position is part of a checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from skillzero.contracts.env import Task


class TaskSampler:
    """Hands out tasks in a reproducible order.

    ``shuffle=False`` keeps the given order (evaluation sets are played in order);
    otherwise each epoch is a fresh permutation drawn from ``seed`` and the epoch number.
    """

    def __init__(self, tasks: Sequence[Task], seed: int = 0, shuffle: bool = True) -> None:
        if not tasks:
            raise ValueError("TaskSampler needs at least one task")
        self.tasks = list(tasks)
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(len(self.tasks)))
        if self.shuffle:
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
        return order

    def next(self, n: int) -> list[Task]:
        """The next ``n`` tasks (wrapping into a new epoch when the list runs out)."""
        picked = []
        for _ in range(n):
            if self.position >= len(self._order):
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            picked.append(self.tasks[self._order[self.position]])
            self.position += 1
        return picked

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "num_tasks": len(self.tasks),
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_tasks"] != len(self.tasks):
            raise ValueError(
                f"checkpoint's task list has {state['num_tasks']} tasks, this one {len(self.tasks)}"
            )
        self.seed, self.shuffle = state["seed"], state["shuffle"]
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)


def balanced_subset(tasks: Sequence[Task], limit: int) -> list[Task]:
    """``limit`` of ``tasks`` taken round-robin over their task types, each type's tasks
    in split order (all tasks when ``limit`` <= 0 or covers them). A small validation set
    then measures every task type, where the first N of a split sorted by name would
    hold only the first types."""
    if limit <= 0 or limit >= len(tasks):
        return list(tasks)
    by_type: dict[str, list[Task]] = {}
    for task in tasks:
        by_type.setdefault(task.task_type, []).append(task)
    queues = [list(group) for group in by_type.values()]
    chosen: list[Task] = []
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen
