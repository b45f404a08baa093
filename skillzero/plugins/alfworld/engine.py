"""The ALFWorld engine: TextWorld's PDDL backend with ALFWorld's wrappers.

:func:`make_engine` builds one TextWorld environment the way ALFWorld's ``AlfredTWEnv``
(and verl-agent, which calls it) does: ``textworld.gym`` builds each env of a batch as
``GenericEnvironment(EnvInfos(won=True, admissible_commands=True, extras=["gamefile"]))``
wrapped by ``AlfredDemangler(shuffle=False)``, ``AlfredInfos`` and TextWorld's
``Filter``. We leave out only the ``Limit`` wrapper (``max_episode_steps``): the episode
step limit is :class:`~skillzero.contracts.env.TextEnv`'s ``max_steps``, reported as
truncation, where ``Limit`` would report it as ``done``.

Engine caches
-------------
Much of the engine's time goes into work that depends only on the game text: parsing
each game's grammar (all games share the PDDL domain and all grammar rules but the one
stating the goal), translating the PDDL problem for fast-downward (twice per game, plain
and optimised, and all over again on ``reset`` after ``load``), and re-parsing the same
grammar templates and logic queries after every command to derive the admissible
commands. :func:`install_engine_caches` memoises four pure functions in the calling
process:

- ``textworld.envs.pddl.logic._parse_and_convert`` (grammar document -> actions and
  grammar rules; GameLogic copies both into its own containers),
- ``textworld.envs.pddl.textgen._parse_and_convert`` (a grammar string -> symbols; a
  deep copy is returned, since derivation sets each symbol's context),
- ``textworld.logic.Rule.parse_conjunctive_query`` (a query string -> an immutable rule),
- ``fast_downward.pddl2sas`` (domain + problem -> translated task; LRU-bounded, the task
  object is only read by ``PddlState``), run with the cyclic garbage collector paused.

Each game is translated twice, plain and optimised (the second feeds fast-downward's
planner), and both translations start with the same relaxed exploration of the reachable
atoms and actions (``instantiate.explore``, about 60% of a translation), which reads no
translation option. The optimised translation re-uses the plain one's exploration, which
the rest of the translator only reads: the two SAS texts equal the originals
(``tests/test_alfworld.py``), and a game not seen recently loads in about a fifth less time.

Observations, admissible commands and ``won`` are unchanged: ``tests/test_alfworld.py``
compares them, step by step, with the bare engine built as ALFWorld builds it. Each env
still owns its game state and its own copy of fast-downward's library. The caches are
per process: env-pool workers install them when they build their envs
(``engine_cache: true``); :func:`uninstall_engine_caches` restores the originals.

What the caches leave: the two translations (with one exploration) of a game not seen
recently by the worker (most of a first reset), and the deep copies TextWorld's grammar
makes of its context for every admissible command (most of a step).
"""

from __future__ import annotations

import copy
import functools
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

REQUESTED_INFOS: dict[str, Any] = {
    "won": True,
    "admissible_commands": True,
    "extras": ["gamefile"],
}
"""What ALFWorld requests from TextWorld (``AlfredTWEnv.init_env``)."""

NOTHING_HAPPENS = "Nothing happens."
"""The engine's feedback to a command that is not one of its valid commands."""

TRANSLATION_CACHE_SIZE = 8
"""Translated PDDL problems kept per process: two per game (plain and optimised), 5-20 MB
each. A game is translated on load and again on reset, and the members of a group reset
one after another on the same worker, so a few recent games are all that is re-used."""


def make_engine() -> Any:
    """A TextWorld environment for ALFWorld games, with no game loaded yet.

    ``load(game_file)`` then ``reset() -> (observation, infos)`` and
    ``step(command) -> (observation, score, done, infos)``, ``infos`` holding ``won``,
    ``admissible_commands`` and ``extra.gamefile``.
    """
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    from textworld.envs.wrappers import Filter, GenericEnvironment

    request_infos = textworld.EnvInfos(**copy.deepcopy(REQUESTED_INFOS))
    env: Any = GenericEnvironment(request_infos)
    for wrapper in (AlfredDemangler(shuffle=False), AlfredInfos, Filter):
        env = wrapper(env)
    return env


# ----------------------------------------------------------------------------------------
# Process-local memoisation of the engine's pure computations
# ----------------------------------------------------------------------------------------

_LOCK = threading.Lock()
_ORIGINALS: dict[str, Any] = {}


class _LRU:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_make(self, key: Any, make: Callable[[], Any], take: bool = False) -> Any:
        """The value kept for ``key`` (a hit; ``take``: removed from the map), or a new
        one from ``make()``, kept (a miss)."""
        with self.lock:
            if key in self.data:
                self.hits += 1
                if take:
                    return self.data.pop(key)
                self.data.move_to_end(key)
                return self.data[key]
        value = make()
        with self.lock:
            self.misses += 1
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
        return value


_CACHES: dict[str, _LRU] = {}


def _kwargs_key(kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(kwargs.items()))


def _without_gc(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with Python's cyclic garbage collector paused.

    A PDDL translation allocates hundreds of thousands of short-lived objects, and the
    collector's passes over them cost about 30% of its time; what it leaves behind is
    freed by reference counting, or by the next collection once the collector resumes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return function(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


def install_engine_caches(translation_cache_size: int = TRANSLATION_CACHE_SIZE) -> None:
    """Memoise the engine's pure computations in this process (idempotent).

    See the module docstring for what is cached and why results are unchanged.
    """
    import fast_downward
    import textworld.envs.pddl.logic as pddl_logic
    import textworld.envs.pddl.textgen as textgen
    from fast_downward.translate import instantiate
    from textworld.logic import Rule

    with _LOCK:
        if _ORIGINALS:
            return
        _ORIGINALS["logic_parse"] = pddl_logic._parse_and_convert
        _ORIGINALS["textgen_parse"] = textgen._parse_and_convert
        _ORIGINALS["query"] = Rule.__dict__["parse_conjunctive_query"]
        _ORIGINALS["pddl2sas"] = fast_downward.pddl2sas
        _ORIGINALS["explore"] = instantiate.explore

        logic_cache = _CACHES["logic"] = _LRU(4)
        textgen_cache = _CACHES["textgen"] = _LRU(4096)
        query_cache = _CACHES["query"] = _LRU(4096)
        sas_cache = _CACHES["pddl2sas"] = _LRU(translation_cache_size)
        # The plain and the optimised translation of a game follow one another: the
        # exploration is kept from the first to the second only.
        explore_cache = _CACHES["explore"] = _LRU(1)
        logic_parse = _ORIGINALS["logic_parse"]
        textgen_parse = _ORIGINALS["textgen_parse"]
        query_parse = _ORIGINALS["query"].__func__
        pddl2sas = _ORIGINALS["pddl2sas"]
        explore = _ORIGINALS["explore"]
        translating = threading.local()

        @functools.wraps(logic_parse)
        def cached_logic_parse(*args: Any, **kwargs: Any) -> Any:
            actions, grammar = logic_cache.get_or_make(
                (args, _kwargs_key(kwargs)), lambda: logic_parse(*args, **kwargs)
            )
            # GameLogic copies both into its own containers and never mutates the items.
            return dict(actions), grammar

        @functools.wraps(textgen_parse)
        def cached_textgen_parse(*args: Any, **kwargs: Any) -> Any:
            symbols = textgen_cache.get_or_make(
                (args, _kwargs_key(kwargs)), lambda: textgen_parse(*args, **kwargs)
            )
            return copy.deepcopy(symbols)  # derivation sets each symbol's context

        def cached_query(cls: type, expr: str) -> Any:
            return query_cache.get_or_make((cls, expr), lambda: query_parse(cls, expr))

        @functools.wraps(explore)
        def shared_explore(task: Any) -> Any:
            key = getattr(translating, "key", None)
            if key is None:  # a translation not started through pddl2sas
                return explore(task)
            return explore_cache.get_or_make(key, lambda: explore(task), take=True)

        def translate(domain: str, problem: str, *args: Any, **kwargs: Any) -> Any:
            translating.key = (domain, problem)
            try:
                return _without_gc(pddl2sas, domain, problem, *args, **kwargs)
            finally:
                translating.key = None

        @functools.wraps(pddl2sas)
        def cached_pddl2sas(domain: str, problem: str, *args: Any, **kwargs: Any) -> Any:
            key = (domain, problem, args, _kwargs_key(kwargs))
            return sas_cache.get_or_make(key, lambda: translate(domain, problem, *args, **kwargs))

        pddl_logic._parse_and_convert = cached_logic_parse
        textgen._parse_and_convert = cached_textgen_parse
        Rule.parse_conjunctive_query = classmethod(cached_query)  # type: ignore[method-assign]
        fast_downward.pddl2sas = cached_pddl2sas
        instantiate.explore = shared_explore


def uninstall_engine_caches() -> None:
    """Restore the engine's original functions and drop the caches (idempotent)."""
    with _LOCK:
        if not _ORIGINALS:
            return
        import fast_downward
        import textworld.envs.pddl.logic as pddl_logic
        import textworld.envs.pddl.textgen as textgen
        from fast_downward.translate import instantiate
        from textworld.logic import Rule

        pddl_logic._parse_and_convert = _ORIGINALS.pop("logic_parse")
        textgen._parse_and_convert = _ORIGINALS.pop("textgen_parse")
        Rule.parse_conjunctive_query = _ORIGINALS.pop("query")  # type: ignore[method-assign]
        fast_downward.pddl2sas = _ORIGINALS.pop("pddl2sas")
        instantiate.explore = _ORIGINALS.pop("explore")
        _CACHES.clear()


def engine_caches_installed() -> bool:
    """Whether :func:`install_engine_caches` is in effect in this process."""
    return bool(_ORIGINALS)


def engine_cache_stats() -> dict[str, dict[str, int]]:
    """Hits, misses and sizes of the engine caches in this process."""
    return {
        name: {"hits": c.hits, "misses": c.misses, "size": len(c.data)}
        for name, c in _CACHES.items()
    }
