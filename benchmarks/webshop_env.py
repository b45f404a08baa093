"""WebShop env throughput and memory: the in-process simulator, and the env pool with 1
and 2 workers.

    python benchmarks/webshop_env.py [--data DIR] [--envs 16] [--episodes 4] [--json OUT]

Every design plays the same episodes: ``--envs`` envs, ``--episodes`` rounds, each env
a goal of the ``train`` split drawn with ``--seed``, driven by a scripted shopper that
searches with the goal's product type, then clicks admissible actions at random (seeded
per env and round; ``next >``, products, options, sub-pages, ``< prev``) and buys after
a few steps, at most 15 steps. Designs, each in a fresh process:

``sequential``
    one :class:`~skillzero.plugins.webshop.env.WebshopEnv` in the driver process,
    stepping the envs' episodes one after another; also reports the time of a search
    step and of a click step.
``EnvPool, W worker(s)``
    skillzero's pool with the process backend, W = 1 and 2.

Reported per design: start-up seconds, env steps per second over step calls, resets per
second, steps per second including resets, and memory: the peak summed RSS of the
design's processes, and the RSS of each worker at the end divided by its envs (the
memory an env costs, spaCy's tagger and the open shop included). The first purchase in
a process loads spaCy (about 2-6 s); start-up is measured after a warm-up purchase, so
the steady-state numbers do not include it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

DESIGNS = ("sequential", "pool-1", "pool-2")
TITLES = {
    "sequential": "sequential WebshopEnv (in process)",
    "pool-1": "EnvPool, 1 worker",
    "pool-2": "EnvPool, 2 workers",
}
MAX_STEPS = 15


class ScriptedShopper:
    """Search the goal's product type, click around at random, buy after a few steps."""

    def __init__(self, query: str, seed: int) -> None:
        self.query = query
        self.rng = random.Random(seed)
        self.buy_after = self.rng.randint(4, MAX_STEPS - 1)
        self.steps = 0

    def act(self, admissible: Sequence[str]) -> str:
        self.steps += 1
        if "search[<your query>]" in admissible:
            return f"search[{self.query}]"
        if self.steps >= self.buy_after and "click[buy now]" in admissible:
            return "click[buy now]"
        clicks = [a for a in admissible if a not in ("click[buy now]", "click[back to search]")]
        return self.rng.choice(clicks) if clicks else "click[back to search]"


def workload(spec: Mapping[str, Any]) -> list[list[Any]]:
    """Per round, the task of each env."""
    from skillzero.plugins.webshop.data import list_tasks

    tasks = list_tasks({"data_dir": spec["data"]}, "train")
    rng = random.Random(spec["seed"])
    return [rng.sample(tasks, spec["envs"]) for _ in range(spec["episodes"])]


def _query_of(task: Any) -> str:
    from skillzero.plugins.webshop.shop import open_shop

    shop = open_shop(task.payload["shop"])
    return str(shop.goal(task.payload["goal_set"], task.payload["goal_index"])["query"])


NAVIGATION = ("click[back to search]", "click[next >]", "click[< prev]")


def first_product(admissible: Sequence[str]) -> str:
    """The first product link of a results page's admissible actions."""
    return next(a for a in admissible if a.startswith("click[") and a not in NAVIGATION)


class Clock:
    def __init__(self) -> None:
        self.reset_s = self.step_s = self.search_s = self.click_s = 0.0
        self.steps = self.resets = self.searches = self.clicks = self.buys = 0


def _warm_up(env: Any, task: Any) -> None:
    """One purchase, so that spaCy and the shop are loaded before timing."""
    env.reset(options={"task": task})
    env.step(f"search[{_query_of(task)}]")
    env.step(first_product(env.simulator.admissible_actions()))
    _, _, terminated, _, _ = env.step("click[buy now]")
    assert terminated, "the warm-up purchase did not happen"


def run_sequential(spec: Mapping[str, Any]) -> dict[str, Any]:
    from skillzero.plugins.webshop.env import WebshopEnv

    t0 = time.perf_counter()
    rounds = workload(spec)
    env = WebshopEnv({"max_steps": MAX_STEPS})
    _warm_up(env, rounds[0][0])
    startup = time.perf_counter() - t0
    clock = Clock()
    for number, tasks in enumerate(rounds):
        for index, task in enumerate(tasks):
            start = time.perf_counter()
            _, info = env.reset(options={"task": task})
            clock.reset_s += time.perf_counter() - start
            clock.resets += 1
            shopper = ScriptedShopper(_query_of(task), seed=number * 1000 + index)
            admissible = info["admissible_actions"]
            while True:
                action = shopper.act(admissible)
                start = time.perf_counter()
                _, _, terminated, truncated, info = env.step(action)
                spent = time.perf_counter() - start
                clock.step_s += spent
                clock.steps += 1
                if action.startswith("search["):
                    clock.search_s += spent
                    clock.searches += 1
                else:
                    clock.click_s += spent
                    clock.clicks += 1
                clock.buys += int(terminated)
                admissible = info["admissible_actions"]
                if terminated or truncated:
                    break
    return result(clock, startup)


def run_pool(spec: Mapping[str, Any], workers: int) -> dict[str, Any]:
    import psutil

    from skillzero.core.pool import EnvPool, ProcessWorkerBackend

    t0 = time.perf_counter()
    rounds = workload(spec)
    queries = {t.task_id: _query_of(t) for tasks in rounds for t in tasks}
    pool = EnvPool(
        env_factory="skillzero.plugins.webshop.env:WebshopEnv",
        env_cfg={"max_steps": MAX_STEPS},
        num_groups=spec["envs"],
        group_size=1,
        workers=workers,
        backend=ProcessWorkerBackend(start_method="spawn"),
        seed=spec["seed"],
    )
    try:
        # warm-up: one purchase in every env (loads spaCy and opens the shop)
        first = pool.reset(rounds[0])
        steps = {i: f"search[{queries[t.task_id]}]" for i, t in enumerate(rounds[0])}
        replies = pool.step(steps)
        steps = {i: first_product(r.admissible_actions or []) for i, r in replies.items()}
        pool.step(steps)
        bought = pool.step({i: "click[buy now]" for i in range(pool.num_envs) if pool.active[i]})
        assert all(r.terminated for r in bought.values()), "a warm-up purchase did not happen"
        del first
        startup = time.perf_counter() - t0
        clock = Clock()
        for number, tasks in enumerate(rounds):
            start = time.perf_counter()
            replies = {i: r for i, r in enumerate(pool.reset(tasks))}
            clock.reset_s += time.perf_counter() - start
            clock.resets += len(tasks)
            shoppers = {
                i: ScriptedShopper(queries[t.task_id], seed=number * 1000 + i)
                for i, t in enumerate(tasks)
            }
            admissible = {i: r.admissible_actions or [] for i, r in replies.items()}
            while any(pool.active):
                actions = {
                    i: shoppers[i].act(admissible[i])
                    for i in range(pool.num_envs)
                    if pool.active[i]
                }
                start = time.perf_counter()
                replies = pool.step(actions)
                clock.step_s += time.perf_counter() - start
                clock.steps += len(replies)
                for i, reply in replies.items():
                    admissible[i] = reply.admissible_actions or []
                    clock.buys += int(reply.terminated)
        rss = []
        for pid in pool.worker_pids():
            with contextlib.suppress(psutil.Error, TypeError):
                rss.append(psutil.Process(pid).memory_info().rss)
    finally:
        pool.close()
    out = result(clock, startup)
    out["worker_rss"] = rss
    out["envs_per_worker"] = spec["envs"] / max(1, workers)
    return out


def result(clock: Clock, startup: float) -> dict[str, Any]:
    return {
        "startup_s": startup,
        "steps": clock.steps,
        "resets": clock.resets,
        "buys": clock.buys,
        "step_s": clock.step_s,
        "reset_s": clock.reset_s,
        "search_steps": clock.searches,
        "search_s": clock.search_s,
        "click_steps": clock.clicks,
        "click_s": clock.click_s,
    }


def measure(design: str, spec: dict[str, Any]) -> dict[str, Any]:
    import psutil

    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--run", design]
        cmd += ["--spec", str(spec_file), "--result", str(out_file)]
        proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            total = 0
            with contextlib.suppress(psutil.Error):
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.02)
        if proc.returncode != 0:
            raise SystemExit(f"design {design} failed with status {proc.returncode}")
        out = json.loads(out_file.read_text())
    out["peak_rss"] = peak
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def report(spec: Mapping[str, Any], results: Mapping[str, dict[str, Any]]) -> str:
    lines = [
        f"WebShop env: {spec['envs']} envs, {spec['episodes']} episodes per env "
        f"(train goals of {spec['data']}), {os.cpu_count()} CPU cores",
        "",
        "| design | start-up s | steps | steps/s | resets/s | steps/s incl. resets "
        "| peak RSS (all processes) | worker RSS per env |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for design, r in results.items():
        sps = r["steps"] / r["step_s"]
        rps = r["resets"] / r["reset_s"]
        incl = r["steps"] / (r["step_s"] + r["reset_s"])
        per_env = "-"
        if r.get("worker_rss"):
            per_env = mib(sum(r["worker_rss"]) / len(r["worker_rss"]) / r["envs_per_worker"])
        lines.append(
            f"| {TITLES[design]} | {r['startup_s']:.1f} | {r['steps']} | {sps:.0f} | "
            f"{rps:.0f} | {incl:.0f} | {mib(r['peak_rss'])} | {per_env} |"
        )
    seq = results.get("sequential")
    if seq and seq["search_steps"] and seq["click_steps"]:
        lines += [
            "",
            f"In process: a search step takes {1e3 * seq['search_s'] / seq['search_steps']:.2f}"
            f" ms, a click step {1e3 * seq['click_s'] / seq['click_steps']:.2f} ms "
            f"(purchases included: {seq['buys']} of {seq['resets']} episodes bought).",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="WebShop data (default: the generated default shop)")
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--designs", default=",".join(DESIGNS), help="comma-separated")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    parser.add_argument("--run", choices=DESIGNS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run:  # inside a design's own process
        spec = json.loads(Path(args.spec).read_text())
        runners = {
            "sequential": lambda: run_sequential(spec),
            "pool-1": lambda: run_pool(spec, 1),
            "pool-2": lambda: run_pool(spec, 2),
        }
        Path(args.result).write_text(json.dumps(runners[args.run]()))
        return 0

    from skillzero.plugins.webshop.data import WebshopDataError, resolve_shop

    if args.envs < 1 or args.episodes < 1:
        parser.error("--envs and --episodes must be >= 1")
    try:
        shop = str(resolve_shop({"data_dir": args.data}))
    except WebshopDataError as exc:
        parser.error(str(exc))
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    unknown = sorted(set(designs) - set(DESIGNS))
    if unknown:
        parser.error(f"unknown designs {unknown}; choose from {', '.join(DESIGNS)}")
    spec = {"data": shop, "envs": args.envs, "episodes": args.episodes, "seed": args.seed}
    results = {}
    for design in designs:
        print(f"running {TITLES[design]} ...", file=sys.stderr, flush=True)
        results[design] = measure(design, spec)
    print(report(spec, results))
    if args.json:
        Path(args.json).write_text(json.dumps({"spec": spec, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
