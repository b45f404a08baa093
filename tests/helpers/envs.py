"""A deterministic corridor environment for pool and env-contract tests.

The agent starts at position 0 of a corridor of ``task.payload["length"]`` cells and wins
(reward 1.0, terminated) on reaching the end. Besides the admissible moves, a few special
actions exercise failure paths:

``crash``
    raises inside the env (an engine error: the pool must truncate the episode).
``die``
    ends the worker process abruptly (``os._exit``); outside a worker process (a child
    process, or a Ray actor, which sets ``$SKILLZERO_ENV_WORKER``) it raises instead, so
    a test can never take the test runner down with it.
``sleep:<seconds>``
    blocks, to test the pool's receive timeout.
``getpid``
    reports the id of the process the env runs in.

``reset`` draws a ``noise`` number from the env's seeded RNG into the observation, so
observations show which seed an episode was started with.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Mapping
from typing import Any

from skillzero.contracts.env import Task, TextEnv

ADMISSIBLE = ["forward", "back", "wait"]


class CorridorEnv(TextEnv):
    """Walk ``forward`` to the end of the corridor. Built from an env config mapping."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        cfg = dict(cfg or {})
        super().__init__(max_steps=int(cfg.get("max_steps", 20)))
        self.position = 0
        self.length = 0
        self.noise = 0
        self.closed = False

    def _observe(self, text: str) -> str:
        assert self.task is not None
        return f"{self.task.task_id} pos={self.position}/{self.length} noise={self.noise} {text}"

    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        if task.payload.get("fail_reset"):
            raise RuntimeError(f"cannot start {task.task_id}")
        self.length = int(task.payload.get("length", 3))
        self.position = 0
        self.noise = int(self.np_random.integers(0, 1_000_000))
        return self._observe("start"), {"won": False, "admissible_actions": list(ADMISSIBLE)}

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        if action == "crash":
            raise RuntimeError("engine exploded on purpose")
        if action == "die":
            if mp.parent_process() is not None or os.environ.get("SKILLZERO_ENV_WORKER"):
                os._exit(3)
            raise RuntimeError("'die' is only honoured inside a worker process")
        if action.startswith("sleep:"):
            time.sleep(float(action.split(":", 1)[1]))
            text = "slept"
        elif action == "getpid":
            text = f"pid={os.getpid()}"
        elif action == "forward":
            self.position += 1
            text = "moved forward"
        elif action == "back":
            self.position = max(0, self.position - 1)
            text = "moved back"
        elif action == "wait":
            text = "waited"
        else:
            text = f"nothing happens ({action})"
        won = self.position >= self.length
        info = {"won": won, "admissible_actions": [] if won else list(ADMISSIBLE)}
        return self._observe(text), (1.0 if won else 0.0), won, info

    def close(self) -> None:
        self.closed = True


def broken_env_factory(cfg: Mapping[str, Any] | None = None) -> CorridorEnv:
    """An env factory that always fails (a missing engine, a bad data path, ...)."""
    raise RuntimeError("env factory exploded on purpose")


def corridor_task(task_id: str = "t0", length: int = 3, **payload: Any) -> Task:
    return Task(task_id, task_type=f"len{length}", payload={"length": length, **payload})
