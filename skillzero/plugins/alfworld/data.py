"""Where the ALFWorld games are: the data layout and the search for a data root.

:func:`find_data_dir` looks only where games may already be (``env.data_dir``,
``$ALFWORLD_DATA``, ``~/.cache/alfworld``) and never makes any. Generating the project's
default game set when none is found is a separate, explicit step of the env's set-up
(:func:`skillzero.plugins.alfworld.setup.resolve_data_dir`), so this module imports
nothing of the generator. Light on purpose: no TextWorld, no alfworld.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from skillzero.contracts.settings import cfg_get

DATA_ENV_VAR = "ALFWORLD_DATA"
DEFAULT_DATA_DIR = "~/.cache/alfworld"
GAMES_DIR = "json_2.1.1"
"""The folder under the data root that holds one folder per split (the layout
``alfworld-download`` writes)."""


class AlfworldDataError(FileNotFoundError):
    """The ALFWorld games cannot be found; the message says where we looked."""


class SkipSource(Exception):
    """Raised by a data source that does not apply; the message says why."""


def has_games(root: Path) -> bool:
    """``root`` holds the ``json_2.1.1/`` folder."""
    return (root / GAMES_DIR).is_dir()


def normalise(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` and variables expanded, resolved; the ``json_2.1.1`` folder
    itself is accepted as well as its parent."""
    path = Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))
    if path.name == GAMES_DIR and not has_games(path):
        path = path.parent
    return path.resolve()


def user_data_var() -> str | None:
    """``$ALFWORLD_DATA`` when the user set it. Importing ``alfworld`` sets it to
    ``~/.cache/alfworld`` when it is unset, so that value counts as unset."""
    value = os.environ.get(DATA_ENV_VAR)
    if not value:
        return None
    if normalise(value) == normalise(DEFAULT_DATA_DIR):
        return None
    return value


DataSource = Callable[[], "str | os.PathLike[str] | None"]
"""Gives a data root, or None when it does not apply, or raises :class:`SkipSource`
saying why."""

DATA_SOURCES: list[tuple[str, DataSource]] = [
    (f"${DATA_ENV_VAR}", lambda: os.environ.get(DATA_ENV_VAR) or None),
    (DEFAULT_DATA_DIR, lambda: DEFAULT_DATA_DIR),
]
"""Where games may already be when the config names no ``data_dir``, in order, each with
the label error messages use."""

_ANNOUNCED: set[Path] = set()


def describe_data_root(root: Path) -> str:
    """One line naming a data root and, for a generated set, how it was made."""
    manifest = root / "skillzero-games.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"ALFWorld games in {root}"
    splits = data.get("splits") or {}
    counts = ", ".join(f"{v.get('games', '?')} {k}" for k, v in sorted(splits.items()))
    sizes = {v.get("max_receptacles") for v in splits.values()} - {None}
    rooms = f", rooms of <= {max(sizes)} receptacles" if sizes else ""
    kinds = {v.get("max_object_types") for v in splits.values()} - {None}
    rooms += f", <= {max(kinds)} object types" if kinds else ""
    return (
        f"generated ALFWorld games in {root} ({counts}; skillzero alfworld generate "
        f"v{data.get('version', '?')}, seed {data.get('seed', '?')}{rooms})"
    )


def announce(root: Path, label: str, hint: str = "") -> None:
    """Say once per process, on stderr, which game set is used and how it was found."""
    if root in _ANNOUNCED:
        return
    _ANNOUNCED.add(root)
    print(f"alfworld: using {describe_data_root(root)} [{label}]{hint}", file=sys.stderr)


def find_data_dir(
    cfg: Mapping[str, Any] | Any | None = None,
    sources: Sequence[tuple[str, DataSource]] | None = None,
    *,
    hints: Mapping[str, str] | None = None,
) -> Path:
    """The ALFWorld data root: the folder that holds ``json_2.1.1/``.

    ``cfg.data_dir`` when set (and then nothing else is tried), otherwise the first of
    ``sources`` (default :data:`DATA_SOURCES`) that holds the games; ``hints`` adds a
    note to the announcement of a source's label. Says once per process, on stderr,
    which game set is used. Raises :class:`AlfworldDataError` naming every place tried
    and how to get the data.
    """
    explicit = cfg_get(cfg, "data_dir", None)
    tried: list[str] = []
    if explicit:
        root = normalise(explicit)
        if has_games(root):
            announce(root, "env.data_dir")
            return root
        tried.append(f"data_dir={explicit!s} ({root})")
    else:
        for label, source in DATA_SOURCES if sources is None else sources:
            try:
                value = source()
            except SkipSource as exc:
                tried.append(f"{label} ({exc})")
                continue
            if not value:
                tried.append(f"{label} (not set)")
                continue
            root = normalise(value)
            if has_games(root):
                announce(root, label, (hints or {}).get(label, ""))
                return root
            tried.append(f"{label} ({root})")
    raise AlfworldDataError(
        f"ALFWorld games not found: no {GAMES_DIR}/ folder in "
        + "; ".join(tried)
        + f". Run `alfworld-download` (writes {DEFAULT_DATA_DIR}), or point env.data_dir "
        f"or ${DATA_ENV_VAR} at the folder that holds {GAMES_DIR}/, or generate games "
        "with `skillzero alfworld generate`."
    )
