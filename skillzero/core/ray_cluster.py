"""Joining or starting the Ray cluster that hosts env workers and rollout engines.

Ray is optional (the ``ray`` extra): this module imports it only when a Ray backend is
chosen (``env.pool.backend=ray``, ``trainer.rollout.engines`` > 1), and fails with a
message naming the extra when it is missing.

:func:`init_ray` connects this process to the cluster once. ``address`` (or
``$RAY_ADDRESS``) joins an existing cluster (``ray start --head`` on the first node,
``ray start --address=...`` on the others); without one, a local single-node cluster is
started with ``num_cpus`` CPUs, lean (see :func:`init_ray`). Either way the job's
workers get this process's extra ``sys.path`` entries (a checkout, ``tests/``), so env
and backend factories named by ``"module:attribute"`` import there as they do here.

Ray queues an actor whose resource request cannot be met and waits for ever, which is how
small machines stall at worker registration. The actors this process creates therefore
ask for fractional CPUs, and :func:`reserve` refuses, with the knob to turn, a request
that the whole cluster cannot hold next to the ones this process already made.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import site
import sys
import sysconfig
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

INSTALL_HINT = "pip install 'skillzero[ray]'"

_lock = threading.Lock()
_reserved: dict[str, float] = {}


def require_ray(what: str) -> ModuleType:
    """``import ray``, or a clear error saying that ``what`` needs the ``ray`` extra."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            f"{what} needs Ray, which is not installed: {INSTALL_HINT} "
            "(the `ray` extra of skillzero)"
        ) from None
    return ray


def _extra_sys_path() -> list[str]:
    """Entries of ``sys.path`` a fresh interpreter would not have (the checkout of an
    editable install, ``tests/`` under pytest, a script's folder). Folders inside the
    environment's site-packages are left out: packages add those at import time (e.g.
    setuptools appends its ``_vendor`` folder), and ahead of site-packages on a worker's
    ``PYTHONPATH`` their vendored copies would shadow the real packages."""
    standard = {
        os.path.realpath(p)
        for p in (
            *site.getsitepackages(),
            site.getusersitepackages(),
            *sysconfig.get_paths().values(),
        )
        if p
    }
    extra = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real.startswith(os.path.realpath(sys.base_prefix)) or any(
            real == base or real.startswith(base + os.sep) for base in standard
        ):
            continue
        if real not in extra:
            extra.append(real)
    return extra


@contextlib.contextmanager
def _lean_local_head(ray: ModuleType, *, log_monitor: bool) -> Iterator[None]:
    """While ``ray.init`` starts a local head, leave out the autoscaler monitor (and the log
    monitor unless ``log_monitor``).

    ``ray.init`` has no setting for either; only ``ray start`` does (``--no-monitor``,
    ``--include-log-monitor=false``). Both are fields of the parameters ``ray.init`` builds
    its head from (``ray._private.parameter.RayParams``), so this sets their defaults for
    the duration of the call. A Ray without those fields gets its usual head.
    """
    parameter = getattr(getattr(ray, "_private", None), "parameter", None)
    params_class = getattr(parameter, "RayParams", None)
    try:
        fields = set(inspect.signature(params_class).parameters) if params_class else set()
    except (TypeError, ValueError):
        fields = set()
    if not {"no_monitor", "include_log_monitor"} <= fields:
        yield
        return

    def lean_params(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("no_monitor", True)
        if not log_monitor:
            kwargs.setdefault("include_log_monitor", False)
        return params_class(*args, **kwargs)

    parameter.RayParams = lean_params
    try:
        yield
    finally:
        parameter.RayParams = params_class


def init_ray(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    object_store_memory: int | None = None,
    runtime_env: dict[str, Any] | None = None,
    propagate_sys_path: bool = True,
    what: str = "a Ray backend",
    **init_kwargs: Any,
) -> ModuleType:
    """Connect this process to Ray once and return the ``ray`` module.

    ``address``: a cluster address (``"auto"``, ``"10.0.0.1:6379"``, ``"ray://..."``);
    None means ``$RAY_ADDRESS`` when set, else a new local cluster of ``num_cpus`` CPUs
    (all cores when None), started lean, without Ray's processes that a single machine's
    fixed cluster does not use (about 0.3 GiB):

    - the dashboard (its head process stays: Ray always starts it, with only usage stats),
    - idle workers prestarted when the driver connects (one per CPU, ~80 MB each; pool and
      engine actors start their own),
    - the autoscaler monitor (nothing to scale: the cluster is this machine),
    - the log monitor when ``log_to_driver=False`` (in ``init_kwargs``; it streams the
      workers' output to the driver, which then does not read it; the output stays in
      the session's log files).

    For Ray's full set of processes, start the head yourself (``ray start --head``) and
    pass its address. Later calls return at once: the first caller's settings win.
    """
    ray = require_ray(what)
    with _lock:
        if ray.is_initialized():
            return ray
        env = dict(runtime_env or {})
        if propagate_sys_path:
            paths = _extra_sys_path()
            current = os.environ.get("PYTHONPATH")
            if current:
                paths += [p for p in current.split(os.pathsep) if p and p not in paths]
            env_vars = dict(env.get("env_vars") or {})
            if paths and "PYTHONPATH" not in env_vars:
                env_vars["PYTHONPATH"] = os.pathsep.join(paths)
            if env_vars:
                env["env_vars"] = env_vars
        kwargs: dict[str, Any] = {"runtime_env": env or None, **init_kwargs}
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            ray.init(address=address, **kwargs)
        else:
            kwargs.setdefault("include_dashboard", False)
            # Ray prestarts one idle Python worker per CPU when the driver connects
            # (~80 MB each); pool and engine actors start their own workers anyway, so on
            # a small machine those idle ones are only memory
            system_config = dict(kwargs.get("_system_config") or {})
            system_config.setdefault("prestart_worker_first_driver", False)
            kwargs["_system_config"] = system_config
            if num_cpus is not None:
                kwargs["num_cpus"] = num_cpus
            if object_store_memory is not None:
                kwargs["object_store_memory"] = int(object_store_memory)
            with _lean_local_head(ray, log_monitor=bool(kwargs.get("log_to_driver", True))):
                ray.init(**kwargs)
        return ray


def reserve(resources: dict[str, float], what: str, knob: str) -> None:
    """Record that this process asks the cluster for ``resources`` (``{"CPU": 0.25}``),
    or raise when the cluster's total cannot hold it beside this process's earlier
    requests (the actor would wait for ever). ``knob`` names the setting to lower."""
    import ray

    total = ray.cluster_resources()
    with _lock:
        for name, amount in resources.items():
            if amount <= 0:
                continue
            have = float(total.get(name, 0.0))
            held = _reserved.get(name, 0.0)
            if held + amount > have + 1e-9:
                raise RuntimeError(
                    f"{what} asks the Ray cluster for {amount:g} {name}, but the cluster has "
                    f"{have:g} {name} in all and this run already asks for {held:g}: the "
                    f"actor would never start. Lower {knob}, start fewer actors, or add "
                    "nodes to the cluster."
                )
        for name, amount in resources.items():
            if amount > 0:
                _reserved[name] = _reserved.get(name, 0.0) + amount


def release(resources: dict[str, float]) -> None:
    """Undo :func:`reserve` (the actor is gone)."""
    with _lock:
        for name, amount in resources.items():
            if amount > 0:
                _reserved[name] = max(0.0, _reserved.get(name, 0.0) - amount)


def reserved() -> dict[str, float]:
    """What the live actors of this process ask for (tests check that none leak)."""
    with _lock:
        return {name: amount for name, amount in _reserved.items() if amount > 1e-9}
