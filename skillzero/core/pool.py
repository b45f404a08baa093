"""A vector pool of text environments: N envs in G groups, stepped in parallel workers.

Layout: ``num_envs = num_groups * group_size``; env ``i`` belongs to group
``i // group_size`` and all members of a group start from the same task (GRPO/GiGPO
compare their returns). Envs are spread round-robin over the workers so that the members
of a group, which tend to finish at similar times, do not all sit on one worker.

Where the envs run is a :class:`WorkerBackend` (registered through the
``register_env_workers`` hook): ``process`` runs each worker in its own OS process
holding several envs, ``ray`` runs each worker as a Ray actor holding several envs, on
this machine or anywhere in a Ray cluster (:mod:`skillzero.core.ray_pool`, the ``ray``
extra), ``inline`` runs them in the calling process. A worker receives the
commands for all its envs in one message and answers in one message, so one pool step
costs one round trip per worker, not per env.

Failure handling: an exception inside an env ends that env's episode as *truncated* with
``info["error"]`` set; a worker process that dies is restarted, the episodes it held are
returned as truncated with ``info["worker_restarted"] = True``, and
:attr:`EnvPool.worker_restarts` counts it. No result is ever dropped or repeated: each
env that was asked to act gets exactly one :class:`StepResult` per call.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from skillzero.core.env import StepResult, Task
from skillzero.registry.specs import Factory, resolve

# A command for one env: ("reset", env_index, task, seed) or ("step", env_index, action).
Command = tuple[Any, ...]


@dataclass
class Reply:
    """A worker's answer for one env command, with the seconds the env spent on it."""

    env_index: int
    result: StepResult
    seconds: float


class WorkerDiedError(RuntimeError):
    """The worker stopped answering (its process exited or was killed)."""


# ----------------------------------------------------------------------------------------
# What runs inside a worker
# ----------------------------------------------------------------------------------------


class EnvHost:
    """Holds the envs of one worker and executes command batches against them."""

    def __init__(self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]):
        make = resolve(env_factory)
        self.envs = {i: make(env_cfg) for i in env_indices}

    def run(self, commands: list[Command]) -> list[Reply]:
        start = time.perf_counter()
        steps = self._prepare_steps(commands)
        # the shared preparation counts as env time, split over the steps it served
        shared = (time.perf_counter() - start) / steps if steps else 0.0
        replies = []
        for command in commands:
            start = time.perf_counter()
            result = self._run_one(command)
            seconds = time.perf_counter() - start + (shared if command[0] == "step" else 0.0)
            replies.append(Reply(command[1], result, seconds))
        return replies

    def _prepare_steps(self, commands: list[Command]) -> int:
        """Show each env class the steps of this call first (``TextEnv.prepare_steps``),
        so that envs waiting on a server can batch their requests; returns the number of
        step commands."""
        by_class: dict[type, list[tuple[Any, str]]] = {}
        steps = 0
        for command in commands:
            if command[0] != "step":
                continue
            steps += 1
            env = self.envs.get(command[1])
            if env is not None and callable(getattr(type(env), "prepare_steps", None)):
                by_class.setdefault(type(env), []).append((env, command[2]))
        for env_class, pairs in by_class.items():
            with contextlib.suppress(Exception):  # each step still works on its own
                env_class.prepare_steps(pairs)
        return steps

    def _run_one(self, command: Command) -> StepResult:
        op, index = command[0], command[1]
        env = self.envs[index]
        try:
            if op == "reset":
                task, seed = command[2], command[3]
                observation, info = env.reset(seed=seed, options={"task": task})
                return StepResult(
                    observation,
                    won=bool(info.get("won", False)),
                    admissible_actions=info.get("admissible_actions"),
                    info=info,
                )
            if op == "step":
                observation, reward, terminated, truncated, info = env.step(command[2])
                return StepResult(
                    observation,
                    reward=reward,
                    terminated=terminated,
                    truncated=truncated,
                    won=bool(info.get("won", False)),
                    admissible_actions=info.get("admissible_actions"),
                    info=info,
                )
            raise ValueError(f"unknown env command {op!r}")
        except Exception as exc:  # an engine error ends this episode, not the pool
            task = command[2] if op == "reset" else getattr(env, "task", None)
            return StepResult(
                "",
                truncated=True,
                info={
                    "won": False,
                    "admissible_actions": None,
                    "task_id": getattr(task, "task_id", ""),
                    "task_type": getattr(task, "task_type", ""),
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=5),
                },
            )

    def close(self) -> None:
        for env in self.envs.values():
            with contextlib.suppress(Exception):
                env.close()


def _worker_main(
    conn: Connection, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
) -> None:
    # Engines are single-threaded; keep numeric libraries from oversubscribing the cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        host = EnvHost(env_factory, env_cfg, env_indices)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            conn.send(host.run(message))
    finally:
        host.close()


# ----------------------------------------------------------------------------------------
# Worker backends
# ----------------------------------------------------------------------------------------


class WorkerHandle(ABC):
    """One running worker as the pool sees it."""

    @abstractmethod
    def send(self, commands: list[Command]) -> None: ...

    @abstractmethod
    def receive(self, timeout: float | None = None) -> list[Reply]:
        """Wait for the answer to the last :meth:`send`; raise :class:`WorkerDiedError`."""

    @abstractmethod
    def close(self) -> None: ...

    def kill(self) -> None:
        """Stop the worker abruptly (tests use it to simulate a crash)."""
        self.close()

    def wait_ready(self) -> None:  # noqa: B027 - optional for backends that start at once
        """Block until the worker has built its envs (raise if it could not)."""

    @property
    def pid(self) -> int | None:
        return None


class WorkerBackend(ABC):
    """Starts workers that host envs. Register new ones with ``register_env_workers``."""

    @abstractmethod
    def start_worker(
        self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
    ) -> WorkerHandle: ...


class _InlineHandle(WorkerHandle):
    def __init__(self, host: EnvHost) -> None:
        self.host: EnvHost | None = host
        self._pending: list[Command] | None = None

    def send(self, commands: list[Command]) -> None:
        self._pending = commands

    def receive(self, timeout: float | None = None) -> list[Reply]:
        if self.host is None:
            raise WorkerDiedError("inline worker was closed")
        commands, self._pending = self._pending or [], None
        return self.host.run(commands)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
            self.host = None


class InlineWorkerBackend(WorkerBackend):
    """Runs the envs in the calling process, one after another (debugging, tiny tests)."""

    def start_worker(
        self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
    ) -> WorkerHandle:
        return _InlineHandle(EnvHost(env_factory, env_cfg, env_indices))


class _ProcessHandle(WorkerHandle):
    def __init__(
        self, process: mp.process.BaseProcess, conn: Connection, startup_timeout: float
    ) -> None:
        self.process, self.conn = process, conn
        self.startup_timeout = startup_timeout
        self.ready = False

    def wait_ready(self) -> None:
        if self.ready:
            return
        if not self.conn.poll(self.startup_timeout):
            self.kill()
            raise RuntimeError(f"env worker did not start within {self.startup_timeout} s")
        try:
            status, detail = self.conn.recv()
        except EOFError:
            raise RuntimeError(
                f"env worker exited during start-up (code {self.process.exitcode})"
            ) from None
        if status != "ready":
            self.close()
            raise RuntimeError(f"env worker failed to build its envs: {detail}")
        self.ready = True

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, commands: list[Command]) -> None:
        try:
            self.conn.send(commands)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDiedError(f"worker pid {self.pid} is gone: {exc}") from None

    def receive(self, timeout: float | None = None) -> list[Reply]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if self.conn.poll(0.5):
                    return self.conn.recv()
            except (EOFError, OSError) as exc:
                raise WorkerDiedError(f"worker pid {self.pid} is gone: {exc!r}") from None
            if not self.process.is_alive():
                raise WorkerDiedError(
                    f"worker pid {self.pid} exited with code {self.process.exitcode}"
                )
            if deadline is not None and time.monotonic() > deadline:
                self.kill()
                raise WorkerDiedError(f"worker pid {self.pid} timed out after {timeout} s")

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=10)


class ProcessWorkerBackend(WorkerBackend):
    """Each worker is a local OS process holding several envs.

    ``start_method`` defaults to ``spawn``: forking a parent that already runs torch or
    vLLM threads can deadlock, and a spawned worker imports only the env's own modules.
    """

    def __init__(self, start_method: str = "spawn", startup_timeout: float = 600.0) -> None:
        self.context = mp.get_context(start_method)
        self.startup_timeout = startup_timeout

    def start_worker(
        self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
    ) -> WorkerHandle:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_worker_main,
            args=(child, env_factory, dict(env_cfg), env_indices),
            daemon=True,
            name=f"skillzero-env-worker-{env_indices[0] if env_indices else 0}",
        )
        process.start()
        child.close()
        # The pool calls wait_ready() once every worker is started, so that workers build
        # their envs (often seconds of imports) in parallel.
        return _ProcessHandle(process, parent, self.startup_timeout)


def make_worker_backend(name: str, params: Mapping[str, Any] | None = None) -> WorkerBackend:
    """The registered worker backend ``name`` built with ``params`` (``env.pool.params``);
    unknown settings are an error that names them and the backend."""
    import inspect

    from skillzero import registry

    factory = registry.get("env_workers", name).load()
    params = dict(params or {})
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C factory: let the call decide
        accepted = None
    if accepted is not None and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(str(k) for k in params if k not in accepted)
        if unknown:
            known = [k for k in accepted if k != "self"]
            raise ValueError(
                f"env.pool.params: unknown setting(s) {', '.join(unknown)} for the {name!r} "
                f"worker backend; known: {', '.join(known) or '(none)'}"
            )
    return factory(**params)


def _pool_params(env_cfg: Mapping[str, Any] | Any) -> dict[str, Any]:
    pool = env_cfg.get("pool") if hasattr(env_cfg, "get") else None
    params = pool.get("params") if hasattr(pool, "get") else None
    return dict(params or {})


# ----------------------------------------------------------------------------------------
# The pool
# ----------------------------------------------------------------------------------------


@dataclass
class PoolTimings:
    """Cumulative seconds: env compute inside workers, and wall time of pool calls."""

    env_seconds: float = 0.0
    busiest_worker_seconds: float = 0.0
    wall_seconds: float = 0.0
    reset_seconds: float = 0.0
    step_seconds: float = 0.0
    calls: int = 0
    env_steps: int = 0
    env_resets: int = 0
    workers: int = 1

    @property
    def overhead_seconds(self) -> float:
        """Wall time minus the env time summed over workers (clamped at 0). With one
        worker this is everything but env work; with several, see :attr:`ipc_seconds`."""
        return max(0.0, self.wall_seconds - self.env_seconds)

    @property
    def ipc_seconds(self) -> float:
        """Wall time beyond the busiest worker's env time in each call: messaging and
        pickling, with waiting on an unevenly loaded worker excluded."""
        return max(0.0, self.wall_seconds - self.busiest_worker_seconds)

    @property
    def imbalance_seconds(self) -> float:
        """Env time lost to uneven load: the busiest worker's time summed over calls,
        minus what a perfect split of all env time would have taken."""
        return max(0.0, self.busiest_worker_seconds - self.env_seconds / max(1, self.workers))


@dataclass
class _EnvSlot:
    task: Task | None = None
    seed: int | None = None
    done: bool = True
    worker: int = 0


@dataclass
class EnvPool:
    """``num_groups * group_size`` envs stepped in parallel by ``workers`` workers.

    ``env_factory`` builds one env from ``env_cfg`` (an :class:`EnvSpec`'s ``env``).
    ``backend`` is a :class:`WorkerBackend` or the name of a registered one, built with
    ``backend_params`` as keyword arguments; when those are not given, the
    ``pool.params`` of ``env_cfg`` (the ``env.pool.params`` of the config) are used.
    """

    env_factory: Factory
    env_cfg: Mapping[str, Any]
    num_groups: int
    group_size: int = 1
    workers: int = 1
    backend: WorkerBackend | str = "process"
    seed: int = 0
    receive_timeout: float | None = None
    backend_params: Mapping[str, Any] | None = None
    worker_restarts: int = field(default=0, init=False)
    timings: PoolTimings = field(default_factory=PoolTimings, init=False)

    def __post_init__(self) -> None:
        if self.num_groups < 1 or self.group_size < 1:
            raise ValueError(
                f"num_groups and group_size must be >= 1 (got {self.num_groups}, {self.group_size})"
            )
        self.workers = max(1, min(self.workers, self.num_envs))
        if isinstance(self.backend, str):
            self.backend = make_worker_backend(
                self.backend,
                _pool_params(self.env_cfg) if self.backend_params is None else self.backend_params,
            )
        self._slots = [_EnvSlot(worker=i % self.workers) for i in range(self.num_envs)]
        self.timings.workers = self.workers
        self._handles: list[WorkerHandle] = []
        self._episode = 0
        try:
            for worker in range(self.workers):
                self._handles.append(self._start(worker))
            for handle in self._handles:
                handle.wait_ready()
        except BaseException:
            self.close()
            raise

    # -- shape ---------------------------------------------------------------------------
    @property
    def num_envs(self) -> int:
        return self.num_groups * self.group_size

    def group_of(self, env_index: int) -> int:
        return env_index // self.group_size

    @property
    def active(self) -> list[bool]:
        """Which envs are in an unfinished episode."""
        return [not slot.done for slot in self._slots]

    @property
    def tasks(self) -> list[Task | None]:
        return [slot.task for slot in self._slots]

    def worker_pids(self) -> list[int | None]:
        return [handle.pid for handle in self._handles]

    # -- workers -------------------------------------------------------------------------
    def _indices_of(self, worker: int) -> list[int]:
        return [i for i, slot in enumerate(self._slots) if slot.worker == worker]

    def _start(self, worker: int) -> WorkerHandle:
        assert isinstance(self.backend, WorkerBackend)
        return self.backend.start_worker(self.env_factory, self.env_cfg, self._indices_of(worker))

    def _dispatch(self, commands: dict[int, list[Command]]) -> dict[int, StepResult]:
        start = time.perf_counter()
        results: dict[int, StepResult] = {}
        sent = []
        busiest = 0.0
        for worker, batch in commands.items():
            if not batch:
                continue
            try:
                self._handles[worker].send(batch)
                sent.append(worker)
            except WorkerDiedError as exc:
                results.update(self._recover(worker, batch, exc))
        for worker in sent:
            batch = commands[worker]
            try:
                replies = self._handles[worker].receive(self.receive_timeout)
            except WorkerDiedError as exc:
                results.update(self._recover(worker, batch, exc))
                continue
            for reply in replies:
                results[reply.env_index] = reply.result
            worker_seconds = sum(reply.seconds for reply in replies)
            self.timings.env_seconds += worker_seconds
            busiest = max(busiest, worker_seconds)
        self.timings.busiest_worker_seconds += busiest
        wall = time.perf_counter() - start
        self.timings.wall_seconds += wall
        self.timings.calls += 1
        return results

    def _recover(
        self, worker: int, batch: list[Command], error: Exception
    ) -> dict[int, StepResult]:
        """Restart a dead worker; its in-flight episodes end as truncated."""
        self.worker_restarts += 1
        with contextlib.suppress(Exception):
            self._handles[worker].kill()
        self._handles[worker] = self._start(worker)
        self._handles[worker].wait_ready()
        lost: dict[int, StepResult] = {}
        # Every env of that worker that was mid-episode lost its state: the ones in this
        # batch and any that were not asked to act in this call.
        in_batch = {command[1] for command in batch}
        for index in self._indices_of(worker):
            slot = self._slots[index]
            if index not in in_batch and slot.done:
                continue
            slot.done = True
            lost[index] = StepResult(
                "",
                truncated=True,
                info={
                    "won": False,
                    "admissible_actions": None,
                    "worker_restarted": True,
                    "error": str(error),
                    "task_id": slot.task.task_id if slot.task else "",
                    "task_type": slot.task.task_type if slot.task else "",
                },
            )
        return lost

    # -- episodes ------------------------------------------------------------------------
    def reset(self, tasks: Sequence[Task], seeds: Sequence[int] | None = None) -> list[StepResult]:
        """Start a new episode in every env: group ``g`` plays ``tasks[g]``.

        ``seeds`` (one per group) default to values derived from the pool seed and the
        episode counter, so a run is reproducible given its seed.
        """
        if len(tasks) != self.num_groups:
            raise ValueError(
                f"reset needs {self.num_groups} tasks (one per group), got {len(tasks)}"
            )
        if seeds is None:
            seeds = [self.seed + 1000 * self._episode + g for g in range(self.num_groups)]
        self._episode += 1
        assignments = {
            index: (tasks[self.group_of(index)], int(seeds[self.group_of(index)]))
            for index in range(self.num_envs)
        }
        results = self.reset_envs(assignments)
        return [results[i] for i in range(self.num_envs)]

    def reset_envs(self, assignments: Mapping[int, tuple[Task, int]]) -> dict[int, StepResult]:
        """Start new episodes in some envs only: ``{env_index: (task, seed)}``.

        Other envs keep their episodes. Use it to refill envs that finished early (an
        evaluation sweep over many tasks) instead of waiting for the whole pool; keeping
        group members on the same task is then the caller's job.
        """
        commands: dict[int, list[Command]] = {w: [] for w in range(self.workers)}
        for index, (task, seed) in assignments.items():
            if not 0 <= index < self.num_envs:
                raise IndexError(f"env index {index} out of range 0..{self.num_envs - 1}")
            slot = self._slots[index]
            slot.task, slot.seed, slot.done = task, int(seed), False
            commands[slot.worker].append(("reset", index, task, slot.seed))
        start = time.perf_counter()
        results = self._dispatch(commands)
        self.timings.reset_seconds += time.perf_counter() - start
        self.timings.env_resets += len(results)
        for index, result in results.items():
            if result.done:
                self._slots[index].done = True
        return results

    def step(self, actions: Mapping[int, str] | Sequence[str | None]) -> dict[int, StepResult]:
        """Step the given envs; returns one result per env that was asked to act.

        ``actions`` maps env index to action text (or is a list with ``None`` for envs
        that do not act). Actions for finished envs are an error: a finished env costs
        no engine time. If a worker died, the result also holds a truncated result for
        each of its envs that was mid-episode without being asked to act.
        """
        if not isinstance(actions, Mapping):
            actions = {i: a for i, a in enumerate(actions) if a is not None}
        commands: dict[int, list[Command]] = {w: [] for w in range(self.workers)}
        for index, action in actions.items():
            if not 0 <= index < self.num_envs:
                raise IndexError(f"env index {index} out of range 0..{self.num_envs - 1}")
            slot = self._slots[index]
            if slot.done:
                raise ValueError(f"env {index} is not in an episode (finished or never reset)")
            commands[slot.worker].append(("step", index, action))
        start = time.perf_counter()
        results = self._dispatch(commands)
        self.timings.step_seconds += time.perf_counter() - start
        self.timings.env_steps += len(results)
        for index, result in results.items():
            if result.done:
                self._slots[index].done = True
        return results

    def kill_worker(self, worker: int) -> None:
        """Kill one worker (process or actor) abruptly (used by fault-tolerance tests)."""
        self._handles[worker].kill()

    def close(self) -> None:
        for handle in getattr(self, "_handles", []):
            with contextlib.suppress(Exception):
                handle.close()
        self._handles = []

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
