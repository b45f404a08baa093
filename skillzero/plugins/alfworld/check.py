"""``skillzero alfworld check``: play every game's walkthrough to test an install.

(The ``generate`` and ``stats`` subcommands are set up here too; their handlers live in
:mod:`skillzero.plugins.alfworld.generate.cli`.)

Each game file carries an expert plan (``walkthrough``). The check plays it through
:class:`~skillzero.plugins.alfworld.env.AlfworldEnv` in an
:class:`~skillzero.core.pool.EnvPool` (worker processes, as training does), prints wins
per task type, and can write one JSON line per game::

    {"game": "json_2.1.1/valid_unseen/.../game.tw-pddl", "split": "valid_unseen",
     "task_type": "pick_and_place_simple", "first_observation": "-= Welcome to ...",
     "won": true, "steps": 6}

A game that is not won (or an engine error, reported in ``error``) makes the command
exit with status 1; bad arguments or missing data exit with status 2 and one line.

This module is imported at plugin discovery (for :func:`setup_command`), so its
top-level imports stay light; the pool and the engine load when the command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skillzero.plugins.alfworld.generate.cli import add_generate_command, add_stats_command

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENV_FACTORY = "skillzero.plugins.alfworld.env:AlfworldEnv"
CHECK_SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")


def setup_command(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``skillzero alfworld`` and its subcommands."""
    sub = parser.add_subparsers(dest="alfworld_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=_no_subcommand(parser))
    check = sub.add_parser(
        "check",
        help="play every game's walkthrough through the env and pool; report wins",
        description="Play every game's expert walkthrough through skillzero's ALFWorld "
        "env and env pool, print wins per task type, and optionally write one JSON line "
        "per game. Exit status 0 when every game is won, 1 otherwise, 2 on bad input.",
    )
    check.add_argument(
        "--data",
        metavar="DIR",
        help="ALFWorld data root, the folder holding json_2.1.1/ "
        "(default: $ALFWORLD_DATA, then ~/.cache/alfworld, then the generated default set)",
    )
    check.add_argument(
        "--split",
        action="append",
        choices=CHECK_SPLITS,
        help="split to check; repeat for several (default: valid_unseen)",
    )
    check.add_argument("--out", metavar="FILE.jsonl", help="write one JSON line per game")
    check.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="env-pool worker processes (default: min(4, CPUs))",
    )
    check.add_argument(
        "--envs", type=int, default=None, help="envs in the pool (default: 4 per worker)"
    )
    check.add_argument("--limit", type=int, default=None, help="check only the first N games")
    check.add_argument(
        "--backend",
        default="process",
        help="env-pool worker backend (default: process; `inline` runs in this process)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=run_check)
    add_generate_command(sub)
    add_stats_command(sub)


def _no_subcommand(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    return handler


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_check(args: argparse.Namespace) -> int:
    """The handler of ``skillzero alfworld check``."""
    from skillzero.plugins.alfworld.data import AlfworldDataError
    from skillzero.plugins.alfworld.games import list_tasks
    from skillzero.plugins.alfworld.setup import resolve_data_dir

    if args.workers < 1:
        return _fail(f"--workers must be >= 1, got {args.workers}")
    if args.envs is not None and args.envs < 1:
        return _fail(f"--envs must be >= 1, got {args.envs}")
    if args.limit is not None and args.limit < 1:
        return _fail(f"--limit must be >= 1, got {args.limit}")
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        return _fail(f"--out: folder {out.parent} does not exist")
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        return _fail(f"--data: {args.data} is not a folder")
    try:
        root = resolve_data_dir({"data_dir": args.data})
    except AlfworldDataError as exc:
        return _fail(str(exc))
    env_cfg = {"data_dir": str(root)}
    tasks = []
    for split in args.split or ["valid_unseen"]:
        try:
            tasks += list_tasks(env_cfg, split)
        except (FileNotFoundError, ValueError) as exc:
            return _fail(str(exc))
    if args.limit is not None:
        tasks = tasks[: args.limit]
    if not tasks:
        return _fail(f"no games found in {', '.join(args.split or ['valid_unseen'])} of {root}")
    from skillzero import registry

    try:
        registry.get("env_workers", args.backend)
    except registry.RegistryError as exc:
        return _fail(f"--backend: {exc}")

    print(f"checking {len(tasks)} ALFWorld games in {root}", file=sys.stderr)
    records = play_walkthroughs(
        tasks,
        env_cfg,
        workers=args.workers,
        envs=args.envs or 4 * args.workers,
        backend=args.backend,
        progress=not args.quiet,
    )
    print(format_summary(records))
    if out is not None:
        write_jsonl(out, records)
        print(f"wrote {len(records)} lines to {out}")
    return EXIT_OK if all(r["won"] for r in records) else EXIT_FAILED


def play_walkthroughs(
    tasks: Sequence[Any],
    env_cfg: Mapping[str, Any],
    *,
    workers: int = 2,
    envs: int = 8,
    backend: Any = "process",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Play each task's walkthrough through an :class:`EnvPool`; one record per task, in
    the order of ``tasks`` (keys of the JSONL lines, plus ``error`` when the engine
    failed)."""
    from tqdm import tqdm

    from skillzero.core.pool import EnvPool
    from skillzero.plugins.alfworld.games import read_walkthrough

    if not tasks:
        return []
    num_envs = max(1, min(envs, len(tasks)))
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(tasks), unit="game", desc="walkthroughs", disable=not progress)
    with EnvPool(
        env_factory=ENV_FACTORY,
        env_cfg=dict(env_cfg),
        num_groups=num_envs,
        group_size=1,
        workers=workers,
        backend=backend,
    ) as pool:
        for start in range(0, len(tasks), num_envs):
            batch = list(tasks[start : start + num_envs])
            real = len(batch)
            batch += [batch[0]] * (num_envs - real)  # pad: these envs are not stepped
            records += _play_batch(pool, batch[:real], batch, read_walkthrough)
            bar.update(real)
    bar.close()
    return records


def _play_batch(
    pool: Any, tasks: Sequence[Any], padded: Sequence[Any], read_walkthrough: Any
) -> list[dict[str, Any]]:
    first = pool.reset(list(padded))
    plans = [read_walkthrough(t.payload["game_file"]) for t in tasks]
    records = []
    for task, result in zip(tasks, first, strict=False):
        record = {
            "game": task.task_id,
            "split": task.split,
            "task_type": task.task_type,
            "first_observation": result.observation,
            "won": bool(result.won),
            "steps": 0,
        }
        if "error" in result.info:
            record["error"] = result.info["error"]
        records.append(record)
    live = {i for i, r in enumerate(first[: len(tasks)]) if not r.done and plans[i]}
    while live:
        actions = {i: plans[i][records[i]["steps"]] for i in live}
        results = pool.step(actions)
        for i, result in results.items():
            if i >= len(tasks):
                continue
            if i in actions:
                records[i]["steps"] += 1
            records[i]["won"] = bool(result.won)
            if "error" in result.info:
                records[i]["error"] = result.info["error"]
            if result.done or records[i]["steps"] >= len(plans[i]):
                live.discard(i)
    return records


def format_summary(records: Sequence[Mapping[str, Any]]) -> str:
    """Wins per task type as a small table."""
    from skillzero.plugins.alfworld.games import SHORT_NAMES, short_task_type

    rows: dict[str, list[int]] = {short: [0, 0] for short in SHORT_NAMES.values()}
    for record in records:
        row = rows.setdefault(short_task_type(str(record["task_type"])), [0, 0])
        row[0] += 1
        row[1] += int(bool(record["won"]))
    lines = [f"{'task type':<10} {'games':>6} {'won':>6} {'success':>8}"]
    for short, (games, won) in rows.items():
        if games:
            lines.append(f"{short:<10} {games:>6} {won:>6} {100 * won / games:>7.1f}%")
    total, won = len(records), sum(bool(r["won"]) for r in records)
    rate = 100 * won / total if total else 0.0
    lines.append(f"{'all':<10} {total:>6} {won:>6} {rate:>7.1f}%")
    failed = [str(r["game"]) for r in records if not r["won"]]
    if failed:
        lines.append(f"{len(failed)} game(s) not won, e.g. {failed[0]}")
    return "\n".join(lines)


def write_jsonl(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]]) -> None:
    """One JSON object per line, UTF-8."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
