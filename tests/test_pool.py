"""EnvPool: layout, episodes, backends, and failure handling with real worker processes
and real Ray actors (a local Ray cluster of 2 CPUs)."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from helpers.envs import CorridorEnv, broken_env_factory, corridor_task

from skillzero.contracts.env import INFO_KEYS, StepResult
from skillzero.core import ray_cluster
from skillzero.core.pool import (
    EnvPool,
    InlineWorkerBackend,
    ProcessWorkerBackend,
    WorkerBackend,
    make_worker_backend,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")

# a broken failure path must fail the test, not hang the run
pytestmark = pytest.mark.timeout(180)

BACKENDS = ("inline", "process", "ray")
# backends whose workers are separate processes that can die
REMOTE = ("process", "ray")


def make_backend(kind: str) -> WorkerBackend:
    if kind == "inline":
        return InlineWorkerBackend()
    if kind == "ray":
        from skillzero.core.ray_pool import RayWorkerBackend

        return RayWorkerBackend(num_cpus=0.25, startup_timeout=120.0)
    return ProcessWorkerBackend(start_method="spawn", startup_timeout=60.0)


@pytest.fixture(autouse=True)
def _ray_when_needed(request):
    """Tests run with ``kind="ray"`` get the session's local Ray cluster, and must leave
    no actor behind."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or callspec.params.get("kind") != "ray":
        yield
        return
    request.getfixturevalue("ray_local")
    yield
    assert ray_cluster.reserved() == {}, "an env actor outlived its pool"


@contextmanager
def open_pool(kind: str, **kwargs: Any) -> Iterator[EnvPool]:
    kwargs.setdefault("env_factory", CorridorEnv)
    kwargs.setdefault("env_cfg", {"max_steps": 20})
    pool = EnvPool(backend=make_backend(kind), **kwargs)
    try:
        yield pool
    finally:
        pool.close()


def position(result: StepResult) -> int:
    match = re.search(r"pos=(\d+)/", result.observation)
    assert match, result.observation
    return int(match.group(1))


def noise(result: StepResult) -> int:
    match = re.search(r"noise=(\d+)", result.observation)
    assert match, result.observation
    return int(match.group(1))


def comparable(result: StepResult) -> StepResult:
    """The result without the traceback text (the only part allowed to differ)."""
    return replace(result, info={k: v for k, v in result.info.items() if k != "traceback"})


def env_workers_alive() -> list[str]:
    return [p.name for p in mp.active_children() if p.name.startswith("skillzero-env-worker")]


# ----------------------------------------------------------------------------------------
# Layout and episodes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_groups_share_tasks_and_seeds(kind: str) -> None:
    tasks = [corridor_task("a", 4), corridor_task("b", 5), corridor_task("c", 6)]
    with open_pool(kind, num_groups=3, group_size=2, workers=2) as pool:
        assert pool.num_envs == 6
        assert [pool.group_of(i) for i in range(6)] == [0, 0, 1, 1, 2, 2]
        results = pool.reset(tasks)
        assert len(results) == 6
        for i, result in enumerate(results):
            task = tasks[pool.group_of(i)]
            assert result.observation.startswith(f"{task.task_id} pos=0/{task.payload['length']}")
            assert result.info["task_id"] == task.task_id
            assert result.info["task_type"] == task.task_type
            assert result.admissible_actions == ["forward", "back", "wait"]
            assert not result.done
            assert not result.won
        assert pool.tasks == [tasks[0], tasks[0], tasks[1], tasks[1], tasks[2], tasks[2]]
        # members of a group start from the same seed, groups from different seeds
        assert results[0].observation == results[1].observation
        assert noise(results[0]) != noise(results[2])
        assert pool.active == [True] * 6


@pytest.mark.parametrize("kind", BACKENDS)
def test_results_are_per_env(kind: str) -> None:
    with open_pool(kind, num_groups=1, group_size=4, workers=2) as pool:
        pool.reset([corridor_task("t", 10)])
        results = pool.step({0: "forward", 1: "wait", 3: "forward"})
        assert set(results) == {0, 1, 3}
        assert position(results[0]) == 1
        assert position(results[1]) == 0
        assert position(results[3]) == 1
        results = pool.step({0: "forward", 2: "back"})
        assert set(results) == {0, 2}
        assert position(results[0]) == 2
        assert position(results[2]) == 0
        # the list form: None means "does not act"
        results = pool.step(["forward", None, None, "forward"])
        assert set(results) == {0, 3}
        assert position(results[0]) == 3
        assert position(results[3]) == 2


@pytest.mark.parametrize("kind", BACKENDS)
def test_finished_envs_are_not_stepped(kind: str) -> None:
    tasks = [corridor_task("short", 1), corridor_task("long", 5)]
    with open_pool(kind, num_groups=2, group_size=2, workers=2) as pool:
        assert pool.active == [False] * 4
        with pytest.raises(ValueError, match="not in an episode"):
            pool.step({0: "forward"})  # never reset
        pool.reset(tasks)
        results = pool.step({0: "forward", 2: "forward"})
        assert results[0].terminated
        assert not results[0].truncated
        assert results[0].won
        assert results[0].reward == 1.0
        assert results[0].info["won"] is True
        assert not results[2].done
        assert results[2].reward == 0.0
        assert pool.active == [False, True, True, True]
        with pytest.raises(ValueError, match="env 0"):
            pool.step({0: "forward"})
        with pytest.raises(IndexError):
            pool.step({4: "forward"})
        with pytest.raises(IndexError):
            pool.step({-1: "forward"})
        # a rejected call stepped nothing: env 1 is still at the start
        assert position(pool.step({1: "wait"})[1]) == 0


@pytest.mark.parametrize("kind", BACKENDS)
def test_max_steps_truncation_ends_episode(kind: str) -> None:
    with open_pool(kind, num_groups=1, group_size=2, env_cfg={"max_steps": 2}) as pool:
        pool.reset([corridor_task("t", 10)])
        first = pool.step({0: "wait", 1: "wait"})
        assert not first[0].done
        second = pool.step({0: "wait", 1: "wait"})
        assert second[0].truncated
        assert not second[0].terminated
        assert pool.active == [False, False]


def test_reset_needs_one_task_per_group() -> None:
    with open_pool("inline", num_groups=2, group_size=2) as pool:
        with pytest.raises(ValueError, match="2 tasks"):
            pool.reset([corridor_task()])
        with pytest.raises(ValueError, match="2 tasks"):
            pool.reset([corridor_task()] * 3)
        assert pool.active == [False] * 4


def test_invalid_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_groups"):
        EnvPool(CorridorEnv, {}, num_groups=0, backend=InlineWorkerBackend())
    with pytest.raises(ValueError, match="group_size"):
        EnvPool(CorridorEnv, {}, num_groups=1, group_size=0, backend=InlineWorkerBackend())
    with open_pool("inline", num_groups=1, group_size=2, workers=8) as pool:
        assert pool.workers == 2  # never more workers than envs


def test_default_seeds_are_deterministic() -> None:
    tasks = [corridor_task("a", 3), corridor_task("b", 3)]

    def two_episodes(seed: int) -> list[list[str]]:
        with open_pool("inline", num_groups=2, group_size=2, seed=seed) as pool:
            return [[r.observation for r in pool.reset(tasks)] for _ in range(2)]

    first, again, other = two_episodes(7), two_episodes(7), two_episodes(8)
    assert first == again
    assert first != other
    assert first[0] != first[1]  # each episode draws fresh seeds
    # explicit seeds are honoured and shared within a group
    with open_pool("inline", num_groups=2, group_size=2) as pool:
        explicit = pool.reset(tasks, seeds=[7, 7])
        assert noise(explicit[0]) == noise(explicit[2])
        assert [r.observation for r in pool.reset(tasks, seeds=[7, 7])] == [
            r.observation for r in explicit
        ]


@pytest.mark.parametrize("kind", BACKENDS)
def test_timings_count_up(kind: str) -> None:
    with open_pool(kind, num_groups=2, group_size=2, workers=2) as pool:
        assert pool.timings.calls == 0
        pool.reset([corridor_task("a", 5), corridor_task("b", 5)])
        t = pool.timings
        assert (t.calls, t.env_resets, t.env_steps) == (1, 4, 0)
        assert t.wall_seconds > 0
        assert t.reset_seconds > 0
        assert t.env_seconds > 0
        assert t.step_seconds == 0
        wall, env = t.wall_seconds, t.env_seconds
        pool.step({0: "forward", 3: "sleep:0.05"})
        assert (t.calls, t.env_resets, t.env_steps) == (2, 4, 2)
        assert t.step_seconds >= 0.05
        assert t.env_seconds >= env + 0.05
        assert t.wall_seconds >= wall + 0.05
        assert t.overhead_seconds == pytest.approx(max(0.0, t.wall_seconds - t.env_seconds))
        assert t.overhead_seconds >= 0


# ----------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", REMOTE)
def test_workers_host_envs_round_robin(kind: str) -> None:
    with open_pool(kind, num_groups=3, group_size=2, workers=3) as pool:
        pids = pool.worker_pids()
        assert len(pids) == 3
        assert len(set(pids)) == 3
        assert os.getpid() not in pids
        pool.reset([corridor_task(str(g), 5) for g in range(3)])
        results = pool.step(["getpid"] * 6)
        for i in range(6):
            assert f"pid={pids[i % 3]}" in results[i].observation
    assert env_workers_alive() == []  # close() ends every worker


def test_inline_backend_runs_in_this_process() -> None:
    with open_pool("inline", num_groups=1, group_size=2, workers=2) as pool:
        assert pool.worker_pids() == [None, None]
        pool.reset([corridor_task()])
        assert f"pid={os.getpid()}" in pool.step(["getpid", None])[0].observation


@pytest.mark.parametrize("kind", REMOTE)
def test_remote_backend_resolves_string_factory(kind: str) -> None:
    # the worker imports helpers.envs itself: tests/ must reach the spawned interpreter
    # (for Ray: through the job's PYTHONPATH, see skillzero.core.ray_cluster)
    with open_pool(kind, env_factory="helpers.envs:CorridorEnv", num_groups=1) as pool:
        assert pool.reset([corridor_task("s", 2)])[0].observation.startswith("s pos=0/2")
        assert pool.step(["getpid"])[0].observation.endswith(f"pid={pool.worker_pids()[0]}")


SCRIPT: list[dict[int, str]] = [
    {0: "forward", 1: "back", 2: "forward", 3: "forward", 4: "wait", 5: "forward"},
    {0: "forward", 1: "forward", 2: "crash", 3: "forward", 4: "bogus", 5: "forward"},
    {0: "forward", 1: "forward", 3: "forward", 4: "forward"},
    {1: "forward", 4: "forward"},
]


def play_script(kind: str) -> list[list[StepResult] | dict[int, StepResult]]:
    tasks = [corridor_task("a", 3), corridor_task("b", 2), corridor_task("c", 4)]
    trace: list[list[StepResult] | dict[int, StepResult]] = []
    with open_pool(kind, num_groups=3, group_size=2, workers=3, seed=11) as pool:
        for _ in range(2):
            trace.append([comparable(r) for r in pool.reset(tasks)])
            for actions in SCRIPT:
                actions = {i: a for i, a in actions.items() if pool.active[i]}
                trace.append({i: comparable(r) for i, r in pool.step(actions).items()})
            trace.append(list(pool.active))
    return trace


@pytest.mark.parametrize("kind", REMOTE)
def test_inline_and_remote_backends_agree(kind: str) -> None:
    inline, remote = play_script("inline"), play_script(kind)
    assert inline == remote
    # the script exercised wins, an engine error and plain moves
    flat = [r for entry in inline if isinstance(entry, dict) for r in entry.values()]
    assert any(r.won and r.terminated for r in flat)
    assert any("error" in r.info for r in flat)
    assert any(not r.done for r in flat)


# ----------------------------------------------------------------------------------------
# Failures
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BACKENDS)
def test_engine_error_truncates_only_that_episode(kind: str) -> None:
    with open_pool(kind, num_groups=1, group_size=3, workers=1) as pool:
        pool.reset([corridor_task("t", 3)])
        pids = pool.worker_pids()
        results = pool.step({0: "crash", 1: "forward"})
        assert set(results) == {0, 1}
        crashed = results[0]
        assert crashed.truncated
        assert not crashed.terminated
        assert not crashed.won
        assert "RuntimeError: engine exploded on purpose" in crashed.info["error"]
        assert "engine exploded" in crashed.info["traceback"]
        assert "worker_restarted" not in crashed.info
        assert position(results[1]) == 1
        assert pool.active == [False, True, True]
        assert pool.worker_restarts == 0
        assert pool.worker_pids() == pids  # the worker itself lives on
        results = pool.step({1: "forward", 2: "forward"})
        assert (position(results[1]), position(results[2])) == (2, 1)
        # the crashed env plays the next episode normally
        assert not pool.reset([corridor_task("u", 3)])[0].done
        assert position(pool.step({0: "forward"})[0]) == 1


@pytest.mark.parametrize("kind", BACKENDS)
def test_error_results_carry_info_keys(kind: str) -> None:
    task = corridor_task("t", 3)
    with open_pool(kind, num_groups=1, group_size=2) as pool:
        pool.reset([task])
        crashed = pool.step({0: "crash"})[0]
        assert set(INFO_KEYS) <= set(crashed.info)
        assert crashed.info["task_id"] == "t"
        assert crashed.info["task_type"] == task.task_type
        assert crashed.info["won"] is False


@pytest.mark.parametrize("kind", BACKENDS)
def test_reset_error_ends_episode_at_once(kind: str) -> None:
    tasks = [corridor_task("ok", 3), corridor_task("bad", 3, fail_reset=True)]
    with open_pool(kind, num_groups=2, group_size=2, workers=2) as pool:
        results = pool.reset(tasks)
        assert [r.done for r in results] == [False, False, True, True]
        assert "cannot start bad" in results[2].info["error"]
        assert results[2].info["task_id"] == "bad"
        assert pool.active == [True, True, False, False]
        with pytest.raises(ValueError, match="env 2"):
            pool.step({2: "forward"})


@pytest.mark.parametrize("kind", BACKENDS)
def test_killed_worker_mid_episode(kind: str) -> None:
    tasks = [corridor_task("long", 5), corridor_task("short", 1)]
    # 6 envs on 2 workers: worker 0 holds envs 0, 2, 4 and worker 1 holds 1, 3, 5
    with open_pool(kind, num_groups=2, group_size=3, workers=2) as pool:
        pool.reset(tasks)
        won = pool.step({4: "forward", 0: "forward", 1: "forward"})
        assert won[4].won
        assert pool.active == [True, True, True, True, False, True]
        old_pids = pool.worker_pids()

        pool.kill_worker(0)
        results = pool.step({0: "forward", 1: "forward"})

        # env 0 (asked to act) and env 2 (mid-episode, idle) lost their episodes, env 4
        # was already finished, env 1 lives on another worker and moved normally
        assert set(results) == {0, 1, 2}
        for i in (0, 2):
            assert results[i].truncated
            assert not results[i].terminated
            assert results[i].info["worker_restarted"] is True
            assert results[i].info["task_id"] == "long"
            assert set(INFO_KEYS) <= set(results[i].info)
        assert "worker_restarted" not in results[1].info
        assert position(results[1]) == 2
        assert pool.worker_restarts == 1
        assert pool.active == [False, True, False, True, False, True]
        if kind in REMOTE:
            new_pids = pool.worker_pids()
            assert new_pids[0] != old_pids[0]
            assert new_pids[1] == old_pids[1]

        # no stale state: the next step involves only the surviving envs, once each
        results = pool.step({1: "forward", 3: "forward", 5: "forward"})
        assert set(results) == {1, 3, 5}
        assert not any("worker_restarted" in r.info for r in results.values())
        assert pool.worker_restarts == 1

        # a new episode works on every env, including those of the restarted worker
        fresh = pool.reset(tasks)
        assert [r.done for r in fresh] == [False] * 6
        assert all(position(r) == 0 for r in fresh)
        assert pool.active == [True] * 6
        moved = pool.step(["forward"] * 6)
        assert set(moved) == set(range(6))
        assert [position(moved[i]) for i in range(6)] == [1, 1, 1, 1, 1, 1]
        assert [moved[i].won for i in range(6)] == [False] * 3 + [True] * 3
        assert pool.worker_restarts == 1


@pytest.mark.parametrize("kind", REMOTE)
def test_worker_dying_inside_a_step(kind: str) -> None:
    with open_pool(kind, num_groups=1, group_size=4, workers=2) as pool:
        pool.reset([corridor_task("t", 5)])
        # env 0 takes down worker 0, which also hosts env 2; env 1 and 3 are on worker 1
        results = pool.step({0: "die", 1: "forward", 3: "forward"})
        assert set(results) == {0, 1, 2, 3}
        assert results[0].info["worker_restarted"] is True
        assert results[2].info["worker_restarted"] is True
        assert position(results[1]) == 1
        assert position(results[3]) == 1
        assert pool.worker_restarts == 1
        assert pool.active == [False, True, False, True]
        assert all(not r.done for r in pool.reset([corridor_task("t", 5)]))


@pytest.mark.parametrize("kind", REMOTE)
def test_hung_worker_times_out_and_is_restarted(kind: str) -> None:
    with open_pool(kind, num_groups=1, group_size=2, workers=2, receive_timeout=0.5) as pool:
        pool.reset([corridor_task("t", 5)])
        results = pool.step({0: "sleep:30", 1: "forward"})
        assert results[0].truncated
        assert results[0].info["worker_restarted"] is True
        assert "timed out" in results[0].info["error"]
        assert position(results[1]) == 1
        assert pool.worker_restarts == 1
        assert pool.active == [False, True]


@pytest.mark.parametrize("kind", REMOTE)
@pytest.mark.parametrize("workers", [1, 2])
def test_failing_env_factory_fails_pool_construction(kind: str, workers: int) -> None:
    with pytest.raises(RuntimeError, match="env factory exploded on purpose") as info:
        EnvPool(
            broken_env_factory,
            {},
            num_groups=2,
            workers=workers,
            backend=make_backend(kind),
        )
    assert "failed to build its envs" in str(info.value)
    assert env_workers_alive() == []


def test_failing_env_factory_inline_raises_its_error() -> None:
    with pytest.raises(RuntimeError, match="env factory exploded on purpose"):
        EnvPool(broken_env_factory, {}, num_groups=1, backend=InlineWorkerBackend())


def test_close_closes_envs_and_is_idempotent() -> None:
    pool = EnvPool(CorridorEnv, {}, num_groups=1, group_size=2, backend=InlineWorkerBackend())
    hosts = [handle.host for handle in pool._handles]  # type: ignore[attr-defined]
    envs = [env for host in hosts for env in host.envs.values()]
    assert len(envs) == 2
    pool.close()
    assert all(env.closed for env in envs)
    pool.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_reset_envs_refills_only_the_named_envs(kind: str) -> None:
    with open_pool(kind, num_groups=2, group_size=2, workers=2) as pool:
        pool.reset([corridor_task("a", 1), corridor_task("b", 5)])
        done = pool.step({0: "forward", 1: "forward", 2: "forward"})
        assert done[0].won
        assert done[1].won
        assert pool.active == [False, False, True, True]
        refilled = pool.reset_envs({0: (corridor_task("c", 3), 7)})
        assert set(refilled) == {0}
        assert pool.active == [True, False, True, True]
        assert pool.tasks[0].task_id == "c"
        # env 2 kept its episode: one more step forward from where it was
        assert position(pool.step({2: "forward"})[2]) == 2
        assert position(pool.step({0: "forward"})[0]) == 1
        with pytest.raises(IndexError):
            pool.reset_envs({9: (corridor_task("d", 3), 0)})


def test_timings_separate_ipc_from_uneven_load() -> None:
    with open_pool("process", num_groups=2, group_size=1, workers=2) as pool:
        pool.reset([corridor_task("a", 9), corridor_task("b", 9)])
        t = pool.timings
        before_env, before_busiest = t.env_seconds, t.busiest_worker_seconds
        pool.step({0: "sleep:0.2", 1: "forward"})  # one worker busy, the other idle
        env = t.env_seconds - before_env
        busiest = t.busiest_worker_seconds - before_busiest
        assert busiest >= 0.2
        assert busiest == pytest.approx(env, abs=0.02)  # the idle worker adds ~nothing
        assert t.imbalance_seconds >= 0.09  # ~half of the 0.2 s was lost to imbalance
        assert t.ipc_seconds >= t.overhead_seconds  # busiest <= summed env time
        assert t.ipc_seconds == pytest.approx(t.wall_seconds - t.busiest_worker_seconds)


# ----------------------------------------------------------------------------------------
# Backend selection and the Ray backend's own settings
# ----------------------------------------------------------------------------------------


def test_pool_params_come_from_the_env_config() -> None:
    cfg = {"max_steps": 20, "pool": {"params": {"start_method": "spawn", "startup_timeout": 9}}}
    with EnvPool(CorridorEnv, cfg, num_groups=1, backend="process") as pool:
        assert isinstance(pool.backend, ProcessWorkerBackend)
        assert pool.backend.startup_timeout == 9
        assert not pool.reset([corridor_task("p", 2)])[0].done
    with pytest.raises(ValueError, match=r"unknown setting\(s\) bogus for the 'inline'"):
        make_worker_backend("inline", {"bogus": 1})


def test_ray_backend_without_ray_names_the_extra(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    with pytest.raises(ImportError, match=r"skillzero\[ray\]"):
        make_worker_backend("ray", {"num_cpus": 0.25})


def test_ray_workers_get_the_drivers_extra_paths_but_not_vendored_folders(
    monkeypatch, tmp_path
) -> None:
    """Workers see the driver's own folders (a checkout, ``tests/``) on PYTHONPATH, but
    not folders that packages put on ``sys.path`` inside site-packages (setuptools'
    ``_vendor``): ahead of site-packages their old vendored copies would shadow the
    real packages in every worker."""
    import site
    import sys
    from pathlib import Path

    from skillzero.core.ray_cluster import _extra_sys_path

    vendored = Path(site.getsitepackages()[0]) / "setuptools" / "_vendor"
    own = tmp_path / "checkout"
    own.mkdir()
    monkeypatch.setattr(sys, "path", [str(own), *sys.path, str(vendored)])
    extra = _extra_sys_path()
    assert str(own.resolve()) in extra
    assert not any(p.startswith(site.getsitepackages()[0]) for p in extra)


def test_local_head_is_started_lean_and_the_ray_parameters_restored(ray_local) -> None:
    """The session's local cluster (started by ``init_ray`` with ``log_to_driver=False``)
    runs the GCS and the raylet but neither the autoscaler monitor nor the log monitor,
    and ``ray.init``'s parameter class is Ray's own again afterwards."""
    from ray._private import ray_constants, worker
    from ray._private.parameter import RayParams

    started = set(worker._global_node.all_processes)
    assert {ray_constants.PROCESS_TYPE_GCS_SERVER, ray_constants.PROCESS_TYPE_RAYLET} <= started
    assert ray_constants.PROCESS_TYPE_MONITOR not in started
    assert ray_constants.PROCESS_TYPE_LOG_MONITOR not in started
    assert isinstance(RayParams, type)
    assert ray_local.cluster_resources()["CPU"] == 2


@pytest.mark.parametrize("log_to_driver", [True, False])
def test_lean_head_parameters(log_to_driver: bool) -> None:
    """Inside the lean-head context, the parameters ``ray.init`` builds a head from leave
    out the autoscaler monitor, and the log monitor only when nothing reads it; settings
    given explicitly win; outside it, Ray's defaults."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (the `ray` extra)")
    from ray._private import parameter

    from skillzero.core.ray_cluster import _lean_local_head

    original = parameter.RayParams
    with _lean_local_head(ray, log_monitor=log_to_driver):
        lean = parameter.RayParams(num_cpus=1)
        explicit = parameter.RayParams(no_monitor=False, include_log_monitor=True)
    assert parameter.RayParams is original
    assert lean.no_monitor is True
    assert lean.include_log_monitor is (None if log_to_driver else False)
    assert explicit.no_monitor is False
    assert explicit.include_log_monitor is True
    defaults = original()
    assert defaults.no_monitor is False
    assert defaults.include_log_monitor is None


def test_ray_request_larger_than_the_cluster_fails_at_once(ray_local) -> None:
    from skillzero.core.ray_pool import RayWorkerBackend

    # the session cluster has 2 CPUs: 2 actors of 1.5 CPUs would wait for ever
    with pytest.raises(RuntimeError, match=r"env\.pool\.params\.num_cpus"):
        EnvPool(
            CorridorEnv,
            {},
            num_groups=2,
            workers=2,
            backend=RayWorkerBackend(num_cpus=1.5, startup_timeout=60.0),
        )
    assert ray_cluster.reserved() == {}


def test_ray_backend_from_the_config(ray_local) -> None:
    from skillzero.core.config import compose, validate
    from skillzero.core.ray_pool import RayWorkerBackend

    cfg = validate(
        compose(
            ["env=alfworld", "env.pool.backend=ray", "env.pool.params.num_cpus=0.5"],
            fill_required=True,
        )
    )
    assert cfg.env.pool.params == {"num_cpus": 0.5}
    env_cfg = {"max_steps": 20, "pool": {"params": dict(cfg.env.pool.params)}}
    with EnvPool(CorridorEnv, env_cfg, num_groups=2, workers=2, backend="ray") as pool:
        assert isinstance(pool.backend, RayWorkerBackend)
        assert pool.backend.num_cpus == 0.5
        assert ray_cluster.reserved() == {"CPU": 1.0}
        assert [r.done for r in pool.reset([corridor_task("a", 2), corridor_task("b", 2)])] == [
            False,
            False,
        ]
    assert ray_cluster.reserved() == {}
