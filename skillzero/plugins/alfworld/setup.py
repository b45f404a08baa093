"""The ALFWorld env's set-up: find the games, making the default set when there are none.

The env's registered task lister is :func:`list_tasks`: before it lists a split it
resolves the data root with :func:`resolve_data_dir`, the one place where games may be
generated, and says on stderr which game set it uses. Below this module, the loader
(:mod:`~skillzero.plugins.alfworld.games`) only reads games that exist
(:func:`~skillzero.plugins.alfworld.data.find_data_dir`), so the generator, which builds
on the loader and the env, is never imported from under them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from skillzero.contracts.env import Task
from skillzero.contracts.settings import cfg_get
from skillzero.plugins.alfworld import games
from skillzero.plugins.alfworld.data import (
    DATA_ENV_VAR,
    DATA_SOURCES,
    SkipSource,
    find_data_dir,
    user_data_var,
)

GENERATED_SOURCE = "generated default games"


def _generated_default(cfg: Mapping[str, Any] | Any | None) -> str | None:
    """The generated default game set (generated on first use, see
    :mod:`skillzero.plugins.alfworld.generate.default`) as ``env.generated`` describes
    it; not used when the user set ``$ALFWORLD_DATA``."""
    from skillzero.plugins.alfworld.generate import default

    if user_data_var():
        raise SkipSource(f"not used: ${DATA_ENV_VAR} is set")
    if not default.generation_enabled():
        raise SkipSource(f"turned off by {default.GENERATE_ENV_VAR}=0")
    spec = cfg_get(cfg, "generated", None)
    seed = cfg_get(spec, "seed", None)
    max_receptacles = cfg_get(spec, "max_receptacles", None)
    max_object_types = cfg_get(spec, "max_object_types", None)
    return os.fspath(
        default.ensure_default_games(
            seed=default.DEFAULT_SEED if seed is None else int(seed),
            counts=default.counts_for(cfg_get(spec, "train", None), cfg_get(spec, "valid", None)),
            max_receptacles=None if max_receptacles is None else int(max_receptacles),
            max_object_types=None if max_object_types is None else int(max_object_types),
        )
    )


def resolve_data_dir(cfg: Mapping[str, Any] | Any | None = None) -> Path:
    """The ALFWorld data root for ``cfg``: ``env.data_dir`` when set, else
    ``$ALFWORLD_DATA``, then ``~/.cache/alfworld``, then the generated default game set,
    generated here on first use (not when ``$ALFWORLD_DATA`` is set or
    ``$SKILLZERO_ALFWORLD_GENERATE=0``). Says once per process which set is used;
    raises :class:`~skillzero.plugins.alfworld.data.AlfworldDataError` naming every
    place tried."""
    return find_data_dir(
        cfg,
        [*DATA_SOURCES, (GENERATED_SOURCE, lambda: _generated_default(cfg))],
        hints={GENERATED_SOURCE: "; set $ALFWORLD_DATA or env.data_dir to use the published games"},
    )


def _with_data_dir(env_cfg: Mapping[str, Any] | Any | None, root: Path) -> Any:
    if env_cfg is None:
        return {"data_dir": str(root)}
    if dataclasses.is_dataclass(env_cfg) and not isinstance(env_cfg, type):
        return dataclasses.replace(env_cfg, data_dir=str(root))
    return {**dict(env_cfg), "data_dir": str(root)}


def list_tasks(env_cfg: Mapping[str, Any] | Any | None, split: str) -> list[Task]:
    """The tasks of ``split`` (see :func:`skillzero.plugins.alfworld.games.list_tasks`),
    after resolving the data root (:func:`resolve_data_dir`)."""
    return games.list_tasks(_with_data_dir(env_cfg, resolve_data_dir(env_cfg)), split)
