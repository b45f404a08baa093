"""The default game set: generated once into the user cache when no games are found.

The env's set-up (``resolve_data_dir`` in :mod:`~skillzero.plugins.alfworld.setup`)
falls back to :func:`ensure_default_games` when neither ``env.data_dir``, nor
``$ALFWORLD_DATA``, nor ``~/.cache/alfworld`` holds games. The set is
:data:`DEFAULT_COUNTS` games (train, and ``valid_seen`` / ``valid_unseen`` with the six
task types in equal numbers) drawn with :data:`DEFAULT_SEED`, written to
``$XDG_CACHE_HOME/skillzero/alfworld-generated/v<generator version>-seed<seed>/``
(``~/.cache`` without ``$XDG_CACHE_HOME``). ``env.generated`` may ask for other counts
and smaller rooms (``max_receptacles``, as the CPU quickstart does); such a set gets its
own folder (:func:`default_root`).

Concurrent first uses (several workers, several runs) do not collide: generation holds
an exclusive lock on ``<folder>.lock``, writes into a temporary folder beside the final
one, adds the completion marker (:data:`MARKER`) and then renames the folder into place,
so a set is either complete or absent. A process that waited for the lock finds the
finished set and uses it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_SEED = 1
DEFAULT_COUNTS: dict[str, int] = {"train": 240, "valid_seen": 24, "valid_unseen": 24}
"""Games per split (the eval splits: 6 task types x 4)."""

MARKER = "COMPLETE"
GENERATE_ENV_VAR = "SKILLZERO_ALFWORLD_GENERATE"
"""Set to ``0`` to turn the generated default set off (the data-root search then fails
as before when no games are found)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillzero" / "alfworld-generated"


def default_root(
    seed: int = DEFAULT_SEED,
    counts: dict[str, int] | None = None,
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> Path:
    """Where a generated set lives (whether or not it was generated yet):
    ``v<version>-seed<seed>`` for the default counts and whole rooms, with
    ``-<train>x<valid>x<valid>`` for other counts, ``-r<K>`` for rooms cut to K
    receptacles and ``-o<K>`` for K object types (``env.generated``), so differently
    made sets never share a folder."""
    from skillzero.plugins.alfworld.generate.generator import GENERATOR_VERSION

    name = f"v{GENERATOR_VERSION}-seed{seed}"
    if counts is not None and dict(counts) != DEFAULT_COUNTS:
        name += "-" + "x".join(str(counts[split]) for split in sorted(counts))
    if max_receptacles is not None:
        name += f"-r{max_receptacles}"
    if max_object_types is not None:
        name += f"-o{max_object_types}"
    return cache_root() / name


def counts_for(train: int | None = None, valid: int | None = None) -> dict[str, int]:
    """Games per split: ``train`` train games and ``valid`` games in each of
    ``valid_seen`` and ``valid_unseen`` (``None``: :data:`DEFAULT_COUNTS`)."""
    counts = dict(DEFAULT_COUNTS)
    if train is not None:
        counts["train"] = int(train)
    if valid is not None:
        counts["valid_seen"] = counts["valid_unseen"] = int(valid)
    for split, n in counts.items():
        if n < 1:
            raise ValueError(f"env.generated: {split} needs at least 1 game, got {n}")
    return counts


def is_complete(root: Path) -> bool:
    return (root / MARKER).is_file()


def generation_enabled() -> bool:
    return os.environ.get(GENERATE_ENV_VAR, "1").strip().lower() not in ("0", "false", "no")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): rely on the atomic rename
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"alfworld: waiting for another process to finish the default games ({path})",
                file=sys.stderr,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_default_games(
    seed: int = DEFAULT_SEED,
    counts: dict[str, int] | None = None,
    root: Path | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    max_receptacles: int | None = None,
    max_object_types: int | None = None,
) -> Path:
    """The folder of the default game set, generated first if it is not complete
    (``counts`` games per split; rooms cut to ``max_receptacles`` and objects to
    ``max_object_types`` types when given)."""
    from skillzero.plugins.alfworld.generate.generator import generate

    counts = dict(counts or DEFAULT_COUNTS)
    if root is None:
        root = default_root(seed, counts, max_receptacles, max_object_types)
    root = Path(root)
    if is_complete(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f"{root.name}.lock"):
        if is_complete(root):
            return root
        for stale in root.parent.glob(f".{root.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        workers = workers or max(1, min(4, os.cpu_count() or 1))
        progress = sys.stderr.isatty() if progress is None else progress
        total = ", ".join(f"{n} {split}" for split, n in counts.items())
        rooms = f", rooms of <= {max_receptacles} receptacles" if max_receptacles else ""
        rooms += f", <= {max_object_types} object types" if max_object_types else ""
        print(
            f"alfworld: no ALFWorld games found; generating the default set ({total} games, "
            f"seed {seed}{rooms}, {workers} worker(s)) into {root}",
            file=sys.stderr,
        )
        start = time.perf_counter()
        by_count: dict[int, list[str]] = {}
        for split, n in counts.items():
            by_count.setdefault(n, []).append(split)
        records: list[Any] = []
        for n, splits in by_count.items():
            records += generate(
                tmp,
                n,
                seed,
                splits=splits,
                workers=workers,
                progress=progress,
                max_receptacles=max_receptacles,
                max_object_types=max_object_types,
            )
        seconds = time.perf_counter() - start
        marker = {"games": len(records), "seconds": round(seconds, 1), "counts": counts}
        if max_receptacles is not None:
            marker["max_receptacles"] = max_receptacles
        if max_object_types is not None:
            marker["max_object_types"] = max_object_types
        (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
        print(
            f"alfworld: generated {len(records)} games in {seconds:.0f} s into {root}",
            file=sys.stderr,
        )
    return root
