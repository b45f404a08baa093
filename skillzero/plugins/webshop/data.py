"""Where the shop comes from, and the tasks of a split.

:func:`resolve_shop` turns the env config into a compiled shop folder
(:mod:`~skillzero.plugins.webshop.shop`):

1. ``env.data_dir`` when set (and then nothing else is tried), else ``$WEBSHOP_DATA``,
   else the project's generated default catalogue
   (:func:`~skillzero.plugins.webshop.generate.ensure_default_data`, made on first use
   into the user cache; ``SKILLZERO_WEBSHOP_GENERATE=0`` turns that off);
2. a compiled shop folder is used as it is; a folder of WebShop's files is compiled
   once into ``<cache>/webshop/shops/`` (``<cache>``: ``$SKILLZERO_CACHE`` or
   ``~/.cache/skillzero``), under a name that changes when the files (size, modification
   time), ``catalogue``, ``num_products``, ``price_seed`` or ``goal_file`` change.

Compiling holds a lock, so concurrent first uses wait for one another; the trainer
lists tasks (and so compiles) before any env worker starts.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skillzero.contracts.env import Task
from skillzero.core.config import cfg_get
from skillzero.plugins.webshop.config import DATA_ENV_VAR

CACHE_VERSION = 1


class WebshopDataError(FileNotFoundError):
    """No usable WebShop data; the message says where we looked and what to do."""


def cache_base() -> Path:
    """skillzero's cache root (``$SKILLZERO_CACHE`` or ``~/.cache/skillzero``)."""
    from skillzero.core.models import cache_dir

    return cache_dir()


def _expand(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(os.fspath(path)))).resolve()


_ANNOUNCED: set[str] = set()


def _announce(line: str) -> None:
    if line not in _ANNOUNCED:
        _ANNOUNCED.add(line)
        print(line, file=sys.stderr)


def source_dir(cfg: Mapping[str, Any] | Any | None) -> tuple[Path, str]:
    """The folder the data comes from and a label saying why (see the module doc)."""
    explicit = cfg_get(cfg, "data_dir", None)
    if explicit:
        return _expand(explicit), "env.data_dir"
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return _expand(from_env), f"${DATA_ENV_VAR}"
    from skillzero.plugins.webshop.generate import ensure_default_data, generation_enabled

    if not generation_enabled():
        raise WebshopDataError(
            f"no WebShop data: env.data_dir and ${DATA_ENV_VAR} are not set and the "
            "generated default shop is turned off (SKILLZERO_WEBSHOP_GENERATE=0). Point "
            "env.data_dir at a folder with items_shuffle_1000.json + items_ins_v2_1000.json "
            "or run `skillzero webshop generate --out DIR`."
        )
    return ensure_default_data(), "generated default shop"


def compile_options(cfg: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    """The settings that change what a compiled shop holds."""
    goal_file = cfg_get(cfg, "goal_file", None)
    return {
        "catalogue": str(cfg_get(cfg, "catalogue", "small")),
        "num_products": cfg_get(cfg, "num_products", None),
        "price_seed": int(cfg_get(cfg, "price_seed", 0)),
        "goal_file": os.fspath(_expand(goal_file)) if goal_file else None,
    }


def resolve_shop(cfg: Mapping[str, Any] | Any | None = None, progress: bool | None = None) -> Path:
    """The compiled shop for ``cfg``, compiled first when needed (see the module doc).
    Raises :class:`WebshopDataError` when there is no usable data."""
    from skillzero.plugins.webshop.catalogue import CatalogueError, find_catalogue_files
    from skillzero.plugins.webshop.shop import is_shop

    root, label = source_dir(cfg)
    if not root.is_dir():
        raise WebshopDataError(f"WebShop data folder {root} ({label}) does not exist")
    options = compile_options(cfg)
    if is_shop(root):
        if options["goal_file"]:
            raise WebshopDataError(
                f"{root} is a compiled shop; env.goal_file needs the catalogue's files "
                "(compile a shop with the goal file: skillzero webshop build --goal-file)"
            )
        _announce(f"webshop: using the compiled shop {root} [{label}]")
        return root
    if options["catalogue"] not in ("small", "full"):
        raise WebshopDataError(f"env.catalogue must be small or full, got {options['catalogue']!r}")
    try:
        files = find_catalogue_files(root, full=options["catalogue"] == "full")
    except CatalogueError as exc:
        raise WebshopDataError(f"{exc} [{label}]") from None
    if options["goal_file"] and not Path(options["goal_file"]).is_file():
        raise WebshopDataError(f"env.goal_file {options['goal_file']} is not a file")
    digest = hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:8]
    goal_print = ""
    if options["goal_file"]:
        stat = Path(options["goal_file"]).stat()
        goal_print = f"{stat.st_size}-{stat.st_mtime_ns}"
    key = hashlib.sha256(
        f"{CACHE_VERSION}|{files.fingerprint()}|{digest}|{goal_print}".encode()
    ).hexdigest()[:16]
    target = cache_base() / "webshop" / "shops" / f"{options['catalogue']}-{key}"
    if not is_shop(target):
        compile_catalogue(files, target, options, progress=progress)
    _announce(f"webshop: using {files.describe()} (compiled: {target}) [{label}]")
    return target


_COMPILE_LOCK = threading.Lock()


def compile_catalogue(
    files: Any, target: Path, options: Mapping[str, Any], progress: bool | None = None
) -> Path:
    """Compile the catalogue ``files`` into ``target`` under a lock (see the module doc)."""
    from skillzero.plugins.webshop.catalogue import iter_products
    from skillzero.plugins.webshop.goals import read_structured_goals
    from skillzero.plugins.webshop.shop import build_shop, is_shop, locked

    with (
        _COMPILE_LOCK,
        locked(
            target.parent / f"{target.name}.lock",
            lambda: f"webshop: waiting for another process to compile {target}",
        ),
    ):
        if is_shop(target):
            return target
        print(f"webshop: compiling {files.describe()} into {target}", file=sys.stderr)
        goal_sets = ["synthetic"] + (["human"] if files.human is not None else [])
        structured = (
            read_structured_goals(options["goal_file"]) if options.get("goal_file") else None
        )
        build_shop(
            target,
            iter_products(files, num_products=options.get("num_products")),
            goal_sets=goal_sets,
            structured_goals=structured,
            seed=int(options.get("price_seed", 0)),
            source=files.describe(),
            fingerprint=files.fingerprint(),
            progress=sys.stderr.isatty() if progress is None else progress,
        )
    return target


def goal_set_of(cfg: Mapping[str, Any] | Any | None) -> str:
    """Which goal set the config plays: ``file`` with a goal file, else ``env.goals``."""
    if cfg_get(cfg, "goal_file", None):
        return "file"
    goals = str(cfg_get(cfg, "goals", "synthetic"))
    if goals not in ("synthetic", "human"):
        raise ValueError(f"env.goals must be synthetic or human, got {goals!r}")
    return goals


_MEMO: dict[tuple[str, str, str, str], list[Task]] = {}
_MEMO_LOCK = threading.Lock()


def list_tasks(env_cfg: Mapping[str, Any] | Any | None, split: str) -> list[Task]:
    """The tasks of ``split`` (see :func:`~skillzero.plugins.webshop.goals.split_range`):
    one per goal index, ``task_id`` ``<goal set>/<index>``, ``task_type`` the target
    product's category, ``payload`` the shop folder, goal set and goal index."""
    from skillzero.plugins.webshop.goals import split_range
    from skillzero.plugins.webshop.shop import open_shop

    shop_path = resolve_shop(env_cfg)
    goal_set = goal_set_of(env_cfg)
    scheme = str(cfg_get(env_cfg, "split_scheme", "webshop"))
    key = (os.fspath(shop_path), goal_set, scheme, split)
    with _MEMO_LOCK:
        if key in _MEMO:
            return list(_MEMO[key])
    shop = open_shop(shop_path)
    counts = shop.goal_sets()
    if goal_set not in counts:
        raise WebshopDataError(
            f"the shop {shop_path} has no {goal_set} goals (goal sets: "
            f"{', '.join(counts) or 'none'}); human goals need items_human_ins.json"
        )
    categories = shop.goal_categories(goal_set)
    tasks = [
        Task(
            task_id=f"{goal_set}/{index}",
            task_type=categories[index] or "unknown",
            split=split,
            payload={"shop": os.fspath(shop_path), "goal_set": goal_set, "goal_index": index},
        )
        for index in split_range(split, counts[goal_set], scheme)
    ]
    with _MEMO_LOCK:
        _MEMO[key] = tasks
    return list(tasks)
