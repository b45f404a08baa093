"""The ``ray`` worker backend of :class:`~skillzero.core.pool.EnvPool`: env workers as
Ray actors, on this machine or anywhere in a Ray cluster.

Each actor holds several envs (an :class:`~skillzero.core.pool.EnvHost`, as a worker
process of the ``process`` backend does) and answers the commands for all of them in one
call, so a pool step costs one Ray call per actor, not per env. Actors ask for a
fraction of a CPU (``num_cpus``, default 0.25): env engines are single-threaded and
spend much of a step waiting, and a small request never leaves an actor queued for CPUs
the cluster does not have (see :mod:`skillzero.core.ray_cluster`).

A dead actor (killed, out of memory, its node lost, or past ``receive_timeout``) is
reported to the pool as :class:`~skillzero.core.pool.WorkerDiedError`; the pool starts a
new actor in its place and returns each of the dead actor's mid-episode envs as one
truncated result, exactly as for a dead worker process.

Select it with ``env.pool.backend=ray``; ``env.pool.params`` go to
:class:`RayWorkerBackend`.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Mapping
from typing import Any

from skillzero.core import ray_cluster
from skillzero.core.pool import (
    Command,
    EnvHost,
    Reply,
    WorkerBackend,
    WorkerDiedError,
    WorkerHandle,
)
from skillzero.registry.specs import Factory


class EnvActor:
    """What runs inside one Ray actor: the envs of one worker.

    A failing env factory is reported by :meth:`ready` (with its traceback) instead of
    killing the actor, so the pool can say why the envs could not be built.
    """

    def __init__(
        self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
    ) -> None:
        # Engines are single-threaded; keep numeric libraries from oversubscribing cores.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        # lets env code tell it runs in a worker (a Ray worker has no multiprocessing
        # parent to check)
        os.environ["SKILLZERO_ENV_WORKER"] = "ray"
        self.host: EnvHost | None = None
        self.error: str | None = None
        try:
            self.host = EnvHost(env_factory, env_cfg, env_indices)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"

    def ready(self) -> tuple[str, Any]:
        if self.host is None:
            return "error", self.error
        return "ready", os.getpid()

    def run(self, commands: list[Command]) -> list[Reply]:
        assert self.host is not None
        return self.host.run(commands)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
            self.host = None


class _RayHandle(WorkerHandle):
    def __init__(
        self, ray: Any, actor: Any, resources: dict[str, float], startup_timeout: float
    ) -> None:
        self.ray, self.actor = ray, actor
        self.resources = resources
        self.startup_timeout = startup_timeout
        self._ready_ref = actor.ready.remote()
        self._pending: Any = None
        self._pid: int | None = None
        self._released = False

    def _release(self) -> None:
        if not self._released:
            self._released = True
            ray_cluster.release(self.resources)

    def wait_ready(self) -> None:
        if self._pid is not None:
            return
        ray = self.ray
        try:
            status, detail = ray.get(self._ready_ref, timeout=self.startup_timeout)
        except ray.exceptions.GetTimeoutError:
            self.kill()
            raise RuntimeError(
                f"env worker (Ray actor) did not start within {self.startup_timeout} s; "
                f"the cluster has {ray.available_resources().get('CPU', 0):g} CPUs free and "
                f"each env actor asks for {self.resources.get('CPU', 0):g} "
                "(env.pool.params.num_cpus)"
            ) from None
        except ray.exceptions.RayError as exc:
            self.kill()
            raise RuntimeError(f"env worker (Ray actor) died during start-up: {exc}") from None
        if status != "ready":
            self.close()
            raise RuntimeError(f"env worker failed to build its envs: {detail}")
        self._pid = int(detail)

    @property
    def pid(self) -> int | None:
        return self._pid

    def send(self, commands: list[Command]) -> None:
        if self._released:
            raise WorkerDiedError("the env actor was closed")
        self._pending = self.actor.run.remote(commands)

    def receive(self, timeout: float | None = None) -> list[Reply]:
        ray = self.ray
        ref, self._pending = self._pending, None
        if ref is None:
            return []
        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            self.kill()
            raise WorkerDiedError(
                f"env actor pid {self._pid} timed out after {timeout} s"
            ) from None
        except ray.exceptions.RayError as exc:
            # an actor error (dead process, lost node) or a task error outside the envs
            # (EnvHost turns env exceptions into truncated results itself)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise WorkerDiedError(
                f"env actor pid {self._pid} is gone: {type(exc).__name__}: {first}"
            ) from None

    def close(self) -> None:
        if self._released:
            return
        ray = self.ray
        with contextlib.suppress(Exception):
            ray.get(self.actor.close.remote(), timeout=10)
        with contextlib.suppress(Exception):
            ray.kill(self.actor, no_restart=True)
        self._release()

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(self.actor, no_restart=True)
        self._release()


class RayWorkerBackend(WorkerBackend):
    """Env workers as Ray actors, each holding several envs.

    - ``address``: the cluster to join (``"auto"``, ``"host:6379"``, ``"ray://..."``);
      None: ``$RAY_ADDRESS`` when set, else a local cluster started here with
      ``local_num_cpus`` CPUs (None: every core). Only the first Ray connection of a
      process applies these settings.
    - ``num_cpus``: CPUs each actor asks for (fractional; default 0.25, so 4 actors per
      core); ``memory``: bytes of memory each asks for (None: no request).
    - ``scheduling_strategy``: Ray's ``"DEFAULT"`` or ``"SPREAD"`` (actors spread over
      the nodes).
    - ``startup_timeout``: seconds an actor may take to build its envs.
    - ``runtime_env``, ``init_kwargs``: passed to ``ray.init``.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float = 0.25,
        memory: int | None = None,
        scheduling_strategy: str | None = None,
        startup_timeout: float = 600.0,
        local_num_cpus: float | None = None,
        object_store_memory: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if num_cpus < 0:
            raise ValueError(f"env.pool.params.num_cpus must be >= 0, got {num_cpus}")
        self.ray = ray_cluster.init_ray(
            address,
            num_cpus=local_num_cpus,
            object_store_memory=object_store_memory,
            runtime_env=runtime_env,
            what="env.pool.backend=ray",
            **dict(init_kwargs or {}),
        )
        self.num_cpus = float(num_cpus)
        self.memory = memory
        self.scheduling_strategy = scheduling_strategy
        self.startup_timeout = float(startup_timeout)
        self._actor_class = self.ray.remote(EnvActor)

    def start_worker(
        self, env_factory: Factory, env_cfg: Mapping[str, Any], env_indices: list[int]
    ) -> WorkerHandle:
        resources = {"CPU": self.num_cpus}
        ray_cluster.reserve(resources, "an env worker (Ray actor)", "env.pool.params.num_cpus")
        options: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "max_restarts": 0,  # the pool restarts workers itself, knowing what was lost
            "max_concurrency": 1,
        }
        if self.memory:
            options["memory"] = int(self.memory)
        if self.scheduling_strategy:
            options["scheduling_strategy"] = self.scheduling_strategy
        try:
            actor = self._actor_class.options(**options).remote(
                env_factory, dict(env_cfg), list(env_indices)
            )
        except BaseException:
            ray_cluster.release(resources)
            raise
        # The pool calls wait_ready() once every actor is started: they build their envs
        # in parallel.
        return _RayHandle(self.ray, actor, resources, self.startup_timeout)
