"""Write generated ALFWorld games in the benchmark's on-disk format.

For each game (``split``, ``index``): a task type (``task_types[index % len]``, so the
types are balanced), a seed derived from the master seed, the split and the index (and
the attempt number when a candidate is rejected), then

1. sample a task (:func:`~skillzero.plugins.alfworld.generate.tasks.sample_task`);
2. write ``traj_data.json``, ``initial_state.pddl`` and ``game.tw-pddl`` (``pddl_domain``
   and ``grammar`` are the installed ``alfworld`` package's ``alfred.pddl`` and
   ``alfred.twl2``, the grammar with the goal text added by ALFWorld's
   ``add_task_to_grammar``) into a staging folder;
3. ask the planner-based expert for a plan, as ``alfworld-generate --expert_type
   planner`` does (TextWorld's ``PddlEnv`` with ALFWorld's ``AlfredDemangler``,
   ``AlfredInfos`` and ``AlfredExpert("planner")``, i.e. fast-downward), and store it as
   the game's ``walkthrough`` with ``"solvable": true``;
4. replay the walkthrough through skillzero's
   :class:`~skillzero.plugins.alfworld.env.AlfworldEnv` (the env training uses) and
   keep the game only if the last step wins and no earlier one does;
5. move the trial folder to ``<out>/json_2.1.1/<split>/<task folder>/<trial>/``.

A rejected candidate is replaced by a new draw (next attempt seed). The files depend only
on (seed, split, index, task types) and the installed ``alfworld`` package: JSON is
written with a fixed key order and no timestamps, and worker processes run with a fixed
``PYTHONHASHSEED``, so the same arguments give byte-identical files, whatever the number
of workers. ``<out>/skillzero-games.json`` records how the set was made.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from skillzero.plugins.alfworld.generate.tasks import TASK_TYPE_NAMES

GENERATOR_VERSION = "1"
"""Bumped whenever the same arguments would give different files."""

GAMES_DIR = "json_2.1.1"
MANIFEST = "skillzero-games.json"
STAGING = ".staging"
SPLITS: tuple[str, ...] = ("train", "valid_seen", "valid_unseen", "valid_train")
MAX_ATTEMPTS = 20
HASH_SEED = "0"
"""``PYTHONHASHSEED`` of the worker processes: fast-downward's translator iterates over
sets of strings, so a fixed hash seed keeps its plans, and the walkthroughs, identical
from run to run."""


class GenerationError(RuntimeError):
    """A game could not be generated (after :data:`MAX_ATTEMPTS` candidates)."""


@dataclass(frozen=True)
class GameSpec:
    """What to generate: one game of a split."""

    seed: int
    split: str
    index: int
    task_type: str
    max_receptacles: int | None = None
    max_object_types: int | None = None


@dataclass
class GameRecord:
    """What was generated (one per game)."""

    split: str
    index: int
    task_type: str
    path: str  # the game file, relative to the output root
    scene: int
    walkthrough: int  # steps of the expert plan
    attempts: int
    seconds: float


def game_seed(seed: int, split: str, index: int, attempt: int = 0) -> int:
    """The seed of one candidate game (64 bits of a SHA-256 of its coordinates)."""
    text = f"skillzero-alfworld-v{GENERATOR_VERSION}:{seed}:{split}:{index}:{attempt}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def plan_games(
    n: int,
    seed: int,
    task_types: Sequence[str],
    splits: Sequence[str],
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> list[GameSpec]:
    """The games to generate: ``n`` per split, task types in turn."""
    return [
        GameSpec(
            seed,
            split,
            index,
            task_types[index % len(task_types)],
            max_receptacles,
            max_object_types,
        )
        for split in splits
        for index in range(n)
    ]


# ----------------------------------------------------------------------------------------
# One game
# ----------------------------------------------------------------------------------------


def _write_json(path: Path, data: Any, sort_keys: bool) -> None:
    """As the benchmark's files: ``traj_data.json`` sorted with an indent of 4,
    ``game.tw-pddl`` in ``json.dump``'s default layout (keys in insertion order)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=sort_keys, indent=4 if sort_keys else None)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


class GameMaker:
    """Builds games in one process: holds the planner env and the replay env (each
    loads a private copy of fast-downward's library once)."""

    def __init__(self, full_planning: bool = False) -> None:
        from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH

        from skillzero.plugins.alfworld.env import AlfworldEnv

        self.domain = Path(ALFRED_PDDL_PATH).read_text(encoding="utf-8")
        self.grammar = Path(ALFRED_TWL2_PATH).read_text(encoding="utf-8")
        self.planner = _planner_env()
        self.replay = AlfworldEnv({"max_steps": 1000, "engine_cache": True})
        self.full_planning = full_planning

    def close(self) -> None:
        self.replay.close()
        self.planner.close()

    def make(self, spec: GameSpec, out: Path) -> GameRecord:
        start = time.perf_counter()
        reasons = []
        for attempt in range(MAX_ATTEMPTS):
            record, reason = self._attempt(spec, out, attempt)
            if record is not None:
                record.seconds = round(time.perf_counter() - start, 3)
                return record
            reasons.append(reason)
        raise GenerationError(
            f"no solvable {spec.task_type} game for {spec.split} #{spec.index} after "
            f"{MAX_ATTEMPTS} candidates: {'; '.join(sorted(set(reasons)))}"
        )

    def _attempt(self, spec: GameSpec, out: Path, attempt: int) -> tuple[GameRecord | None, str]:
        from skillzero.plugins.alfworld.generate import tasks as t

        seed = game_seed(spec.seed, spec.split, spec.index, attempt)
        rng = random.Random(seed)
        task = t.sample_task(
            spec.task_type, spec.split, rng, spec.max_receptacles, spec.max_object_types
        )
        trial = f"trial_G{spec.index:06d}_{seed % 16**8:08x}"
        provenance = {
            "generator": f"skillzero alfworld generate v{GENERATOR_VERSION}",
            "seed": spec.seed,
            "split": spec.split,
            "index": spec.index,
            "attempt": attempt,
        }
        if spec.max_receptacles is not None:
            provenance["max_receptacles"] = spec.max_receptacles
        if spec.max_object_types is not None:
            provenance["max_object_types"] = spec.max_object_types
        params = {"task_type": spec.task_type, "pddl_params": t.pddl_params(task.goal)}
        desc = t.task_description(params, seed)
        grammar = t.grammar_with_task(self.grammar, params, seed)
        if f"Your task is to: {desc}." not in grammar:
            raise GenerationError("the goal text did not reach the grammar")
        problem = t.problem_pddl(task, trial)

        stage = out / STAGING / spec.split / task.folder / trial
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        game_file = stage / "game.tw-pddl"
        game: dict[str, Any] = {
            "pddl_domain": self.domain,
            "grammar": grammar,
            "pddl_problem": problem,
            "solvable": False,
            "walkthrough": None,
        }
        _write_json(
            stage / "traj_data.json", t.traj_data(task, trial, desc, [], seed, provenance), True
        )
        _write_json(game_file, game, False)

        if self.full_planning:
            plan = self._plan(game)
        else:
            part = task.relevant(random.Random(seed))
            plan = self._plan(dict(game, pddl_problem=t.problem_pddl(part, trial)))
            plan = rename_entities(plan, part.entity_ids(), task.entity_ids())
        if not plan:
            shutil.rmtree(stage)
            return None, "the planner found no plan"
        won, reason = self._replay(game_file, plan, spec)
        if not won:
            shutil.rmtree(stage)
            return None, reason

        game["solvable"] = True
        game["walkthrough"] = plan
        _write_json(game_file, game, False)
        _write_text(stage / "initial_state.pddl", problem)
        traj = t.traj_data(task, trial, desc, plan, seed, provenance)
        _write_json(stage / "traj_data.json", traj, True)

        final = out / GAMES_DIR / spec.split / task.folder / trial
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, final)
        record = GameRecord(
            split=spec.split,
            index=spec.index,
            task_type=spec.task_type,
            path=(final / "game.tw-pddl").relative_to(out).as_posix(),
            scene=task.plan.scene,
            walkthrough=len(plan),
            attempts=attempt + 1,
            seconds=0.0,
        )
        return record, ""

    def _plan(self, game: Mapping[str, Any]) -> list[str]:
        argv = list(sys.argv)  # fast-downward's translator overwrites sys.argv
        try:
            self.planner.load(game)
            state = self.planner.reset()
            return [str(c) for c in state["policy_commands"] or []]
        except Exception:  # an unsolvable problem makes the planner raise
            return []
        finally:
            sys.argv[:] = argv

    def _replay(self, game_file: Path, plan: Sequence[str], spec: GameSpec) -> tuple[bool, str]:
        from skillzero.contracts.env import Task

        task = Task(str(game_file), spec.task_type, spec.split, {"game_file": str(game_file)})
        _observation, info = self.replay.reset(options={"task": task})
        if info["won"]:
            return False, "the goal held at the start"
        for step, action in enumerate(plan, 1):
            if action not in info["admissible_actions"]:
                return False, f"walkthrough step {step} ({action!r}) is not admissible"
            _observation, _reward, _terminated, _truncated, info = self.replay.step(action)
            if info["won"] != (step == len(plan)):
                return False, f"the walkthrough wins at step {step} of {len(plan)}"
        return bool(info["won"]), "the walkthrough does not win"


def demangled_names(entity_ids: Iterable[str]) -> dict[str, str]:
    """Entity id -> the name the game shows (``cabinet 3``), by ALFWorld's
    ``Demangler`` as ``AlfredDemangler`` runs it (no shuffling)."""
    from types import SimpleNamespace

    from alfworld.agents.utils.misc import Demangler

    ids = sorted(entity_ids)
    demangler = Demangler(game_infos={i: SimpleNamespace(id=i) for i in ids}, shuffle=False)
    return {i: demangler.demangle_alfred_name(i).strip() for i in ids}


def rename_entities(
    commands: Sequence[str], part_ids: Iterable[str], full_ids: Iterable[str]
) -> list[str]:
    """Commands planned on part of a game, with the names the whole game gives the same
    entities (instances are numbered among all entities of their type)."""
    import re

    full = demangled_names(full_ids)
    mapping = {name: full[i] for i, name in demangled_names(part_ids).items()}
    pattern = re.compile(r"[a-z]+ \d+")
    renamed = []
    for command in commands:
        renamed.append(pattern.sub(lambda m: mapping.get(m.group(0), m.group(0)), command))
    return renamed


def _planner_env() -> Any:
    """ALFWorld's planner expert: TextWorld's ``PddlEnv`` asked for ``policy_commands``
    (fast-downward's plan, which ``AlfredExpert("planner")`` returns as its
    ``expert_plan``), with ``AlfredDemangler`` naming the entities as the game does."""
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    request_infos = textworld.EnvInfos(admissible_commands=True, policy_commands=True)
    return AlfredDemangler(PddlEnv(request_infos), shuffle=False)


# ----------------------------------------------------------------------------------------
# Worker processes
# ----------------------------------------------------------------------------------------

_MAKER: GameMaker | None = None


def _worker_init(full_planning: bool = False) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    global _MAKER
    _MAKER = GameMaker(full_planning)


def _worker_make(spec: GameSpec, out: str) -> GameRecord:
    if _MAKER is None:
        _worker_init()
    assert _MAKER is not None
    return _MAKER.make(spec, Path(out))


@contextlib.contextmanager
def _hash_seed() -> Iterator[None]:
    """``PYTHONHASHSEED`` fixed while worker processes may start (spawned interpreters
    read it), then restored."""
    previous = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = HASH_SEED
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = previous


def _executor(workers: int, full_planning: bool = False) -> ProcessPoolExecutor:
    import multiprocessing as mp

    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(full_planning,),
    )


# ----------------------------------------------------------------------------------------
# A game set
# ----------------------------------------------------------------------------------------


def validate_task_types(names: Iterable[str]) -> list[str]:
    """Task-type names (full or short, e.g. ``pick``, or ids 1-6), in canonical order;
    raises ``ValueError`` naming the known ones."""
    from skillzero.plugins.alfworld.games import SHORT_NAMES, TASK_TYPES

    by_short = {short: full for full, short in SHORT_NAMES.items()}
    chosen = set()
    for name in names:
        key = str(name).strip()
        if key.isdigit() and int(key) in TASK_TYPES:
            chosen.add(TASK_TYPES[int(key)])
        elif key in SHORT_NAMES:
            chosen.add(key)
        elif key in by_short:
            chosen.add(by_short[key])
        else:
            known = ", ".join([*by_short, *SHORT_NAMES])
            raise ValueError(f"unknown task type {key!r}; known: {known} (or ids 1-6)")
    if not chosen:
        raise ValueError("no task type given")
    return [t for t in TASK_TYPE_NAMES if t in chosen]


def generate(
    out: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    task_types: Sequence[str] | None = None,
    splits: Sequence[str] = ("train",),
    workers: int = 1,
    progress: bool = False,
    on_record: Callable[[GameRecord], None] | None = None,
    full_planning: bool = False,
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> list[GameRecord]:
    """Generate ``n`` games per split into ``out`` (see the module docstring); returns
    one record per game, sorted by split and index. Always runs the games in worker
    processes (``workers`` of them) so that plans do not depend on this process's hash
    seed. ``max_receptacles`` cuts every room down to that many receptacles (see
    :func:`~skillzero.plugins.alfworld.generate.tasks.smaller_room`);
    ``max_object_types`` places only the goal object's type and up to that many minus
    one other movable types."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise ValueError(
            f"unknown split {unknown[0] if unknown else ''!r}; known: {', '.join(SPLITS)}"
        )
    types = validate_task_types(task_types or TASK_TYPE_NAMES)
    root = Path(out).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    if max_receptacles is not None:
        from skillzero.plugins.alfworld.generate.tasks import MIN_RECEPTACLES

        if max_receptacles < MIN_RECEPTACLES:
            raise ValueError(f"max_receptacles must be >= {MIN_RECEPTACLES}, got {max_receptacles}")
    if max_object_types is not None and max_object_types < 1:
        raise ValueError(f"max_object_types must be >= 1, got {max_object_types}")
    specs = plan_games(
        n, seed, types, list(dict.fromkeys(splits)), max_receptacles, max_object_types
    )

    from tqdm import tqdm

    records: list[GameRecord] = []
    bar = tqdm(total=len(specs), unit="game", desc="generating", disable=not progress)
    with _hash_seed():
        executor = _executor(min(workers, len(specs)), full_planning)
        try:
            futures = [executor.submit(_worker_make, spec, str(root)) for spec in specs]
            for future in as_completed(futures):
                record = future.result()
                records.append(record)
                if on_record is not None:
                    on_record(record)
                bar.update(1)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        executor.shutdown(wait=True)
    shutil.rmtree(root / STAGING, ignore_errors=True)
    records.sort(key=lambda r: (SPLITS.index(r.split), r.index))
    write_manifest(root, seed, types, n, records, max_receptacles, max_object_types)
    return records


def write_manifest(
    root: Path,
    seed: int,
    task_types: Sequence[str],
    n: int,
    records: Sequence[GameRecord],
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> dict[str, Any]:
    """Write (or update, split by split) ``<root>/skillzero-games.json``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        alfworld_version = version("alfworld")
    except PackageNotFoundError:
        alfworld_version = "unknown"
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("version") != GENERATOR_VERSION or manifest.get("seed") != seed:
            manifest = {}
    except (OSError, ValueError):
        manifest = {}
    manifest.update(
        {
            "generator": "skillzero alfworld generate",
            "version": GENERATOR_VERSION,
            "alfworld": alfworld_version,
            "seed": seed,
        }
    )
    splits = manifest.setdefault("splits", {})
    for split in sorted({r.split for r in records}):
        games = [r for r in records if r.split == split]
        splits[split] = {
            "games": len(games),
            "n": n,
            "task_types": list(task_types),
            "max_receptacles": max_receptacles,
            "max_object_types": max_object_types,
            "files": sorted(r.path for r in games),
        }
    _write_json(path, manifest, True)
    return manifest


def record_dict(record: GameRecord) -> dict[str, Any]:
    return asdict(record)


def summarise(records: Sequence[GameRecord]) -> Mapping[str, Any]:
    """Counts, attempts and time of a generation run."""
    seconds = [r.seconds for r in records]
    return {
        "games": len(records),
        "rejected": sum(r.attempts - 1 for r in records),
        "seconds_per_game": sum(seconds) / len(seconds) if seconds else 0.0,
    }
