"""``skillzero alfworld generate`` and ``skillzero alfworld stats``.

Imported at plugin discovery (the argument set-up), so only the handlers import the
generator and the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SPLITS = ("train", "valid_seen", "valid_unseen", "valid_train")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def add_generate_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "generate",
        help="write new ALFWorld games (all 6 task types) that the real engine plays",
        description="Generate ALFWorld games in the benchmark's on-disk format "
        "(OUT/json_2.1.1/<split>/<task folder>/trial_*/{game.tw-pddl, initial_state.pddl, "
        "traj_data.json}) from the floor plans the alfworld package ships. Every game has "
        "a planner walkthrough that wins through skillzero's ALFWorld env. The same "
        "arguments give byte-identical files. Exit status 0 on success, 1 if a game "
        "could not be generated, 2 on bad arguments.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="data root to write (created)")
    p.add_argument("--n", required=True, type=int, metavar="N", help="games per split")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="master seed (default 0)")
    p.add_argument(
        "--task-types",
        nargs="+",
        metavar="TYPE",
        help="task types, in turn (names such as pick_two_obj_and_place, short names "
        "pick look clean heat cool pick_two, or ids 1-6; default: all 6)",
    )
    p.add_argument(
        "--split",
        nargs="+",
        choices=SPLITS,
        default=["train"],
        metavar="SPLIT",
        help=f"splits to write, N games each ({', '.join(SPLITS)}; default: train). "
        "valid_unseen games are in ALFRED's valid_unseen rooms (floor plans 10, 219, 308, "
        "424), the others in the 108 rooms of ALFRED's train split",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="worker processes (default: min(4, CPUs))",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the split folders if they already hold games",
    )
    p.add_argument(
        "--full-plan",
        action="store_true",
        help="plan on the whole problem, as alfworld-generate does (slow: minutes for some "
        "pick_two games), instead of its goal-relevant part",
    )
    p.add_argument(
        "--max-receptacles",
        type=int,
        default=None,
        metavar="K",
        help="cut every room down to K receptacles (>= 4), keeping what the task needs: "
        "shorter observations, action lists and searches (default: the whole room)",
    )
    p.add_argument(
        "--max-object-types",
        type=int,
        default=None,
        metavar="K",
        help="place only the goal object's type and up to K-1 other movable types "
        "(default: every type the room has)",
    )
    p.add_argument("--jsonl", metavar="FILE", help="write one JSON line per game")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_generate)


def add_stats_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "stats",
        help="counts, room sizes and walkthrough lengths of a game set (vs another)",
        description="Print statistics of the games in DIR (every split, or --split): "
        "games per task type and per room type, receptacles, objects and movable objects "
        "per room, walkthrough length; with --compare, those of another data root "
        "(default split valid_unseen) side by side.",
    )
    p.add_argument("data", metavar="DIR", help="data root (the folder holding json_2.1.1/)")
    p.add_argument("--split", nargs="+", choices=SPLITS, help="splits of DIR (default: all)")
    p.add_argument("--compare", metavar="DIR2", help="another data root, e.g. the real games")
    p.add_argument(
        "--compare-split",
        nargs="+",
        choices=SPLITS,
        default=["valid_unseen"],
        help="splits of DIR2 (default: valid_unseen)",
    )
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(handler=run_stats)


def run_generate(args: argparse.Namespace) -> int:
    """The handler of ``skillzero alfworld generate``."""
    from skillzero.plugins.alfworld.generate.generator import (
        GAMES_DIR,
        GenerationError,
        generate,
        validate_task_types,
    )

    if args.n < 1:
        return _fail(f"--n must be >= 1, got {args.n}")
    if args.workers < 1:
        return _fail(f"--workers must be >= 1, got {args.workers}")
    if args.max_receptacles is not None and args.max_receptacles < 4:
        return _fail(f"--max-receptacles must be >= 4, got {args.max_receptacles}")
    if args.max_object_types is not None and args.max_object_types < 1:
        return _fail(f"--max-object-types must be >= 1, got {args.max_object_types}")
    try:
        task_types = validate_task_types(args.task_types or ["1", "2", "3", "4", "5", "6"])
    except ValueError as exc:
        return _fail(f"--task-types: {exc}")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        return _fail(f"--out: {out} exists and is not a folder")
    if args.jsonl and not Path(args.jsonl).expanduser().resolve().parent.is_dir():
        return _fail(f"--jsonl: folder {Path(args.jsonl).parent} does not exist")
    splits = list(dict.fromkeys(args.split))
    for split in splits:
        folder = out / GAMES_DIR / split
        if folder.is_dir() and any(folder.iterdir()) and not args.overwrite:
            return _fail(f"--out: {folder} already holds games; use an empty folder or --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return _fail(f"--out: cannot write to {out}: {exc.strerror or exc}")
    if args.overwrite:
        import shutil

        for split in splits:
            shutil.rmtree(out / GAMES_DIR / split, ignore_errors=True)

    total = args.n * len(splits)
    print(
        f"generating {total} ALFWorld games ({args.n} per split: {', '.join(splits)}; "
        f"seed {args.seed}; {args.workers} worker(s)) into {out}",
        file=sys.stderr,
    )
    try:
        records = generate(
            out,
            args.n,
            args.seed,
            task_types,
            splits,
            workers=args.workers,
            progress=not args.quiet,
            full_planning=args.full_plan,
            max_receptacles=args.max_receptacles,
            max_object_types=args.max_object_types,
        )
    except (GenerationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(format_generation_summary(records))
    if args.jsonl:
        from dataclasses import asdict

        with open(Path(args.jsonl).expanduser(), "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(asdict(record)) + "\n")
    print(f"wrote {len(records)} games to {out.resolve()}")
    return EXIT_OK


def format_generation_summary(records: list) -> str:  # type: ignore[type-arg]
    """Games, rejected candidates, mean walkthrough and seconds per split and task type."""
    from skillzero.plugins.alfworld.games import SHORT_NAMES

    lines = [
        f"{'split':<13} {'task type':<10} {'games':>6} {'rejected':>9} {'steps':>6} {'s/game':>7}"
    ]
    for split in dict.fromkeys(r.split for r in records):
        for full, short in SHORT_NAMES.items():
            rows = [r for r in records if r.split == split and r.task_type == full]
            if not rows:
                continue
            rejected = sum(r.attempts - 1 for r in rows)
            steps = sum(r.walkthrough for r in rows) / len(rows)
            seconds = sum(r.seconds for r in rows) / len(rows)
            cells = f"{len(rows):>6} {rejected:>9} {steps:>6.1f} {seconds:>7.2f}"
            lines.append(f"{split:<13} {short:<10} {cells}")
    return "\n".join(lines)


def run_stats(args: argparse.Namespace) -> int:
    """The handler of ``skillzero alfworld stats``."""
    from skillzero.plugins.alfworld.data import GAMES_DIR
    from skillzero.plugins.alfworld.generate.stats import format_table, split_stats

    columns = []
    for root, splits, name in (
        (args.data, args.split, "DIR"),
        (args.compare, args.compare_split, "--compare"),
    ):
        if root is None:
            continue
        folder = Path(root).expanduser()
        if folder.name == GAMES_DIR:
            folder = folder.parent
        if not (folder / GAMES_DIR).is_dir():
            return _fail(f"{name}: no {GAMES_DIR}/ folder in {root}")
        present = sorted(p.name for p in (folder / GAMES_DIR).iterdir() if p.is_dir())
        chosen = splits or [s for s in SPLITS if s in present]
        if not chosen:
            return _fail(f"{name}: no split folder in {folder / GAMES_DIR}")
        for split in chosen:
            if split not in present:
                return _fail(
                    f"{name}: no split {split!r} in {folder / GAMES_DIR} "
                    f"(present: {', '.join(present) or 'none'})"
                )
            label = f"{folder.name}/{split}"
            try:
                columns.append(split_stats(folder, split, label))
            except (OSError, ValueError) as exc:
                return _fail(str(exc))
    if args.json:
        print(json.dumps([c.summary() for c in columns], indent=2))
    else:
        print(format_table(columns))
    return EXIT_OK
