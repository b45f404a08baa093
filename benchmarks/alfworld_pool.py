"""ALFWorld env throughput: skillzero's EnvPool against verl-agent's one-process-per-env.

    python benchmarks/alfworld_pool.py --data DIR --envs 8 [--group-size 1] [--episodes 3]
    python benchmarks/alfworld_pool.py --data DIR --envs 16 \\
        --designs per-process,pool-2,ray-per-actor,ray-pool-2 --baseline ray-per-actor

Every design plays the same episodes: ``--envs`` envs in ``envs / group-size`` groups
(members of a group play the same game), ``--episodes`` rounds, the games of each round
drawn by a seeded :class:`~skillzero.core.tasks.TaskSampler` from ``--split``. Each
episode plays the game's expert walkthrough with a ``look`` before every action (about
12 engine steps, all of them real commands; no invalid actions, which our env would
answer without the engine). Designs:

``sequential, bare engine``
    one TextWorld env built as ALFWorld/verl-agent build it, stepping the envs' episodes
    one after another in this process (load + reset at every episode).
``sequential, AlfworldEnv``
    the same with skillzero's env (engine caches on, a game loaded once per env).
``one process per env (verl-agent)``
    ``--envs`` processes, each importing what verl-agent's ALFWorld worker imports
    (torch, numpy, gymnasium, textworld, alfworld) and holding one
    ``textworld.gym`` env (batch size 1) whose ``reset()`` loads the next game; the
    driver sends every process its command and then waits for all (as ``ray.get`` on
    Ray actors, without Ray's own processes and memory).
``EnvPool, W worker(s)``
    skillzero's pool with the process backend, W = 1 and 2.
``one Ray actor per env (verl-agent on Ray)``
    verl-agent's design as it runs: a local Ray cluster and ``--envs`` Ray actors (0.1 CPU
    each, verl-agent's ``resources_per_worker`` default), each importing what the
    ALFWorld worker imports and holding one ``textworld.gym`` env; every step calls every
    actor, then ``ray.get`` on all answers.
``EnvPool on Ray, W actor(s)``
    skillzero's pool with the ``ray`` backend: W Ray actors (0.25 CPU each) holding
    ``envs / W`` envs each, one Ray call per actor per step. The local cluster is started
    as the backend starts one (``init_ray``: lean, see ``docs/scale.md``), in both Ray
    designs the same way and with the same ``log_to_driver`` (``--ray-log-to-driver``);
    the Ray processes (GCS, raylet, agents) count in its memory as in the design above.

Reported per design: start-up seconds (imports, env construction), env steps per second
over the step calls, and over step *and* reset calls ("incl. resets", the number that
matters for training), ratios against the baseline design (``--baseline``, default the
verl-agent design without Ray), and the peak of the summed
RSS of all the design's processes (sampled every 20 ms with psutil) and of their summed
PSS (proportional set size, sampled every 0.5 s from ``/proc/PID/smaps_rollup`` where
Linux has it): RSS counts a page shared by several processes (the Python binary, torch's
and Ray's libraries) once per process, PSS splits it between them, so the PSS sum is
what the design takes from the machine. A second table
says where the engine time goes, from timers put around TextWorld's PDDL env in every
process: game loading, reset, admissible-command computation (``_gather_infos``, run
after every command), the rest of the engine step, and for the pool the time outside
the envs (IPC, pickling, waiting for the slowest worker).

Each design runs in a fresh process, so that imports and caches do not carry over.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
DESIGNS = (
    "bare-sequential",
    "sequential",
    "per-process",
    "pool-1",
    "pool-2",
    "ray-per-actor",
    "ray-pool-1",
    "ray-pool-2",
)
TITLES = {
    "bare-sequential": "sequential, bare engine",
    "sequential": "sequential, AlfworldEnv",
    "per-process": "one process per env (verl-agent)",
    "pool-1": "EnvPool, 1 worker",
    "pool-2": "EnvPool, 2 workers",
    "ray-per-actor": "one Ray actor per env (verl-agent on Ray)",
    "ray-pool-1": "EnvPool on Ray, 1 actor",
    "ray-pool-2": "EnvPool on Ray, 2 actors",
}
BASELINE = "per-process"
TIMER_KEYS = ("load", "reset", "admissible", "step")


# ----------------------------------------------------------------------------------------
# Engine timers (installed in every process that runs an engine)
# ----------------------------------------------------------------------------------------

TIMERS: dict[str, float] = dict.fromkeys(TIMER_KEYS, 0.0)
_IN_STEP = [False]


def instrument_engine() -> None:
    """Wrap TextWorld's PddlEnv ``load``/``reset``/``step``/``_gather_infos`` with timers
    (``admissible`` counts ``_gather_infos`` inside ``step`` only; the one in ``reset``
    is part of the reset)."""
    from textworld.envs.pddl.pddl import PddlEnv

    if getattr(PddlEnv, "_bench_timed", False):
        return

    def timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if name == "admissible" and not _IN_STEP[0]:
                return method(self, *args, **kwargs)
            start = time.process_time()  # CPU time: processes may share cores
            if name == "step":
                _IN_STEP[0] = True
            try:
                return method(self, *args, **kwargs)
            finally:
                if name == "step":
                    _IN_STEP[0] = False
                TIMERS[name] += time.process_time() - start

        return wrapper

    PddlEnv.load = timed("load", PddlEnv.load)
    PddlEnv.reset = timed("reset", PddlEnv.reset)
    PddlEnv.step = timed("step", PddlEnv.step)
    PddlEnv._gather_infos = timed("admissible", PddlEnv._gather_infos)
    PddlEnv._bench_timed = True


class InstrumentedAlfworldEnv:
    """Env factory for pool workers: skillzero's AlfworldEnv with engine timers, whose
    cumulative values ride along in ``info["bench_timers"]``."""

    def __new__(cls, env_cfg: Mapping[str, Any]) -> Any:
        from skillzero.plugins.alfworld.env import AlfworldEnv

        instrument_engine()

        class Timed(AlfworldEnv):
            def _complete_info(self, info: dict[str, Any]) -> dict[str, Any]:
                info = super()._complete_info(info)
                info["bench_timers"] = dict(TIMERS)
                info["bench_pid"] = os.getpid()
                return info

        return Timed(env_cfg)


# ----------------------------------------------------------------------------------------
# The workload
# ----------------------------------------------------------------------------------------


def make_plan(walkthrough: Sequence[str]) -> list[str]:
    plan = []
    for action in walkthrough:
        plan += ["look", action]
    return plan


def workload(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per round: the task of each group and the plan of each env."""
    from skillzero.core.tasks import TaskSampler
    from skillzero.plugins.alfworld.games import list_tasks, read_walkthrough

    tasks = list_tasks({"data_dir": spec["data"]}, spec["split"])
    sampler = TaskSampler(tasks, seed=spec["seed"])
    groups = spec["envs"] // spec["group_size"]
    rounds = []
    for _ in range(spec["episodes"]):
        picked = sampler.next(groups)
        plans = [make_plan(read_walkthrough(t.payload["game_file"])) for t in picked]
        rounds.append({"tasks": picked, "plans": plans})
    return rounds


class Clock:
    def __init__(self) -> None:
        self.reset_s = self.step_s = 0.0
        self.steps = self.resets = 0


# ----------------------------------------------------------------------------------------
# Designs (each runs in its own process: `--run DESIGN`)
# ----------------------------------------------------------------------------------------


def run_sequential(spec: Mapping[str, Any], bare: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    rounds = workload(spec)
    if bare:
        env: Any = BareEnv(split_games(spec))
    else:
        from skillzero.plugins.alfworld.env import AlfworldEnv

        env = AlfworldEnv({})
    instrument_engine()
    startup = time.perf_counter() - t0
    clock = Clock()
    for rnd in rounds:
        for index in range(spec["envs"]):
            group = index // spec["group_size"]
            task, plan = rnd["tasks"][group], rnd["plans"][group]
            start = time.perf_counter()
            if bare:
                env.reset_to(task.payload["game_file"])
            else:
                env.reset(seed=spec["seed"], options={"task": task})
            clock.reset_s += time.perf_counter() - start
            clock.resets += 1
            start = time.perf_counter()
            for action in plan:
                won = env.step(action)[-1]["won"]
                clock.steps += 1
                if won:
                    break
            clock.step_s += time.perf_counter() - start
    return result(clock, startup, timers=[dict(TIMERS)])


class BareEnv:
    """One env exactly as verl-agent's ALFWorld worker builds it: ``textworld.gym``
    over the split's games with batch size 1, ALFWorld's wrappers, 50 steps. Its
    ``reset()`` closes, loads the next game of its seeded cycle and resets; ``reset_to``
    makes that cycle give the game the workload chose."""

    def __init__(self, games: Sequence[str]) -> None:
        import textworld
        import textworld.gym
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

        infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
        env_id = textworld.gym.register_games(
            list(games),
            infos,
            batch_size=1,
            asynchronous=True,
            max_episode_steps=50,
            wrappers=[AlfredDemangler(shuffle=False), AlfredInfos],
        )
        self.env = textworld.gym.make(env_id)

    def reset_to(self, game: str) -> tuple[str, dict[str, Any]]:
        self.env._gamefiles_iterator = iter([game])
        obs, infos = self.env.reset()
        return obs[0], {k: v[0] for k, v in infos.items()}

    def step(self, action: str) -> tuple[Any, ...]:
        obs, scores, dones, infos = self.env.step([action])
        return obs[0], scores[0], dones[0], {k: v[0] for k, v in infos.items()}


def split_games(spec: Mapping[str, Any]) -> list[str]:
    from skillzero.plugins.alfworld.games import list_tasks

    return [t.payload["game_file"] for t in list_tasks({"data_dir": spec["data"]}, spec["split"])]


def _verl_worker(conn: Any, games: list[str]) -> None:
    # What verl-agent's env_package/alfworld/envs.py imports before building its env.
    import gymnasium  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    env = BareEnv(games)
    instrument_engine()
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            break
        op, arg = message
        if op == "reset":
            obs, info = env.reset_to(arg)
            conn.send((obs, False, dict(TIMERS)))
        else:
            obs, _score, _done, info = env.step(arg)
            conn.send((obs, bool(info["won"]), dict(TIMERS)))


def run_per_process(spec: Mapping[str, Any]) -> dict[str, Any]:
    import multiprocessing as mp

    t0 = time.perf_counter()
    rounds = workload(spec)
    ctx = mp.get_context("spawn")
    games = split_games(spec)
    conns, procs = [], []
    for _ in range(spec["envs"]):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_verl_worker, args=(child, games), daemon=True)
        proc.start()
        conns.append(parent)
        procs.append(proc)
    for conn in conns:
        assert conn.recv()[0] == "ready"
    startup = time.perf_counter() - t0
    clock = Clock()
    timers: list[dict[str, float]] = [dict.fromkeys(TIMER_KEYS, 0.0) for _ in conns]
    for rnd in rounds:
        start = time.perf_counter()
        for index, conn in enumerate(conns):
            group = index // spec["group_size"]
            conn.send(("reset", rnd["tasks"][group].payload["game_file"]))
        for index, conn in enumerate(conns):
            timers[index] = conn.recv()[2]
        clock.reset_s += time.perf_counter() - start
        clock.resets += len(conns)
        position = [0] * len(conns)
        live = set(range(len(conns)))
        while live:
            start = time.perf_counter()
            asked = []
            for index in sorted(live):
                plan = rnd["plans"][index // spec["group_size"]]
                conns[index].send(("step", plan[position[index]]))
                asked.append(index)
            for index in asked:
                _obs, won, timers[index] = conns[index].recv()
                position[index] += 1
                clock.steps += 1
                plan = rnd["plans"][index // spec["group_size"]]
                if won or position[index] >= len(plan):
                    live.discard(index)
            clock.step_s += time.perf_counter() - start
    for conn in conns:
        conn.send(None)
    for proc in procs:
        proc.join(timeout=30)
    return result(clock, startup, timers=timers)


class VerlRayWorker:
    """verl-agent's ALFWorld worker as a Ray actor (``envs.py::AlfworldWorker``): the
    same imports, one ``textworld.gym`` env."""

    def __init__(self, games: list[str]) -> None:
        import gymnasium  # noqa: F401
        import numpy  # noqa: F401
        import torch  # noqa: F401

        self.env = BareEnv(games)
        instrument_engine()

    def reset(self, game: str) -> tuple[str, bool, dict[str, float]]:
        obs, _info = self.env.reset_to(game)
        return obs, False, dict(TIMERS)

    def step(self, action: str) -> tuple[str, bool, dict[str, float]]:
        obs, _score, _done, info = self.env.step(action)
        return obs, bool(info["won"]), dict(TIMERS)


def start_local_ray(spec: Mapping[str, Any]) -> Any:
    """A local Ray cluster of every core, as the ``ray`` worker backend starts one (the
    workers' output streamed to the driver or not, as ``--ray-log-to-driver`` says)."""
    from skillzero.core.ray_cluster import init_ray

    return init_ray(num_cpus=os.cpu_count(), log_to_driver=spec["ray_log_to_driver"])


def run_ray_per_actor(spec: Mapping[str, Any]) -> dict[str, Any]:
    # By module name (not __main__), so that Ray's workers import the class.
    from alfworld_pool import VerlRayWorker

    t0 = time.perf_counter()
    rounds = workload(spec)
    ray = start_local_ray(spec)
    games = split_games(spec)
    worker = ray.remote(VerlRayWorker).options(num_cpus=0.1)
    actors = [worker.remote(games) for _ in range(spec["envs"])]
    ray.get([actor.__ray_ready__.remote() for actor in actors])
    startup = time.perf_counter() - t0
    clock = Clock()
    timers: list[dict[str, float]] = [dict.fromkeys(TIMER_KEYS, 0.0) for _ in actors]
    for rnd in rounds:
        start = time.perf_counter()
        refs = [
            actor.reset.remote(rnd["tasks"][index // spec["group_size"]].payload["game_file"])
            for index, actor in enumerate(actors)
        ]
        for index, (_obs, _won, timer) in enumerate(ray.get(refs)):
            timers[index] = timer
        clock.reset_s += time.perf_counter() - start
        clock.resets += len(actors)
        position = [0] * len(actors)
        live = set(range(len(actors)))
        while live:
            start = time.perf_counter()
            asked = sorted(live)
            refs = [
                actors[i].step.remote(rnd["plans"][i // spec["group_size"]][position[i]])
                for i in asked
            ]
            for index, (_obs, won, timer) in zip(asked, ray.get(refs), strict=True):
                timers[index] = timer
                position[index] += 1
                clock.steps += 1
                plan = rnd["plans"][index // spec["group_size"]]
                if won or position[index] >= len(plan):
                    live.discard(index)
            clock.step_s += time.perf_counter() - start
    ray.shutdown()
    return result(clock, startup, timers=timers)


def run_pool(spec: Mapping[str, Any], workers: int, backend: str = "process") -> dict[str, Any]:
    from skillzero.core.pool import EnvPool, ProcessWorkerBackend, WorkerBackend

    t0 = time.perf_counter()
    rounds = workload(spec)
    worker_backend: WorkerBackend
    if backend == "ray":
        from skillzero.core.ray_pool import RayWorkerBackend

        start_local_ray(spec)
        worker_backend = RayWorkerBackend(num_cpus=0.25)
    else:
        worker_backend = ProcessWorkerBackend(start_method="spawn")
    pool = EnvPool(
        env_factory="alfworld_pool:InstrumentedAlfworldEnv",
        env_cfg={},
        num_groups=spec["envs"] // spec["group_size"],
        group_size=spec["group_size"],
        workers=workers,
        backend=worker_backend,
        seed=spec["seed"],
    )
    startup = time.perf_counter() - t0
    clock = Clock()
    timers: dict[int, dict[str, float]] = {}
    try:
        for rnd in rounds:
            start = time.perf_counter()
            first = pool.reset(rnd["tasks"])
            clock.reset_s += time.perf_counter() - start
            clock.resets += len(first)
            for r in first:
                timers[r.info["bench_pid"]] = r.info["bench_timers"]
            position = [0] * pool.num_envs
            while any(pool.active):
                actions = {}
                for index, active in enumerate(pool.active):
                    plan = rnd["plans"][pool.group_of(index)]
                    if active and position[index] < len(plan):
                        actions[index] = plan[position[index]]
                if not actions:
                    break
                start = time.perf_counter()
                results = pool.step(actions)
                clock.step_s += time.perf_counter() - start
                clock.steps += len(results)
                for index, r in results.items():
                    position[index] += 1
                    timers[r.info["bench_pid"]] = r.info["bench_timers"]
            if any(pool.active):  # a plan ran out without a win: end those episodes
                raise RuntimeError("a walkthrough did not win")
        # Worker time not spent inside envs: IPC, pickling and, with several workers,
        # waiting for the slowest one.
        overhead = max(0.0, workers * pool.timings.wall_seconds - pool.timings.env_seconds)
        env_seconds = pool.timings.env_seconds
    finally:
        pool.close()
    out = result(clock, startup, timers=list(timers.values()))
    out["pool_env_seconds"] = env_seconds
    out["pool_overhead_seconds"] = overhead
    return out


def result(clock: Clock, startup: float, timers: list[dict[str, float]]) -> dict[str, Any]:
    total = {key: sum(t.get(key, 0.0) for t in timers) for key in TIMER_KEYS}
    return {
        "startup_s": startup,
        "steps": clock.steps,
        "resets": clock.resets,
        "step_s": clock.step_s,
        "reset_s": clock.reset_s,
        "engine": total,
        "processes_with_engine": len(timers),
    }


# ----------------------------------------------------------------------------------------
# Driver: run each design in a fresh process and sample its memory
# ----------------------------------------------------------------------------------------


def measure(design: str, spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run", design]
        cmd += ["--spec", str(spec_file), "--result", str(out_file)]
        proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
        root = psutil.Process(proc.pid)
        peak = peak_pss = 0
        last_pss = 0.0
        while proc.poll() is None:
            total = 0
            processes = []
            with contextlib.suppress(psutil.Error):
                processes = [root, *root.children(recursive=True)]
            for p in processes:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
            if time.monotonic() - last_pss >= 0.5:
                last_pss = time.monotonic()
                peak_pss = max(peak_pss, sum(_pss(p.pid) for p in processes))
            time.sleep(0.02)
        if proc.returncode != 0:
            raise SystemExit(f"design {design} failed with status {proc.returncode}")
        out = json.loads(out_file.read_text())
    out["peak_rss"] = peak
    out["peak_pss"] = peak_pss or None  # None where the kernel gives no smaps_rollup
    return out


def _pss(pid: int) -> int:
    """Proportional set size of one process in bytes (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def report(
    spec: Mapping[str, Any], results: Mapping[str, dict[str, Any]], baseline: str = BASELINE
) -> str:
    base = results.get(baseline)
    lines = [
        f"ALFWorld env pool: {spec['envs']} envs, group size {spec['group_size']}, "
        f"{spec['episodes']} episodes per env, split {spec['split']}, "
        f"{os.cpu_count()} CPU cores; Ray workers' output streamed to the driver: "
        f"{'yes' if spec['ray_log_to_driver'] else 'no'}; "
        f"ratios against: {TITLES[baseline]}",
        "",
        "| design | start-up s | steps | steps/s | steps/s incl. resets | vs baseline "
        "| peak RSS (all processes) | vs baseline | peak PSS (all processes) | vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for design, r in results.items():
        sps = r["steps"] / r["step_s"]
        incl = r["steps"] / (r["step_s"] + r["reset_s"])
        ratio = memory = memory_pss = "-"
        pss = r.get("peak_pss")
        if base:
            base_incl = base["steps"] / (base["step_s"] + base["reset_s"])
            ratio = f"{incl / base_incl:.2f}x"
            memory = f"{100 * r['peak_rss'] / base['peak_rss']:.0f}%"
            if pss and base.get("peak_pss"):
                memory_pss = f"{100 * pss / base['peak_pss']:.0f}%"
        lines.append(
            f"| {TITLES[design]} | {r['startup_s']:.1f} | {r['steps']} | {sps:.1f} | "
            f"{incl:.1f} | {ratio} | {gib(r['peak_rss'])} | {memory} | "
            f"{gib(pss) if pss else '-'} | {memory_pss} |"
        )
    lines += [
        "",
        "Where the time goes (seconds; engine columns are CPU time summed over the "
        "processes that run engines, wall columns are the driver's clock; workers outside "
        "envs = workers x pool wall time - time inside envs: IPC, pickling and waiting for "
        "the slowest worker):",
        "",
        "| design | wall: resets | wall: steps | engine: load game | engine: reset "
        "| engine: admissible commands | engine: rest of step | workers outside envs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for design, r in results.items():
        e = r["engine"]
        outside = r.get("pool_overhead_seconds")
        lines.append(
            f"| {TITLES[design]} | {r['reset_s']:.1f} | {r['step_s']:.1f} | {e['load']:.1f} | "
            f"{e['reset']:.1f} | {e['admissible']:.1f} | {e['step'] - e['admissible']:.1f} | "
            + (f"{outside:.2f}" if outside is not None else "-")
            + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="ALFWorld data root (default: $ALFWORLD_DATA, ...)")
    parser.add_argument("--split", default="valid_seen")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=3, help="episodes per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated")
    parser.add_argument(
        "--baseline", default=BASELINE, choices=DESIGNS, help="the design ratios compare with"
    )
    parser.add_argument(
        "--ray-log-to-driver",
        choices=("yes", "no"),
        default="no",
        help="Ray designs: stream the workers' output to the driver (yes: Ray's default, "
        "which runs a log monitor process) or not (no: the default here)",
    )
    parser.add_argument("--json", help="also write the raw numbers to this file")
    parser.add_argument("--run", choices=DESIGNS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run:  # inside a design's own process
        spec = json.loads(Path(args.spec).read_text())
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "bare-sequential": lambda: run_sequential(spec, bare=True),
            "sequential": lambda: run_sequential(spec, bare=False),
            "per-process": lambda: run_per_process(spec),
            "pool-1": lambda: run_pool(spec, 1),
            "pool-2": lambda: run_pool(spec, 2),
            "ray-per-actor": lambda: run_ray_per_actor(spec),
            "ray-pool-1": lambda: run_pool(spec, 1, backend="ray"),
            "ray-pool-2": lambda: run_pool(spec, 2, backend="ray"),
        }
        Path(args.result).write_text(json.dumps(runners[args.run]()))
        return 0

    from skillzero.plugins.alfworld.data import AlfworldDataError
    from skillzero.plugins.alfworld.setup import resolve_data_dir

    if args.envs < 1 or args.group_size < 1 or args.envs % args.group_size:
        parser.error("--envs must be a positive multiple of --group-size")
    try:
        data = str(resolve_data_dir({"data_dir": args.data}))
    except AlfworldDataError as exc:
        parser.error(str(exc))
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown:
        parser.error(f"unknown designs {unknown}; choose from {', '.join(DESIGNS)}")
    spec = {
        "data": data,
        "split": args.split,
        "envs": args.envs,
        "group_size": args.group_size,
        "episodes": args.episodes,
        "seed": args.seed,
        "ray_log_to_driver": args.ray_log_to_driver == "yes",
    }
    results = {}
    for design in designs:
        print(f"running {TITLES[design]} ...", file=sys.stderr, flush=True)
        results[design] = measure(design, spec)
    print(report(spec, results, args.baseline if args.baseline in results else BASELINE))
    if args.json:
        Path(args.json).write_text(json.dumps({"spec": spec, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
