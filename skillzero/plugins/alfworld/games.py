"""Game discovery: which ALFWorld games make up a split, with their task types.

The selection reproduces ALFWorld's own (``AlfredTWEnv.collect_game_files``): games of
the chosen task types (1-6), no ``movable`` or ``Sliced`` trials, and only games whose
``game.tw-pddl`` says ``"solvable": true``. One difference: ALFWorld finds games through
their ``traj_data.json``, which the train split of the current release does not ship, so
we find them through ``game.tw-pddl`` and read the task type from the folder name
(``<task_type>-<object>-<...>-<scene>/trial_*/``). Counts on the official data: train
3,553, valid_seen 140, valid_unseen 134 (valid_train 200).

Scanning reads every game file once (the ``solvable`` flag), a few seconds for the train
split; the result is kept in memory and in an index file under the user cache folder,
re-used while the game files' sizes and modification times are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillzero.contracts.settings import cfg_get
from skillzero.core.env import Task
from skillzero.plugins.alfworld.data import GAMES_DIR, find_data_dir

TASK_TYPES: dict[int, str] = {
    1: "pick_and_place_simple",
    2: "look_at_obj_in_light",
    3: "pick_clean_then_place_in_recep",
    4: "pick_heat_then_place_in_recep",
    5: "pick_cool_then_place_in_recep",
    6: "pick_two_obj_and_place",
}
"""ALFWorld's task-type ids and names (``alfworld.agents.environment.alfred_tw_env``)."""

TASK_TYPE_NAMES: tuple[str, ...] = tuple(TASK_TYPES.values())
"""The six task types in ALFWorld's id order."""

SHORT_NAMES: dict[str, str] = {
    "pick_and_place_simple": "pick",
    "look_at_obj_in_light": "look",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "pick_two_obj_and_place": "pick_two",
}
"""The short names used in metrics, in the order papers report them."""

SPLITS: tuple[str, ...] = ("train", "valid_seen", "valid_unseen", "valid_train")
GAME_FILE = "game.tw-pddl"
SKIPPED_MARKERS: tuple[str, ...] = ("movable", "Sliced")
INDEX_VERSION = 1


@dataclass(frozen=True)
class GameRecord:
    """One game file found in a split folder."""

    relpath: str  # relative to the split folder, POSIX separators
    task_type: str  # the full name, e.g. "pick_and_place_simple"
    solvable: bool


def task_type_of(path: str | os.PathLike[str]) -> str | None:
    """The task type named by a game's folder: the part before the first ``-`` of the
    first path component that starts with a known task type (works for paths relative to
    a split folder and for absolute paths)."""
    for part in Path(path).parts:
        head = part.split("-", 1)[0]
        if head in SHORT_NAMES or head == "pick_and_place_with_movable_recep":
            return head
    return None


def short_task_type(name: str) -> str:
    """The short name (``pick``, ``look``, ...) of a task type given by full name, short
    name or a game path; unknown names are returned unchanged."""
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    if name in SHORT_NAMES.values():
        return name
    found = task_type_of(name)
    return SHORT_NAMES.get(found, name) if found else name


def _read_solvable(game_file: Path) -> bool | None:
    """The ``solvable`` flag of a game file (``None`` when the key is missing)."""
    try:
        with open(game_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read ALFWorld game {game_file}: {exc}") from exc
    value = data.get("solvable") if isinstance(data, dict) else None
    return None if value is None else bool(value)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillzero" / "alfworld"


def _index_path(split_dir: Path) -> Path:
    digest = hashlib.sha256(str(split_dir).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return _cache_dir() / f"index-{split_dir.name}-{digest}.json"


def _load_index(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("version") == INDEX_VERSION and isinstance(data.get("games"), dict):
            return data["games"]
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def _save_index(path: Path, games: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"version": INDEX_VERSION, "games": games}, handle)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs a re-scan next time


def scan_split(split_dir: str | os.PathLike[str], use_index: bool = True) -> list[GameRecord]:
    """Every ``game.tw-pddl`` under ``split_dir`` with its task type and solvable flag,
    sorted by path. Trials of unknown task types, ``movable`` or ``Sliced`` trials and
    games without a ``solvable`` key are left out here (as ALFWorld does)."""
    split_dir = Path(split_dir).resolve()
    index_file = _index_path(split_dir)
    index = _load_index(index_file) if use_index else {}
    fresh: dict[str, Any] = {}
    records = []
    for root, dirs, files in os.walk(split_dir):
        dirs.sort()
        if GAME_FILE not in files:
            continue
        rel_dir = Path(root).relative_to(split_dir)
        if any(marker in str(rel_dir) for marker in SKIPPED_MARKERS):
            continue
        task_type = task_type_of(rel_dir)
        if task_type not in SHORT_NAMES:
            continue
        game_file = Path(root) / GAME_FILE
        relpath = (rel_dir / GAME_FILE).as_posix()
        stat = game_file.stat()
        key = [stat.st_size, stat.st_mtime_ns]
        cached = index.get(relpath)
        if cached is not None and cached[:2] == key:
            solvable = cached[2]
        else:
            solvable = _read_solvable(game_file)
        fresh[relpath] = [*key, solvable]
        if solvable is None:
            continue
        records.append(GameRecord(relpath, task_type, solvable))
    if use_index and fresh != index:
        _save_index(index_file, fresh)
    records.sort(key=lambda r: r.relpath)
    return records


_MEMO: dict[tuple[str, str, tuple[int, ...]], list[Task]] = {}
_MEMO_LOCK = threading.Lock()


def _task_type_names(ids: Iterable[Any]) -> tuple[str, ...]:
    names = []
    for value in ids:
        try:
            tid = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"alfworld: task_types must be ids 1-6, got {value!r}") from None
        if tid not in TASK_TYPES:
            raise ValueError(f"alfworld: unknown task type id {tid}; known: 1-6")
        names.append(TASK_TYPES[tid])
    if not names:
        raise ValueError("alfworld: task_types is empty; use ids 1-6")
    return tuple(names)


def split_dir(data_root: Path, split: str) -> Path:
    """``<data_root>/json_2.1.1/<split>``; raises a clear error when it is missing."""
    path = data_root / GAMES_DIR / split
    if not path.is_dir():
        present = sorted(p.name for p in (data_root / GAMES_DIR).iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"ALFWorld split {split!r} not found: no folder {path} "
            f"(splits present: {', '.join(present) or 'none'})"
        )
    return path


def list_tasks(env_cfg: Mapping[str, Any] | Any | None, split: str) -> list[Task]:
    """The tasks of ``split`` (``train``, ``valid_seen``, ``valid_unseen``, ...), sorted
    by game path. ``task_id`` is the game file's path relative to the data root,
    ``payload["game_file"]`` its absolute path."""
    data_root = find_data_dir(env_cfg)
    ids = tuple(int(i) for i in cfg_get(env_cfg, "task_types", list(TASK_TYPES)))
    wanted = set(_task_type_names(ids))
    folder = split_dir(data_root, split)
    key = (str(folder), split, ids)
    with _MEMO_LOCK:
        if key in _MEMO:
            return list(_MEMO[key])
    tasks = [
        Task(
            task_id=f"{GAMES_DIR}/{split}/{record.relpath}",
            task_type=record.task_type,
            split=split,
            payload={"game_file": str(folder / record.relpath)},
        )
        for record in scan_split(folder)
        if record.solvable and record.task_type in wanted
    ]
    with _MEMO_LOCK:
        _MEMO[key] = tasks
    return list(tasks)


def read_walkthrough(game_file: str | os.PathLike[str]) -> list[str]:
    """The expert plan stored in a game file (``walkthrough``); empty when absent."""
    with open(game_file, encoding="utf-8") as handle:
        data = json.load(handle)
    walkthrough = data.get("walkthrough") if isinstance(data, dict) else None
    return [str(a) for a in walkthrough] if isinstance(walkthrough, list) else []


class WalkthroughExpert:
    """ALFWorld's expert: the planner walkthrough stored in each game file (generated
    games and the published ones alike); ``skillzero sft`` replays it in the engine."""

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        del env_cfg  # the plan is in the game file

    def actions(self, task: Task) -> list[str] | None:
        game_file = task.payload.get("game_file")
        if not game_file:
            return None
        try:
            return read_walkthrough(game_file) or None
        except (OSError, ValueError):
            return None


def count_by_type(tasks: Sequence[Task]) -> dict[str, int]:
    """Number of tasks per short task-type name, in the canonical order."""
    counts = dict.fromkeys(SHORT_NAMES.values(), 0)
    for task in tasks:
        short = short_task_type(task.task_type)
        counts[short] = counts.get(short, 0) + 1
    return counts
