"""The structured schema of the ``env=alfworld`` config entry, and where the data lives.

Imported at plugin discovery (it is the env's config schema), so it must stay light: no
TextWorld, no alfworld.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillzero.core.config import (
    EnvConfig,
    cfg_get,
)

DATA_ENV_VAR = "ALFWORLD_DATA"
DEFAULT_DATA_DIR = "~/.cache/alfworld"
GAMES_DIR = "json_2.1.1"
"""The folder under the data root that holds one folder per split (the layout
``alfworld-download`` writes)."""


@dataclass
class AlfworldConfig(EnvConfig):
    """Settings of the ALFWorld env, on top of those every env has (:class:`EnvConfig`).

    Data
        ``data_dir``: the data root (the folder holding ``json_2.1.1/``); ``None`` means
        ``$ALFWORLD_DATA``, then ``~/.cache/alfworld`` (where ``alfworld-download`` puts
        it), then the generated default game set (made on first use; not when
        ``$ALFWORLD_DATA`` is set). ``train_split`` / ``val_split``: folders under ``json_2.1.1``.
        ``task_types``: ALFWorld task-type ids to keep (1 pick, 2 look, 3 clean, 4 heat,
        5 cool, 6 pick two), as ALFWorld's own ``env.task_types``.
    Episodes
        ``max_steps``: steps before truncation. ``won_reward``: reward of the winning step
        (the reward is ``won_reward * won``). ``engine_cache``: memoise the engine's pure
        computations in each worker process (same results, several times faster; see
        ``skillzero.plugins.alfworld.engine``). ``fast_noop``: answer an action that is
        not one of the engine's commands with the engine's own ``Nothing happens.``
        without running the engine.
    Prompt and parsing
        ``history_length``: past (observation, action) pairs shown.
        ``response_format``: ``standard`` (``<think>...</think><action>...</action>``, as
        verl-agent) or ``compact`` (``<action>...</action>`` only, 24 new tokens; for
        small models on CPU). ``require_think``: a response without a
        ``<think>...</think>`` block is invalid (``null``: when the format asks for
        one). ``reject_cjk``: a response with CJK ideographs is invalid. ``lowercase``:
        the action is lower-cased. ``require_admissible``: an action that is not one of
        the admissible commands is invalid (verl-agent does not check this; off by
        default).
        ``invalid_action_penalty``: subtracted by the trainer for each invalid response.
    """

    name: str = "alfworld"
    num_groups: int = 16
    group_size: int = 8
    max_steps: int = 50
    history_length: int = 2
    invalid_action_penalty: float = 0.1
    train_split: str = "train"
    val_split: str = "valid_unseen"
    max_prompt_tokens: int = 2048
    data_dir: str | None = None
    task_types: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    won_reward: float = 10.0
    engine_cache: bool = True
    fast_noop: bool = True
    require_think: bool | None = None
    reject_cjk: bool = True
    lowercase: bool = True
    require_admissible: bool = False


class AlfworldDataError(FileNotFoundError):
    """The ALFWorld games cannot be found; the message says where we looked."""


def _has_games(root: Path) -> bool:
    return (root / GAMES_DIR).is_dir()


def _normalise(path: str | os.PathLike[str]) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(os.fspath(path))))
    # Accept the json_2.1.1 folder itself as well as its parent.
    if path.name == GAMES_DIR and not _has_games(path):
        path = path.parent
    return path.resolve()


class SkipSource(Exception):
    """Raised by a data source that does not apply; the message says why."""


def _user_data_var() -> str | None:
    """``$ALFWORLD_DATA`` when the user set it. Importing ``alfworld`` sets it to
    ``~/.cache/alfworld`` when it is unset, so that value counts as unset."""
    value = os.environ.get(DATA_ENV_VAR)
    if not value:
        return None
    if _normalise(value) == _normalise(DEFAULT_DATA_DIR):
        return None
    return value


def _generated_default() -> str | None:
    """The generated default game set (generated on first use, see
    :mod:`skillzero.plugins.alfworld.generate.default`); not used when the user set
    ``$ALFWORLD_DATA``."""
    from skillzero.plugins.alfworld.generate import default

    if _user_data_var():
        raise SkipSource(f"not used: ${DATA_ENV_VAR} is set")
    if not default.generation_enabled():
        raise SkipSource(f"turned off by {default.GENERATE_ENV_VAR}=0")
    return os.fspath(default.ensure_default_games())


GENERATED_SOURCE = "generated default games"

# Where to look for the data when the config names none, in order. Each entry gives a
# label for error messages and returns a path (or None when it does not apply, or raises
# SkipSource saying why). The last one builds the project's default game set on demand.
DataSource = Callable[[], "str | os.PathLike[str] | None"]
DATA_SOURCES: list[tuple[str, DataSource]] = [
    (f"${DATA_ENV_VAR}", lambda: os.environ.get(DATA_ENV_VAR) or None),
    (DEFAULT_DATA_DIR, lambda: DEFAULT_DATA_DIR),
    (GENERATED_SOURCE, _generated_default),
]

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
    return (
        f"generated ALFWorld games in {root} ({counts}; skillzero alfworld generate "
        f"v{data.get('version', '?')}, seed {data.get('seed', '?')})"
    )


def _announce(root: Path, label: str) -> None:
    """Say once per process which game set is used."""
    if root in _ANNOUNCED:
        return
    _ANNOUNCED.add(root)
    hint = ""
    if label == GENERATED_SOURCE:
        hint = "; set $ALFWORLD_DATA or env.data_dir to use the published games"
    print(f"alfworld: using {describe_data_root(root)} [{label}]{hint}", file=sys.stderr)


def resolve_data_dir(cfg: Mapping[str, Any] | Any | None = None) -> Path:
    """The ALFWorld data root: the folder that holds ``json_2.1.1/``.

    ``cfg.data_dir`` when set (and then nothing else is tried), otherwise the first of
    :data:`DATA_SOURCES` that holds the games (the last one generates the default game
    set). Says once per process, on stderr, which game set is used. Raises
    :class:`AlfworldDataError` naming every place tried and how to get the data.
    """
    explicit = cfg_get(cfg, "data_dir", None)
    tried: list[str] = []
    if explicit:
        root = _normalise(explicit)
        if _has_games(root):
            _announce(root, "env.data_dir")
            return root
        tried.append(f"data_dir={explicit!s} ({root})")
    else:
        for label, source in DATA_SOURCES:
            try:
                value = source()
            except SkipSource as exc:
                tried.append(f"{label} ({exc})")
                continue
            if not value:
                tried.append(f"{label} (not set)")
                continue
            root = _normalise(value)
            if _has_games(root):
                _announce(root, label)
                return root
            tried.append(f"{label} ({root})")
    raise AlfworldDataError(
        f"ALFWorld games not found: no {GAMES_DIR}/ folder in "
        + "; ".join(tried)
        + f". Run `alfworld-download` (writes {DEFAULT_DATA_DIR}), or point env.data_dir "
        f"or ${DATA_ENV_VAR} at the folder that holds {GAMES_DIR}/, or generate games "
        "with `skillzero alfworld generate`."
    )
