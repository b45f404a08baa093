"""``skillzero webshop check``: an oracle shopper plays every goal to test a shop.

For each goal of the chosen split whose target product is in the catalogue, the oracle
searches the goal's query (then, if the product is not among the hits, the product's
title, then the instruction), pages through the results until the product appears,
opens it, chooses the options the goal asks for and buys. Every action it takes is one
of the page's admissible actions, sent through :class:`~skillzero.plugins.webshop.env.
WebshopEnv` in an :class:`~skillzero.core.pool.EnvPool` (worker processes, as training
does). A shop is sound when every such purchase scores 1.0; the command prints the
count, the goals whose product is not sold, and every purchase below 1.0 with its
reward parts, and can write one JSON line per goal::

    {"task_id": "synthetic/12", "asin": "B0...", "category": "beauty", "found_by": "query",
     "steps": 5, "score": 1.0, "won": true, "reward_info": {...}}

Exit status 0 when every checked goal scores 1.0, 1 otherwise, 2 on bad input.

This module is imported at plugin discovery (for :func:`setup_command`), so its
top-level imports stay light.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENV_FACTORY = "skillzero.plugins.webshop.env:WebshopEnv"
MAX_RESULT_PAGES = 5
ORACLE_MAX_STEPS = 60
SEARCH_ORDER: tuple[str, ...] = ("query", "title", "instruction", "attributes")
EXPERT_ORDER: tuple[str, ...] = ("request", "query", "attributes", "title")
"""The expert searches what a shopper knows first (the instruction without its options
and price, then the product type); the product title, which only the oracle knows,
comes last."""


def setup_command(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``skillzero webshop`` and its subcommands."""
    from skillzero.plugins.webshop.generate import add_generate_command

    sub = parser.add_subparsers(dest="webshop_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=_no_subcommand(parser))
    check = sub.add_parser(
        "check",
        help="an oracle buys every goal's product through the env; report the scores",
        description="Play every goal of a split with an oracle (search, open the target "
        "product, choose the goal's options, buy) through skillzero's WebShop env and env "
        "pool. Exit status 0 when every purchase scores 1.0, 1 otherwise, 2 on bad input.",
    )
    _data_arguments(check)
    check.add_argument(
        "--split",
        action="append",
        help="split to check (test, dev, train, fixed100, all or START:END); repeat for "
        "several (default: test)",
    )
    check.add_argument("--out", metavar="FILE.jsonl", help="write one JSON line per goal")
    check.add_argument(
        "--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="workers"
    )
    check.add_argument("--envs", type=int, default=None, help="envs (default: 8 per worker)")
    check.add_argument("--limit", type=int, default=None, help="check only the first N goals")
    check.add_argument(
        "--backend", default="process", help="env-pool worker backend (process or inline)"
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=run_check)

    build = sub.add_parser(
        "build",
        help="compile a catalogue (search index, goals) now, with a progress bar",
        description="Compile WebShop's files (or a generated catalogue) into a shop "
        "folder: products, prices, goals and the BM25 index. Training compiles on first "
        "use; this command does it ahead, shows progress and reports time and memory.",
    )
    _data_arguments(build)
    build.set_defaults(handler=run_build)
    add_generate_command(sub)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="folder with WebShop's files or a compiled shop (default: $WEBSHOP_DATA, "
        "then the generated default shop)",
    )
    parser.add_argument("--catalogue", choices=("small", "full"), default="small")
    parser.add_argument("--goals", choices=("synthetic", "human"), default="synthetic")
    parser.add_argument("--goal-file", metavar="GOALS.json", help="structured goals to use")
    parser.add_argument("--split-scheme", choices=("webshop", "verl_agent"), default="webshop")
    parser.add_argument("--num-products", type=int, default=None)


def _env_cfg(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "data_dir": args.data,
        "catalogue": args.catalogue,
        "goals": args.goals,
        "goal_file": args.goal_file,
        "split_scheme": args.split_scheme,
        "num_products": args.num_products,
    }


def _no_subcommand(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return handler


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_data_args(args: argparse.Namespace) -> str | None:
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        return f"--data: {args.data} is not a folder"
    if args.goal_file is not None and not Path(args.goal_file).expanduser().is_file():
        return f"--goal-file: {args.goal_file} is not a file"
    if args.num_products is not None and args.num_products < 1:
        return f"--num-products must be >= 1, got {args.num_products}"
    return None


def run_build(args: argparse.Namespace) -> int:
    """The handler of ``skillzero webshop build``."""
    import resource
    import time

    from skillzero.plugins.webshop.data import WebshopDataError, resolve_shop
    from skillzero.plugins.webshop.goals import GoalError
    from skillzero.plugins.webshop.shop import open_shop

    problem = _check_data_args(args)
    if problem:
        return _fail(problem)
    started = time.perf_counter()
    try:
        path = resolve_shop(_env_cfg(args), progress=True)
    except (WebshopDataError, GoalError, ValueError) as exc:
        return _fail(str(exc))
    shop = open_shop(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sets = ", ".join(f"{n} {k}" for k, n in shop.goal_sets().items())
    print(
        f"shop {path}: {shop.num_products} products, goals: {sets}; "
        f"{time.perf_counter() - started:.1f} s, peak memory {peak:.0f} MiB"
    )
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    """The handler of ``skillzero webshop check``."""
    from skillzero.plugins.webshop.data import WebshopDataError, list_tasks
    from skillzero.plugins.webshop.goals import GoalError

    problem = _check_data_args(args)
    if problem:
        return _fail(problem)
    for flag, value in (
        ("--workers", args.workers),
        ("--envs", args.envs),
        ("--limit", args.limit),
    ):
        if value is not None and value < 1:
            return _fail(f"{flag} must be >= 1, got {value}")
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        return _fail(f"--out: folder {out.parent} does not exist")
    env_cfg = _env_cfg(args)
    tasks = []
    try:
        for split in args.split or ["test"]:
            tasks += list_tasks(env_cfg, split)
    except (WebshopDataError, GoalError, ValueError) as exc:
        return _fail(str(exc))
    if args.limit is not None:
        tasks = tasks[: args.limit]
    if not tasks:
        return _fail(f"no goals in split(s) {', '.join(args.split or ['test'])}")
    from skillzero import registry

    try:
        registry.get("env_workers", args.backend)
    except registry.RegistryError as exc:
        return _fail(f"--backend: {exc}")
    print(f"checking {len(tasks)} WebShop goals in {tasks[0].payload['shop']}", file=sys.stderr)
    records = play_oracle(
        tasks,
        env_cfg,
        workers=args.workers,
        envs=args.envs or 8 * args.workers,
        backend=args.backend,
        progress=not args.quiet,
    )
    print(format_summary(records))
    if out is not None:
        with open(out, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"wrote {len(records)} lines to {out}")
    checked = [r for r in records if r["in_catalogue"]]
    return EXIT_OK if checked and all(r["won"] for r in checked) else EXIT_FAILED


# ----------------------------------------------------------------------------------------
# The oracle
# ----------------------------------------------------------------------------------------


def choose_options(product: Mapping[str, Any], goal_options: Any) -> list[str]:
    """The option values to click for ``goal_options``: for a dict, each asked value
    in its group; for a list, for each asked value the product value that matches it
    best (the reward's fuzzy match after colour normalisation), at most one per group."""
    from thefuzz import fuzz

    from skillzero.plugins.webshop.reward import FUZZY_THRESHOLD, normalize_color

    options: Mapping[str, Sequence[str]] = product.get("options") or {}
    if isinstance(goal_options, Mapping):
        wanted = [str(v) for v in goal_options.values()]
        picks = []
        for group, value in goal_options.items():
            values = options.get(str(group).lower(), ())
            exact = [v for v in values if v == str(value).lower().replace("/", " | ")]
            picks.append(exact[0] if exact else str(value))
        return picks
    wanted = [str(v) for v in goal_options]
    picks, used_groups = [], set()
    for goal_value in wanted:
        best, best_score, best_group = None, FUZZY_THRESHOLD, None
        target = normalize_color(goal_value)
        for group, values in options.items():
            if group in used_groups:
                continue
            for value in values:
                score = fuzz.token_set_ratio(normalize_color(value), target)
                if score > best_score:
                    best, best_score, best_group = value, score, group
        if best is not None:
            picks.append(best)
            used_groups.add(best_group)
    return picks


@dataclass
class OracleShopper:
    """The oracle's plan for one goal, advanced one admissible action at a time."""

    goal: Mapping[str, Any]
    product: Mapping[str, Any] | None
    queries: list[tuple[str, str]] = field(default_factory=list)
    option_clicks: list[str] = field(default_factory=list)
    max_pages: int = MAX_RESULT_PAGES
    state: str = "search"
    query_index: int = 0
    pages_seen: int = 0
    found_by: str | None = None

    @classmethod
    def for_goal(
        cls,
        goal: Mapping[str, Any],
        product: Mapping[str, Any] | None,
        order: Sequence[str] = SEARCH_ORDER,
        max_pages: int = MAX_RESULT_PAGES,
    ) -> OracleShopper:
        """The oracle for ``goal``: it searches the queries named in ``order`` (of
        ``request``, ``query``, ``title``, ``instruction``, ``attributes``) until the
        product shows up
        within ``max_pages`` result pages."""
        attributes = " ".join(str(a) for a in goal.get("attributes", []))
        request = str(goal.get("instruction_text", ""))
        request = re.sub(r", and price lower than [\d.]+ dollars$", "", request)
        options = goal.get("goal_options")
        if isinstance(options, Mapping) and options:
            first = next(iter(options))
            request = request.split(f" with {first}: ")[0]
        texts = {
            "request": request,
            "query": str(goal.get("query", "")),
            "title": str(product.get("Title", "")) if product is not None else "",
            "instruction": str(goal.get("instruction_text", "")),
            "attributes": f"{attributes} {goal.get('query', '')}",
        }
        queries = [(label, texts[label]) for label in order if texts.get(label, "").strip()]
        options = choose_options(product, goal.get("goal_options", [])) if product else []
        return cls(goal, product, queries=queries, option_clicks=options, max_pages=max_pages)

    def next_action(self, admissible: Sequence[str]) -> str | None:
        """The next action, or ``None`` when the oracle gives up."""
        target = f"click[{str(self.goal['asin']).lower()}]"
        if self.state == "search":
            if self.query_index >= len(self.queries):
                return None
            self.state, self.pages_seen = "scan", 1
            return f"search[{self.queries[self.query_index][1]}]"
        if self.state == "scan":
            if target in admissible:
                self.found_by = self.queries[self.query_index][0]
                self.state = "options"
                return target
            if "click[next >]" in admissible and self.pages_seen < self.max_pages:
                self.pages_seen += 1
                return "click[next >]"
            self.query_index += 1
            self.state = "search"
            return self.next_action(admissible)
        if self.state == "options":
            while self.option_clicks:
                value = self.option_clicks.pop(0)
                if f"click[{value}]" in admissible:
                    return f"click[{value}]"
            self.state = "buy"
            return "click[buy now]"
        return None


class OracleExpert:
    """The WebShop expert for ``skillzero sft``: the oracle's actions for a task, played
    in an in-process simulator (one result page per query, queries in
    :data:`EXPERT_ORDER`); ``None`` when they do not score 1.0 within ``max_steps``."""

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        from skillzero.core.config import cfg_get

        self.max_steps = int(cfg_get(env_cfg, "max_steps", 15))
        self.show_attrs = bool(cfg_get(env_cfg, "show_attrs", False))
        self.strict_search = bool(cfg_get(env_cfg, "strict_search", False))

    def actions(self, task: Any) -> list[str] | None:
        from skillzero.plugins.webshop.shop import open_shop
        from skillzero.plugins.webshop.simulator import WebShopSimulator

        payload = task.payload or {}
        try:
            shop = open_shop(payload["shop"])
            goal = payload.get("goal") or shop.goal(
                str(payload["goal_set"]), int(payload["goal_index"])
            )
        except (KeyError, OSError, ValueError, IndexError):
            return None
        product = shop.product_by_asin(str(goal["asin"]))
        if product is None:
            return None
        oracle = OracleShopper.for_goal(goal, product, order=EXPERT_ORDER, max_pages=1)
        simulator = WebShopSimulator(shop, self.show_attrs, self.strict_search)
        simulator.reset(goal)
        actions: list[str] = []
        while len(actions) < self.max_steps:
            action = oracle.next_action(simulator.admissible_actions())
            if action is None:
                return None
            actions.append(action)
            outcome = simulator.step(action)
            if outcome.done:
                return actions if outcome.score == 1.0 else None
        return None


def play_oracle(
    tasks: Sequence[Any],
    env_cfg: Mapping[str, Any],
    *,
    workers: int = 2,
    envs: int = 16,
    backend: Any = "process",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Play each task with the oracle through an :class:`EnvPool`; one record per task,
    in the order of ``tasks`` (goals whose product is not sold get ``in_catalogue``
    false and are not played)."""
    from tqdm import tqdm

    from skillzero.core.pool import EnvPool
    from skillzero.plugins.webshop.shop import open_shop

    records: list[dict[str, Any]] = []
    playable: list[tuple[int, Any, OracleShopper]] = []
    for task in tasks:
        shop = open_shop(task.payload["shop"])
        goal = shop.goal(task.payload["goal_set"], int(task.payload["goal_index"]))
        product = shop.product_by_asin(str(goal["asin"]))
        record = {
            "task_id": task.task_id,
            "asin": goal["asin"],
            "category": task.task_type,
            "in_catalogue": product is not None,
            "found_by": None,
            "steps": 0,
            "score": None,
            "won": False,
        }
        records.append(record)
        if product is not None:
            playable.append((len(records) - 1, task, OracleShopper.for_goal(goal, product)))
    if not playable:
        return records
    cfg = {**dict(env_cfg), "max_steps": ORACLE_MAX_STEPS}
    num_envs = max(1, min(envs, len(playable)))
    bar = tqdm(total=len(playable), unit="goal", desc="oracle", disable=not progress)
    with EnvPool(
        env_factory=ENV_FACTORY,
        env_cfg=cfg,
        num_groups=num_envs,
        group_size=1,
        workers=workers,
        backend=backend,
    ) as pool:
        for start in range(0, len(playable), num_envs):
            batch = playable[start : start + num_envs]
            _play_batch(pool, batch, records, num_envs)
            bar.update(len(batch))
    bar.close()
    return records


def _play_batch(
    pool: Any, batch: Sequence[tuple[int, Any, OracleShopper]], records: list[dict], size: int
) -> None:
    assignments = {i: (task, 0) for i, (_, task, _) in enumerate(batch)}
    first = pool.reset_envs(assignments)
    admissible = {i: first[i].admissible_actions or [] for i in assignments}
    live = set()
    for i, (position, _, _) in enumerate(batch):
        if first[i].done:
            records[position]["error"] = first[i].info.get("error", "reset failed")
        else:
            live.add(i)
    while live:
        actions = {}
        for i in sorted(live):
            position, _, oracle = batch[i]
            action = oracle.next_action(admissible[i])
            if action is None:
                records[position]["error"] = "the target product was not found by search"
                live.discard(i)
                continue
            actions[i] = action
        if not actions:
            break
        results = pool.step(actions)
        for i, result in results.items():
            position, _, oracle = batch[i]
            record = records[position]
            record["steps"] += 1
            admissible[i] = result.admissible_actions or []
            if "error" in result.info:
                record["error"] = result.info["error"]
            if result.done:
                live.discard(i)
                record["found_by"] = oracle.found_by
                record["score"] = float(result.info.get("task_score", 0.0))
                record["won"] = bool(result.won)
                if "reward_info" in result.info:
                    record["reward_info"] = result.info["reward_info"]
                if result.truncated and not result.terminated and "error" not in record:
                    record["error"] = "ran out of steps"


def format_summary(records: Sequence[Mapping[str, Any]]) -> str:
    """Counts, and one line per goal whose purchase scored below 1.0."""
    checked = [r for r in records if r["in_catalogue"]]
    absent = len(records) - len(checked)
    won = sum(bool(r["won"]) for r in checked)
    lines = [
        f"{len(records)} goals: {len(checked)} with the product in the catalogue, "
        f"{absent} without; {won}/{len(checked)} purchases scored 1.0"
    ]
    scores = [r["score"] for r in checked if r["score"] is not None]
    if scores:
        lines.append(f"mean score {sum(scores) / len(scores):.4f}")
    by_way: dict[str, int] = {}
    for record in checked:
        key = record.get("found_by") or "not found"
        by_way[key] = by_way.get(key, 0) + 1
    lines.append("found by: " + ", ".join(f"{k} {v}" for k, v in sorted(by_way.items())))
    for record in checked:
        if not record["won"]:
            detail = record.get("error") or json.dumps(record.get("reward_info", {}))
            lines.append(
                f"  {record['task_id']} ({record['asin']}): score {record['score']}, {detail}"
            )
    return "\n".join(lines)
