"""The compiled shop: products, prices, goals and the search index in one folder.

WebShop loads its whole catalogue into every process that runs an env. Here a catalogue
is compiled once into a folder that every env process opens without loading it:

``manifest.json``
    what was compiled (source, product count, goal sets, seeds, format version).
``products.jsonl`` + ``products.offsets.npy``
    one product record per line (:mod:`~skillzero.plugins.webshop.catalogue`), with the
    byte offset of each line; a product is read (and cached) when a page shows it.
``asins.npy`` + ``asin_rows.npy``
    the asins sorted, with their rows, for lookups by binary search.
``prices.npy``
    the price a purchase of each product pays.
``goals-<set>.jsonl`` + ``goals-<set>.offsets.npy`` + ``goals-<set>.categories.json``
    each goal set (``synthetic``, ``human``, ``file``) in WebShop's goal order.
``index/``
    the BM25 index (:mod:`~skillzero.plugins.webshop.search`), memory-mapped.

All arrays are memory-mapped, so worker processes share them through the page cache.
:func:`build_shop` streams the products once (the 1.18M-product file is never held in
memory whole) and writes into a temporary folder that is renamed into place when
complete; :func:`open_shop` keeps one open :class:`Shop` per folder and process.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skillzero.plugins.webshop.catalogue import product_price, search_document
from skillzero.plugins.webshop.goals import (
    get_human_goals,
    shuffle_order,
    synthetic_goals_of,
    validate_goal,
)

SHOP_FORMAT = 1
MANIFEST = "manifest.json"
GOAL_SETS: tuple[str, ...] = ("synthetic", "human", "file")
PRODUCT_CACHE = 4096


class ShopError(RuntimeError):
    """A shop folder that cannot be opened or built; the message says why."""


# ----------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------


class _GoalWriter:
    """Appends goals of one set to a temporary JSONL file, remembering offsets."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / f".goals-{name}.unshuffled.jsonl"
        self.handle = open(self.path, "wb")  # noqa: SIM115 - closed in finish()
        self.offsets = array("q", [0])
        self.attribute_counts: dict[str, int] = defaultdict(int)

    def add(self, goal: Mapping[str, Any]) -> None:
        line = (json.dumps(goal, ensure_ascii=False) + "\n").encode("utf-8")
        self.handle.write(line)
        self.offsets.append(self.offsets[-1] + len(line))
        for attribute in goal.get("attributes", ()):
            self.attribute_counts[attribute] += 1

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def finish(self, folder: Path, name: str, shuffle: bool, weights: bool) -> dict[str, Any]:
        """Write ``goals-<name>.*`` in WebShop order (shuffled with seed 233 unless
        ``shuffle`` is false); set synthetic weights when ``weights``."""
        self.handle.close()
        order = shuffle_order(self.count) if shuffle else list(range(self.count))
        offsets = array("q", [0])
        categories = []
        with open(self.path, "rb") as source, open(folder / f"goals-{name}.jsonl", "wb") as out:
            fd = source.fileno()
            for position in order:
                start, end = self.offsets[position], self.offsets[position + 1]
                goal = json.loads(os.pread(fd, end - start, start))
                if weights:
                    attrs = goal["attributes"]
                    goal["weight"] = sum(1.0 / self.attribute_counts[a] for a in attrs) / len(attrs)
                categories.append(str(goal.get("category", "")))
                line = (json.dumps(goal, ensure_ascii=False) + "\n").encode("utf-8")
                out.write(line)
                offsets.append(offsets[-1] + len(line))
        self.path.unlink()
        np.save(folder / f"goals-{name}.offsets.npy", np.frombuffer(offsets, dtype=np.int64))
        (folder / f"goals-{name}.categories.json").write_text(
            json.dumps(categories), encoding="utf-8"
        )
        return {"goals": self.count, "shuffled": shuffle}


def build_shop(
    out_dir: str | os.PathLike[str],
    products: Iterable[Mapping[str, Any]],
    *,
    goal_sets: Sequence[str] = ("synthetic", "human"),
    structured_goals: Sequence[Mapping[str, Any]] | None = None,
    seed: int = 0,
    source: str = "",
    fingerprint: str = "",
    progress: bool = False,
    total: int | None = None,
    stem: bool = True,
) -> Path:
    """Compile ``products`` (records of :func:`~skillzero.plugins.webshop.catalogue.
    iter_products`, in catalogue order) into the shop folder ``out_dir``.

    ``goal_sets``: which of ``synthetic`` / ``human`` to derive from the catalogue;
    ``structured_goals``: a ready goal list (WebShop order) stored as the ``file`` set.
    ``seed`` seeds the price draws of ranged prices and of the goals' price bounds.
    Returns ``out_dir``. An existing folder is replaced once the new one is complete.
    """
    from tqdm import tqdm

    from skillzero.plugins.webshop.search import IndexBuilder

    unknown = sorted(set(goal_sets) - {"synthetic", "human"})
    if unknown:
        raise ShopError(f"unknown goal sets {unknown}; choose synthetic and/or human")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    started = time.perf_counter()
    try:
        builder = IndexBuilder(tmp / "index", stem=stem)
        offsets = array("q", [0])
        asins: list[str] = []
        prices = array("d")
        writers = {name: _GoalWriter(tmp, name) for name in goal_sets}
        rng_human = random.Random(f"{seed}:human")
        rng_synthetic = random.Random(f"{seed}:synthetic")
        bar = tqdm(total=total, unit=" products", desc="webshop: compiling", disable=not progress)
        with open(tmp / "products.jsonl", "wb") as handle:
            for product in products:
                record = _stored_record(product)
                line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
                handle.write(line)
                offsets.append(offsets[-1] + len(line))
                asins.append(record["asin"])
                price = product_price(record["asin"], record["pricing"], seed)
                prices.append(price)
                builder.add(search_document(record))
                if "human" in writers and product.get("instructions"):
                    for goal in get_human_goals([product], {record["asin"]: price}, rng_human):
                        writers["human"].add(goal)
                if "synthetic" in writers:
                    for goal in synthetic_goals_of(product, price, rng_synthetic):
                        writers["synthetic"].add(goal)
                bar.update(1)
        bar.close()
        if not asins:
            raise ShopError(f"no products to compile (source: {source or 'unknown'})")
        if progress:
            print("webshop: writing the search index ...", file=sys.stderr)
        index_params = builder.finish()
        np.save(tmp / "products.offsets.npy", np.frombuffer(offsets, dtype=np.int64))
        np.save(tmp / "prices.npy", np.frombuffer(prices, dtype=np.float64))
        names = np.array(asins, dtype="S")
        order = np.argsort(names, kind="stable")
        np.save(tmp / "asins.npy", names[order])
        np.save(tmp / "asin_rows.npy", order.astype(np.int64))
        sets: dict[str, Any] = {}
        for name, writer in writers.items():
            sets[name] = writer.finish(tmp, name, shuffle=True, weights=name == "synthetic")
        if structured_goals is not None:
            writer = _GoalWriter(tmp, "file")
            for position, goal in enumerate(structured_goals):
                writer.add(validate_goal(goal, f"goal {position}"))
            sets["file"] = writer.finish(tmp, "file", shuffle=False, weights=False)
        manifest = {
            "format": SHOP_FORMAT,
            "source": source,
            "fingerprint": fingerprint,
            "products": len(asins),
            "goal_sets": sets,
            "seed": seed,
            "index": index_params,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


_STORED_KEYS = (
    "asin",
    "name",
    "Title",
    "Description",
    "BulletPoints",
    "pricing",
    "Price",
    "Rating",
    "options",
    "Attributes",
    "category",
    "query",
    "product_category",
)


def _stored_record(product: Mapping[str, Any]) -> dict[str, Any]:
    """The fields pages and the reward read (goal-making fields stay out)."""
    return {key: product[key] for key in _STORED_KEYS if key in product}


def is_shop(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a compiled shop folder of this format."""
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == SHOP_FORMAT


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------


class Shop:
    """A compiled shop, opened read-only (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not is_shop(self.path):
            raise ShopError(f"{self.path} is not a compiled WebShop shop (no {MANIFEST})")
        self.manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text("utf-8"))
        self._offsets = np.load(self.path / "products.offsets.npy", mmap_mode="r")
        self._asins = np.load(self.path / "asins.npy", mmap_mode="r")
        self._asin_rows = np.load(self.path / "asin_rows.npy", mmap_mode="r")
        self._prices = np.load(self.path / "prices.npy", mmap_mode="r")
        self._products_fd = os.open(self.path / "products.jsonl", os.O_RDONLY)
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._index: Any = None
        self._goal_fds: dict[str, tuple[int, Any]] = {}
        self._categories: dict[str, list[str]] = {}

    # -- products ------------------------------------------------------------------------
    @property
    def num_products(self) -> int:
        return len(self._offsets) - 1

    def product(self, row: int) -> dict[str, Any]:
        """The product record of catalogue row ``row`` (cached; do not modify it)."""
        with self._lock:
            cached = self._cache.get(row)
            if cached is not None:
                self._cache.move_to_end(row)
                return cached
        if not 0 <= row < self.num_products:
            raise IndexError(f"product row {row} out of range 0..{self.num_products - 1}")
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        record = json.loads(os.pread(self._products_fd, end - start, start))
        with self._lock:
            self._cache[row] = record
            if len(self._cache) > PRODUCT_CACHE:
                self._cache.popitem(last=False)
        return record

    def row_of(self, asin: str) -> int | None:
        """The row of ``asin`` (case-insensitive), or ``None`` when it is not sold here."""
        key = asin.upper().encode("utf-8", "replace")
        position = int(np.searchsorted(self._asins, key))
        if position < len(self._asins) and self._asins[position] == key:
            return int(self._asin_rows[position])
        return None

    def product_by_asin(self, asin: str) -> dict[str, Any] | None:
        row = self.row_of(asin)
        return None if row is None else self.product(row)

    def price(self, row: int) -> float:
        """The price a purchase of row ``row`` pays."""
        return float(self._prices[row])

    # -- search --------------------------------------------------------------------------
    @property
    def index(self) -> Any:
        if self._index is None:
            from skillzero.plugins.webshop.search import SearchIndex

            self._index = SearchIndex(self.path / "index")
        return self._index

    def search(self, query: str, k: int = 50) -> list[int]:
        """Rows of the top ``k`` products for ``query`` (BM25), best first."""
        return self.index.search(query, k)

    # -- goals ---------------------------------------------------------------------------
    def goal_sets(self) -> dict[str, int]:
        """Goal set name -> number of goals."""
        return {k: int(v["goals"]) for k, v in self.manifest.get("goal_sets", {}).items()}

    def _goal_file(self, goal_set: str) -> tuple[int, Any]:
        if goal_set not in self._goal_fds:
            if goal_set not in self.goal_sets():
                known = ", ".join(self.goal_sets()) or "none"
                raise ShopError(f"this shop has no {goal_set!r} goals (goal sets: {known})")
            fd = os.open(self.path / f"goals-{goal_set}.jsonl", os.O_RDONLY)
            offsets = np.load(self.path / f"goals-{goal_set}.offsets.npy", mmap_mode="r")
            self._goal_fds[goal_set] = (fd, offsets)
        return self._goal_fds[goal_set]

    def goal(self, goal_set: str, index: int) -> dict[str, Any]:
        """Goal ``index`` of ``goal_set`` (WebShop's goal order)."""
        fd, offsets = self._goal_file(goal_set)
        if not 0 <= index < len(offsets) - 1:
            raise IndexError(f"goal {index} out of range for the {goal_set!r} set")
        start, end = int(offsets[index]), int(offsets[index + 1])
        return json.loads(os.pread(fd, end - start, start))

    def goals(self, goal_set: str) -> Iterator[dict[str, Any]]:
        """Every goal of ``goal_set`` in order."""
        for index in range(self.goal_sets().get(goal_set, 0)):
            yield self.goal(goal_set, index)

    def goal_categories(self, goal_set: str) -> list[str]:
        """The product category of every goal of ``goal_set``, in order."""
        if goal_set not in self._categories:
            self._goal_file(goal_set)
            path = self.path / f"goals-{goal_set}.categories.json"
            self._categories[goal_set] = json.loads(path.read_text(encoding="utf-8"))
        return self._categories[goal_set]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._products_fd)
        for fd, _ in self._goal_fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._goal_fds.clear()


_OPEN: dict[str, Shop] = {}
_OPEN_LOCK = threading.Lock()


def open_shop(path: str | os.PathLike[str]) -> Shop:
    """The process's open :class:`Shop` for ``path`` (opened on first use)."""
    key = os.fspath(Path(path).resolve())
    with _OPEN_LOCK:
        shop = _OPEN.get(key)
        if shop is None:
            shop = _OPEN[key] = Shop(key)
        return shop


@contextlib.contextmanager
def locked(path: Path, message: Callable[[], str] | None = None) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (a lock file) for the ``with`` block."""
    try:
        import fcntl
    except ImportError:  # no advisory locks: rely on the atomic rename
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if message is not None:
                print(message(), file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
