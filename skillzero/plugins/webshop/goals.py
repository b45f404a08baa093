"""WebShop goals: what to buy, built from the catalogue as WebShop builds them.

Human goals (``get_human_goals``)
    one per human instruction of ``items_human_ins.json`` that names at least one
    attribute: the product's ``asin``, ``category``, ``query``, ``name``,
    ``product_category``, the instruction (trailing dots stripped) plus ", and price
    lower than X dollars", its ``attributes`` and ``goal_options`` (a list of option
    values), ``price_upper`` and ``weight`` 1.
Synthetic goals (``get_synthetic_goals``)
    for every product with an instruction in ``items_ins_v2*.json``: one goal per
    combination of its option values (option groups in name order), the instruction
    plus " with name: value, and name: value" plus the price text; ``goal_options`` is
    a dict, ``name`` the product title, ``weight`` the mean of 1/(goals sharing each
    attribute).
The price bound
    two of the (up to) four multiples of 10 above the product's price are drawn and
    the larger is ``price_upper``; with fewer than two (a price of 980 or more) the bound
    is 1,000,000 and the text has no price clause.

Both lists are then shuffled with ``random.seed(233)`` as WebShop does, so goal ``i``
is the goal of WebShop's session ``fixed_i``. Splits are index ranges of that list
(:data:`SPLIT_SCHEMES`): WebShop's test 0-499, dev 500-1,499, train 1,500+;
verl-agent's validation 0-499 and training 500+; and the fixed-100 eval set 0-99.
The price draws use a seeded generator (WebShop's global ``random`` state is not
seeded at that point, so its bounds differ from run to run).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PRICE_RANGE: tuple[float, ...] = tuple(10.0 * i for i in range(1, 100))
NO_PRICE_BOUND = 1_000_000
SHUFFLE_SEED = 233
"""WebShop shuffles its goal list with ``random.seed(233)``."""

GOAL_KEYS: tuple[str, ...] = (
    "asin",
    "category",
    "query",
    "name",
    "product_category",
    "instruction_text",
    "attributes",
    "price_upper",
    "goal_options",
)
"""The keys a structured goal must have (``weight`` is optional)."""

SPLIT_SCHEMES: dict[str, dict[str, tuple[int, int | None]]] = {
    "webshop": {"test": (0, 500), "dev": (500, 1500), "train": (1500, None)},
    "verl_agent": {"test": (0, 500), "train": (500, None)},
}
"""Goal-index ranges ``[start, end)`` per split name (``None``: to the end). Every
scheme also has ``fixed100`` (0-99) and ``all``."""
COMMON_SPLITS: dict[str, tuple[int, int | None]] = {"fixed100": (0, 100), "all": (0, None)}


class GoalError(ValueError):
    """A goal file or split that cannot be used; the message says why."""


def price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    """``(price_upper, price_text)`` for a product of ``price`` (see the module doc)."""
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) >= 2:
        _, upper = sorted(rng.sample(above, 2))
        return upper, f", and price lower than {upper:.2f} dollars"
    return NO_PRICE_BOUND, ""


def get_human_goals(
    products: Iterable[Mapping[str, Any]],
    product_prices: Mapping[str, float],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """One goal per human instruction with attributes (unshuffled; see the module doc)."""
    goals = []
    for item in products:
        for instruction in item.get("instructions") or ():
            attributes = list(instruction.get("instruction_attributes") or [])
            if not attributes:
                continue
            upper, price_text = price_bound(product_prices[item["asin"]], rng)
            goals.append(
                {
                    "asin": item["asin"],
                    "category": item["category"],
                    "query": item["query"],
                    "name": item["name"],
                    "product_category": item["product_category"],
                    "instruction_text": str(instruction["instruction"]).strip(".") + price_text,
                    "attributes": attributes,
                    "price_upper": upper,
                    "goal_options": list(instruction.get("instruction_options") or []),
                    "weight": 1,
                }
            )
    return goals


def synthetic_goals_of(
    product: Mapping[str, Any], price: float, rng: random.Random
) -> list[dict[str, Any]]:
    """The synthetic goals of one product (none without an instruction), without
    ``weight`` (which depends on all goals; see :func:`add_synthetic_weights`)."""
    instruction = product.get("instruction_text")
    attributes = list(product.get("instruction_attributes") or [])
    if not instruction or not attributes:
        return []
    upper, price_text = price_bound(price, rng)
    options: Mapping[str, Sequence[str]] = product.get("options") or {}
    names = sorted(options)
    goals = []
    for combination in itertools.product(*(options[name] for name in names)):
        goal_options = dict(zip(names, combination, strict=True))
        option_text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
        option_text = f" with {option_text}" if option_text else ""
        goals.append(
            {
                "asin": product["asin"],
                "category": product["category"],
                "query": product["query"],
                "name": product["Title"],
                "product_category": product["product_category"],
                "instruction_text": f"{instruction}{option_text}{price_text}",
                "attributes": attributes,
                "price_upper": upper,
                "goal_options": goal_options,
            }
        )
    return goals


def add_synthetic_weights(goals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each synthetic goal's ``weight``: the mean over its attributes of 1/(number
    of goals with that attribute)."""
    counts: dict[str, int] = defaultdict(int)
    for goal in goals:
        for attribute in goal["attributes"]:
            counts[attribute] += 1
    for goal in goals:
        goal["weight"] = sum(1.0 / counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    return goals


def get_synthetic_goals(
    products: Iterable[Mapping[str, Any]],
    product_prices: Mapping[str, float],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Every synthetic goal of the catalogue (unshuffled; see the module doc)."""
    goals = []
    for product in products:
        goals += synthetic_goals_of(product, product_prices[product["asin"]], rng)
    return add_synthetic_weights(goals)


def shuffle_order(count: int, seed: int = SHUFFLE_SEED) -> list[int]:
    """The permutation WebShop's ``random.seed(seed); random.shuffle(goals)`` applies to
    a list of ``count`` goals: position ``i`` of the shuffled list holds goal
    ``order[i]`` of the unshuffled one."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


def shuffle_goals(goals: Sequence[Any], seed: int = SHUFFLE_SEED) -> list[Any]:
    """``goals`` in WebShop's shuffled order."""
    return [goals[i] for i in shuffle_order(len(goals), seed)]


def split_range(split: str, count: int, scheme: str = "webshop") -> range:
    """The goal indices of ``split`` among ``count`` goals (see :data:`SPLIT_SCHEMES`).

    A split may also be written ``START:END`` (goal indices, END exclusive). Raises
    :class:`GoalError` for an unknown split or scheme.
    """
    if scheme not in SPLIT_SCHEMES:
        raise GoalError(f"unknown goal split scheme {scheme!r}; known: {', '.join(SPLIT_SCHEMES)}")
    ranges = {**SPLIT_SCHEMES[scheme], **COMMON_SPLITS}
    if split in ranges:
        start, end = ranges[split]
    elif ":" in split:
        head, _, tail = split.partition(":")
        try:
            start = int(head) if head.strip() else 0
            end = int(tail) if tail.strip() else None
        except ValueError:
            raise GoalError(f"bad goal range {split!r}; write START:END") from None
    else:
        raise GoalError(f"unknown WebShop split {split!r}; known: {', '.join(ranges)} or START:END")
    stop = count if end is None else min(end, count)
    return range(min(max(start, 0), count), max(stop, 0))


def validate_goal(goal: Any, where: str) -> dict[str, Any]:
    """A structured goal with every key of :data:`GOAL_KEYS`; :class:`GoalError` naming
    ``where`` otherwise."""
    if not isinstance(goal, Mapping):
        raise GoalError(f"{where}: a goal must be an object, got {type(goal).__name__}")
    missing = [k for k in GOAL_KEYS if k not in goal]
    if missing:
        raise GoalError(f"{where}: goal without {', '.join(missing)}")
    if not isinstance(goal["attributes"], list) or not isinstance(
        goal["goal_options"], list | dict
    ):
        raise GoalError(f"{where}: attributes must be a list and goal_options a list or dict")
    out = {k: goal[k] for k in GOAL_KEYS}
    out["weight"] = goal.get("weight", 1)
    try:
        out["price_upper"] = float(goal["price_upper"])
    except (TypeError, ValueError):
        raise GoalError(f"{where}: price_upper must be a number") from None
    return out


def read_structured_goals(path: str) -> list[dict[str, Any]]:
    """Goals from a JSON list of structured goals in WebShop order (the format of
    ``chatshop_goals.json``: ``asin``, ``category``, ``query``, ``name``,
    ``product_category``, ``instruction_text``, ``attributes``, ``goal_options``,
    ``price_upper``, ``weight``); other keys are dropped."""
    from skillzero.plugins.webshop.catalogue import read_json

    data = read_json(path)
    if not isinstance(data, list):
        raise GoalError(f"{path}: expected a JSON list of goals")
    return [validate_goal(goal, f"{path}[{i}]") for i, goal in enumerate(data)]


def read_fixed100(path: str) -> list[dict[str, Any]]:
    """The fixed-100 eval set as ExpeL and others ship it (``[{"task", "session_idx":
    "fixed_<i>", "key": {"asin", "query", "name", "goal_options"}}, ...]``): one dict
    per task with ``index`` (the goal index), ``instruction`` and the ``key`` fields."""
    from skillzero.plugins.webshop.catalogue import read_json

    data = read_json(path)
    if not isinstance(data, list):
        raise GoalError(f"{path}: expected a JSON list")
    out = []
    for position, entry in enumerate(data):
        session = str(entry.get("session_idx", "")) if isinstance(entry, Mapping) else ""
        if not session.startswith("fixed_") or not session[6:].isdigit():
            raise GoalError(f"{path}[{position}]: session_idx must be fixed_<n>")
        key = entry.get("key") or {}
        out.append(
            {
                "index": int(session[6:]),
                "instruction": str(entry.get("task", "")).split("\n")[0].strip(),
                **{k: key.get(k) for k in ("asin", "query", "name", "goal_options")},
            }
        )
    return out
