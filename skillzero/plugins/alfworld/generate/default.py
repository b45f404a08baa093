"""The default game set: generated once into the user cache when no games are found.

The env's set-up (``resolve_data_dir`` in :mod:`~skillzero.plugins.alfworld.setup`)
falls back to :func:`ensure_default_games` when neither ``env.data_dir``, nor
``$ALFWORLD_DATA``, nor ``~/.cache/alfworld`` holds games. The set is
:data:`DEFAULT_COUNTS` games (train, and ``valid_seen`` / ``valid_unseen`` with the six
task types in equal numbers) drawn with :data:`DEFAULT_SEED`, written to
``$XDG_CACHE_HOME/skillzero/alfworld-generated/v<generator version>-seed<seed>/``
(``~/.cache`` without ``$XDG_CACHE_HOME``).

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


def default_root(seed: int = DEFAULT_SEED) -> Path:
    """Where the default set lives (whether or not it was generated yet)."""
    from skillzero.plugins.alfworld.generate.generator import GENERATOR_VERSION

    return cache_root() / f"v{GENERATOR_VERSION}-seed{seed}"


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
) -> Path:
    """The folder of the default game set, generated first if it is not complete."""
    from skillzero.plugins.alfworld.generate.generator import generate

    counts = dict(counts or DEFAULT_COUNTS)
    root = Path(root) if root is not None else default_root(seed)
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
        print(
            f"alfworld: no ALFWorld games found; generating the default set ({total} games, "
            f"seed {seed}, {workers} worker(s)) into {root}",
            file=sys.stderr,
        )
        start = time.perf_counter()
        by_count: dict[int, list[str]] = {}
        for split, n in counts.items():
            by_count.setdefault(n, []).append(split)
        records: list[Any] = []
        for n, splits in by_count.items():
            records += generate(tmp, n, seed, splits=splits, workers=workers, progress=progress)
        seconds = time.perf_counter() - start
        marker = {"games": len(records), "seconds": round(seconds, 1), "counts": counts}
        (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
        print(
            f"alfworld: generated {len(records)} games in {seconds:.0f} s into {root}",
            file=sys.stderr,
        )
    return root
