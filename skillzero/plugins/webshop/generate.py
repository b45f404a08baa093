"""The project's own WebShop catalogues, written in WebShop's file formats.

``skillzero webshop generate --out DIR --seed S [--products N]`` writes a catalogue of
N products (default 1,000, the size of WebShop's small set) drawn from
:mod:`~skillzero.plugins.webshop.vocabulary`, deterministic per seed:

- ``items_shuffle_1000.json``: products with asin, name, description, bullet points,
  pricing (a price or a range), option groups, category, query and category path;
- ``items_ins_v2_1000.json``: their attributes, and for most of them an instruction
  with instruction attributes (the source of synthetic goals);
- ``items_human_ins.json``: human-style instructions with attributes and options (the
  source of human goals);
- ``skillzero-webshop.json``: how the set was made.

(``--names full`` writes ``items_shuffle.json`` / ``items_ins_v2.json`` instead.) Option
values are checked against the reward's colour normalisation, so that buying the right
product with the right options scores 1.0 for every goal.

``--from-goals GOALS.json [--attributes items_ins_v2_1000.json]`` builds a catalogue
around structured goals instead (``chatshop_goals.json``: WebShop's goals with asin,
name, category, query, category path, attributes and options): every goal's target
product, one near-miss copy of it (same type, other attributes and options), and a
distractor product for each entry of the attribute file.

:func:`ensure_default_data` generates the default catalogue once into the user cache
when no data is configured (``SKILLZERO_WEBSHOP_GENERATE=0`` turns that off).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from skillzero.plugins.webshop.vocabulary import (
    BRAND_SYLLABLES,
    COLORS,
    DESCRIPTION_OPENERS,
    HUMAN_TEMPLATES,
    OPTION_GROUP_NAMES,
    OPTION_VALUES,
    PACKS,
    PRODUCT_TYPES,
    STYLES_TECH,
    TITLE_ADJECTIVES,
    ProductType,
)

GENERATOR_VERSION = 3
DEFAULT_SEED = 1
DEFAULT_PRODUCTS = 1000
GENERATE_ENV_VAR = "SKILLZERO_WEBSHOP_GENERATE"
MANIFEST = "skillzero-webshop.json"
MARKER = "COMPLETE"
FILE_NAMES: dict[str, tuple[str, str]] = {
    "small": ("items_shuffle_1000.json", "items_ins_v2_1000.json"),
    "full": ("items_shuffle.json", "items_ins_v2.json"),
}
HUMAN_FILE = "items_human_ins.json"
CATEGORY_NAMES: dict[str, str] = {
    "beauty": "Beauty & Personal Care",
    "electronics": "Electronics",
    "fashion": "Clothing, Shoes & Jewelry",
    "garden": "Home & Kitchen",
    "grocery": "Grocery & Gourmet Food",
}
_ASIN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_PRICE_CLAUSE = re.compile(r", and price lower than [\d.]+ dollars$")


@dataclass
class Catalogue:
    """A catalogue in WebShop's three file formats (see the module docstring)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    human: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def write(self, out_dir: str | os.PathLike[str], names: str = "small") -> dict[str, str]:
        """Write the three files into ``out_dir``; returns their names."""
        items_name, attrs_name = FILE_NAMES[names]
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / items_name, self.items)
        _write_json(out / attrs_name, self.attributes)
        _write_json(out / HUMAN_FILE, self.human)
        return {"items": items_name, "attributes": attrs_name, "human": HUMAN_FILE}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------
# Option values the reward can match
# ----------------------------------------------------------------------------------------


@functools.cache
def option_value_matches(group: str, value: str) -> bool:
    """Whether buying option ``value`` satisfies a goal asking for it, both as a human
    goal (a list of values) and as a synthetic goal (``{group: value}``: the reward then
    compares against the pair). Some values fail the second through colour
    normalisation (``"standard"`` contains the colour ``"tan"``)."""
    from skillzero.plugins.webshop.catalogue import normalise_options
    from skillzero.plugins.webshop.reward import get_option_reward

    shown = normalise_options({group: [{"value": value}]})[group.lower()][0]
    as_list = get_option_reward([shown], [value])[1] == 1
    as_pair = get_option_reward([shown], [(group.lower(), shown)])[1] == 1
    return as_list and as_pair


def _pool(pool: str) -> list[str]:
    group = OPTION_GROUP_NAMES.get(pool, pool)
    return [v for v in OPTION_VALUES[pool] if option_value_matches(group, v)]


# ----------------------------------------------------------------------------------------
# The generated catalogue
# ----------------------------------------------------------------------------------------


class _Names:
    """Unique asins and brand names from one random generator."""

    def __init__(self, rng: Random, taken: Iterable[str] = ()) -> None:
        self.rng = rng
        self.asins: set[str] = set(taken)

    def asin(self) -> str:
        while True:
            value = "B0" + "".join(self.rng.choice(_ASIN_CHARS) for _ in range(8))
            if value not in self.asins:
                self.asins.add(value)
                return value

    def brand(self) -> str:
        parts = self.rng.randint(2, 3)
        return "".join(self.rng.choice(BRAND_SYLLABLES) for _ in range(parts)).capitalize()


def _title_case(text: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in text.split())


def _pricing(rng: Random, low: float, high: float) -> str:
    price = round(rng.uniform(low, high), 2)
    if rng.random() < 0.15:
        return f"${price:.2f} - ${round(price * rng.uniform(1.1, 1.6), 2):.2f}"
    return f"${price:.2f}"


def _options(rng: Random, ptype: ProductType) -> dict[str, list[str]]:
    count = min(rng.choice((0, 1, 1, 2, 2, 2, 3)), len(ptype.options))
    chosen = sorted(rng.sample(range(len(ptype.options)), count))
    options: dict[str, list[str]] = {}
    for position in chosen:
        pool_name = ptype.options[position]
        pool = _pool(pool_name)
        picked = sorted(rng.sample(range(len(pool)), rng.randint(2, min(5, len(pool)))))
        options[OPTION_GROUP_NAMES.get(pool_name, pool_name)] = [pool[i] for i in picked]
    return options


def _product(rng: Random, names: _Names, ptype: ProductType) -> dict[str, Any]:
    asin, brand = names.asin(), names.brand()
    noun = rng.choice(ptype.nouns)
    attrs = rng.sample(ptype.attributes, rng.randint(2, min(5, len(ptype.attributes))))
    use = rng.choice(ptype.uses) if ptype.uses else "everyday use"
    adjective = rng.choice(TITLE_ADJECTIVES)
    features = ", ".join(_title_case(a) for a in attrs[:2])
    title = rng.choice(
        (
            f"{brand} {adjective} {_title_case(noun)} - {features}",
            f"{brand} {_title_case(noun)} for {_title_case(use)}, {features}",
            f"{adjective} {_title_case(noun)} by {brand} ({features})",
        )
    )
    opener = rng.choice(DESCRIPTION_OPENERS).format(noun=noun, use=use)
    description = (
        f"{opener} It is {', '.join(attrs[:-1])} and {attrs[-1]}. One of {brand}'s {ptype.query}."
    )
    bullets = [f"{_title_case(a)}: a {noun} that is {a}, made for {use}." for a in attrs]
    bullets.append(f"Sold by {brand}. Satisfaction guaranteed.")
    options = _options(rng, ptype)
    return {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": _pricing(rng, *ptype.price),
        "customization_options": {
            group: [{"value": v, "image": None} for v in values]
            for group, values in options.items()
        },
        "images": ["no-image-available.png"],
        "category": ptype.category,
        "query": ptype.query,
        "product_category": " › ".join(ptype.path),
        "_noun": noun,
        "_attributes": attrs,
        "_use": use,
        "_options": options,
    }


def _synthetic_instruction(rng: Random, query: str, attrs: Sequence[str]) -> str:
    joined = ", ".join(attrs)
    if rng.random() < 0.5:
        return f"Find me {query} with {joined}"
    return f"Find me {joined} {query}"


def _human_instruction(rng: Random, product: Mapping[str, Any]) -> dict[str, Any]:
    attrs = rng.sample(product["_attributes"], rng.randint(1, min(2, len(product["_attributes"]))))
    options: dict[str, list[str]] = product["_options"]
    groups = sorted(rng.sample(sorted(options), rng.randint(0, len(options))))
    values = [rng.choice(options[g]) for g in groups]
    phrases = []
    for group, value in zip(groups, values, strict=True):
        if group == "color":
            phrases.append(f"in {value} color")
        elif group == "size":
            phrases.append(f"in size {value}")
        else:
            phrases.append(f"with {group} {value}")
    option_text = (", " + " and ".join(phrases)) if phrases else ""
    text = rng.choice(HUMAN_TEMPLATES).format(
        attrs=" and ".join(attrs), noun=product["_noun"], use=product["_use"], options=option_text
    )
    return {"instruction": text, "instruction_attributes": attrs, "instruction_options": values}


def generate_catalogue(num_products: int = DEFAULT_PRODUCTS, seed: int = DEFAULT_SEED) -> Catalogue:
    """A catalogue of ``num_products`` products, deterministic per ``seed``."""
    if num_products < 1:
        raise ValueError(f"the number of products must be >= 1, got {num_products}")
    rng = Random(f"skillzero-webshop:{seed}")
    names = _Names(rng)
    types = list(PRODUCT_TYPES)
    catalogue = Catalogue()
    for position in range(num_products):
        if position % len(types) == 0:
            rng.shuffle(types)
        ptype = types[position % len(types)]
        product = _product(rng, names, ptype)
        asin = product["asin"]
        draw = rng.random()
        if draw < 0.08:  # no attributes at all (WebShop's small set has such products)
            catalogue.attributes[asin] = {"attributes": []}
        elif draw < 0.18:  # attributes but no instruction: no synthetic goal
            catalogue.attributes[asin] = {"attributes": list(product["_attributes"])}
        else:
            wanted = rng.sample(product["_attributes"], min(2, len(product["_attributes"])))
            catalogue.attributes[asin] = {
                "attributes": list(product["_attributes"]),
                "instruction": _synthetic_instruction(rng, ptype.query, wanted),
                "instruction_attributes": wanted,
            }
        if catalogue.attributes[asin]["attributes"] and rng.random() < 0.85:
            catalogue.human[asin] = [
                _human_instruction(rng, product) for _ in range(rng.randint(2, 4))
            ]
        catalogue.items.append({k: v for k, v in product.items() if not k.startswith("_")})
    return catalogue


# ----------------------------------------------------------------------------------------
# A catalogue around structured goals
# ----------------------------------------------------------------------------------------

_GROUP_FALLBACKS = ("style", "pattern name", "item package quantity", "material", "variant")
_SIZE_HINT = re.compile(
    r"(^|\b)(x{0,3}-?(small|large)|medium|\d+(\.\d+)?\s*(\"|inch|inches|in|cm|mm|ft|feet|"
    r"oz|ounce|ounces|fl oz|lb|pound|pounds|count|ct|pack|gb|tb|ml|l|w|wide|narrow)?|"
    r"queen|king|twin|full|one size|petite|plus)(\b|$)"
)


def _group_of(value: str) -> str:
    from skillzero.plugins.webshop.reward import normalize_color

    text = value.lower()
    if normalize_color(text) != text:
        return "color"
    if _SIZE_HINT.search(text):
        return "size"
    return "style"


def _strip_price(text: str) -> str:
    return _PRICE_CLAUSE.sub("", text.strip())


def catalogue_from_goals(
    goals: Sequence[Mapping[str, Any]],
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = DEFAULT_SEED,
    near_misses: bool = True,
) -> Catalogue:
    """A catalogue holding every goal's target product (see the module docstring).

    A target's price is below the lowest ``price_upper`` of its goals; its option groups
    hold every value its goals ask for (grouped as colour, size or style, with extra
    values), its attributes every goal attribute. ``attributes`` (an
    ``items_ins_v2``-format mapping) adds one distractor product per entry with
    attributes, under its own asin.
    """
    rng = Random(f"skillzero-webshop-goals:{seed}")
    by_asin: dict[str, list[Mapping[str, Any]]] = {}
    for goal in goals:
        by_asin.setdefault(str(goal["asin"]), []).append(goal)
    taken = set(by_asin) | set(attributes or {})
    names = _Names(rng, taken)
    catalogue = Catalogue()
    same_type: dict[str, list[str]] = {}
    for asin, group in by_asin.items():
        first = group[0]
        attrs = list(dict.fromkeys(a for g in group for a in g["attributes"]))
        options = _goal_option_groups(rng, group)
        bound = min(float(g["price_upper"]) for g in group)
        price = round(bound * rng.uniform(0.55, 0.95), 2) if bound < 1e5 else 250.0
        name = str(first["name"])
        item = {
            "asin": asin,
            "name": name,
            "full_description": f"{name}. A {first['query']} item, built for everyday use.",
            "small_description": [_title_case(a) for a in attrs] or [name],
            "pricing": f"${max(price, 0.01):.2f}",
            "customization_options": {
                k: [{"value": v, "image": None} for v in vs] for k, vs in options.items()
            },
            "images": ["no-image-available.png"],
            "category": first["category"],
            "query": first["query"],
            "product_category": first["product_category"],
        }
        catalogue.items.append(item)
        catalogue.attributes[asin] = {
            "attributes": attrs,
            "instruction": _strip_price(str(first["instruction_text"])),
            "instruction_attributes": list(first["attributes"]),
        }
        catalogue.human[asin] = [
            {
                "instruction": _strip_price(str(g["instruction_text"])),
                "instruction_attributes": list(g["attributes"]),
                "instruction_options": list(
                    g["goal_options"].values()
                    if isinstance(g["goal_options"], Mapping)
                    else g["goal_options"]
                ),
            }
            for g in group
        ]
        same_type.setdefault(str(first["query"]), []).extend(attrs)
    if near_misses:
        for group in by_asin.values():
            catalogue.items.append(_near_miss(rng, names, group[0], same_type))
            catalogue.attributes[catalogue.items[-1]["asin"]] = {
                "attributes": catalogue.items[-1].pop("_attributes")
            }
    for asin, entry in (attributes or {}).items():
        attrs = list(entry.get("attributes") or [])
        if not attrs or asin in by_asin:
            continue
        catalogue.items.append(_distractor(rng, names, asin, entry))
        catalogue.attributes[asin] = dict(entry)
    return catalogue


def _goal_option_groups(rng: Random, goals: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Option groups holding every value the goals of one product ask for.

    A value keeps the group it was first given (so that it is clickable in one group
    only); within one goal, values go to different groups (a purchase has one value
    per group). A value's group is named by the goal (dict options) or guessed
    (colour, size, else style). Each group also gets up to two values nobody asked for.
    """
    group_of: dict[str, str] = {}
    options: dict[str, list[str]] = {}
    for goal in goals:
        values = goal["goal_options"]
        pairs = (
            [(str(k), str(v)) for k, v in values.items()]
            if isinstance(values, Mapping)
            else [(None, str(v)) for v in values]
        )
        used = {group_of[v] for _, v in pairs if v in group_of}
        for name, value in pairs:
            if value in group_of:
                continue
            key = name or _group_of(value)
            fallbacks = iter(_GROUP_FALLBACKS)
            while key in used:
                key = next(fallbacks, f"option {len(used) + 1}")
            used.add(key)
            group_of[value] = key
            options.setdefault(key, []).append(value)
    for key, bucket in options.items():
        extra_pool = COLORS if key == "color" else PACKS if key == "size" else STYLES_TECH
        extra = [v for v in extra_pool if v not in group_of]
        for value in rng.sample(extra, min(2, len(extra))):
            group_of[value] = key
            bucket.append(value)
        rng.shuffle(bucket)
    return options


def _near_miss(
    rng: Random, names: _Names, goal: Mapping[str, Any], same_type: Mapping[str, list[str]]
) -> dict[str, Any]:
    """A product of the goal's type under a new asin, without the goal's attributes."""
    words = str(goal["name"]).split()
    keep = max(1, (2 * len(words)) // 3)
    title = " ".join([names.brand(), *words[:keep], rng.choice(TITLE_ADJECTIVES)])
    wanted = set(goal["attributes"])
    pool = [a for a in dict.fromkeys(same_type.get(str(goal["query"]), [])) if a not in wanted]
    attrs = rng.sample(pool, min(2, len(pool))) if pool else ["value pack"]
    return {
        "asin": names.asin(),
        "name": title,
        "full_description": f"{title}. A popular choice in {goal['query']}.",
        "small_description": [_title_case(a) for a in attrs],
        "pricing": f"${round(rng.uniform(5, 300), 2):.2f}",
        "customization_options": {
            "color": [{"value": v, "image": None} for v in rng.sample(COLORS, 3)]
        },
        "images": ["no-image-available.png"],
        "category": goal["category"],
        "query": goal["query"],
        "product_category": goal["product_category"],
        "_attributes": attrs,
    }


def _distractor(rng: Random, names: _Names, asin: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A product for an attribute-file entry: its type read from its instruction."""
    attrs = list(entry["attributes"])
    instruction = str(entry.get("instruction") or "")
    match = re.match(r"find me (.+?) with (.+)$", instruction, re.IGNORECASE)
    query = match.group(1) if match else (attrs[0] if attrs else "products")
    for attr in entry.get("instruction_attributes") or []:
        query = re.sub(rf"^{re.escape(attr)}(,\s*|\s+)", "", query)
    query = query.strip().lower() or "products"
    category = rng.choice(sorted(CATEGORY_NAMES))
    title = f"{names.brand()} {_title_case(query)} - {', '.join(_title_case(a) for a in attrs[:3])}"
    return {
        "asin": asin,
        "name": title,
        "full_description": f"{title}. {', '.join(attrs).capitalize()}.",
        "small_description": [_title_case(a) for a in attrs],
        "pricing": f"${round(rng.uniform(5, 150), 2):.2f}",
        "customization_options": {
            "size": [{"value": v, "image": None} for v in rng.sample(PACKS, 2)]
        },
        "images": ["no-image-available.png"],
        "category": category,
        "query": query,
        "product_category": f"{CATEGORY_NAMES[category]} › {_title_case(query)}",
    }


# ----------------------------------------------------------------------------------------
# Writing, the default set and the command
# ----------------------------------------------------------------------------------------


def generate(
    out_dir: str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    num_products: int = DEFAULT_PRODUCTS,
    names: str = "small",
    goals_file: str | None = None,
    attributes_file: str | None = None,
) -> dict[str, Any]:
    """Generate a catalogue into ``out_dir`` (see the module docstring); returns the
    manifest it writes."""
    from skillzero.plugins.webshop.catalogue import read_json
    from skillzero.plugins.webshop.goals import read_structured_goals

    started = time.perf_counter()
    if goals_file:
        goals = read_structured_goals(goals_file)
        attributes = read_json(attributes_file) if attributes_file else None
        catalogue = catalogue_from_goals(goals, attributes, seed)
        kind = {"from_goals": os.path.abspath(goals_file), "goals": len(goals)}
    else:
        catalogue = generate_catalogue(num_products, seed)
        kind = {"from_goals": None}
    files = catalogue.write(out_dir, names)
    manifest = {
        "generator": "skillzero webshop generate",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "products": len(catalogue.items),
        "with_instruction": sum(1 for v in catalogue.attributes.values() if v.get("instruction")),
        "human_instructions": sum(len(v) for v in catalogue.human.values()),
        "files": files,
        "seconds": round(time.perf_counter() - started, 2),
        **kind,
    }
    (Path(out_dir) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return manifest


def generation_enabled() -> bool:
    """Whether the default catalogue may be generated (``SKILLZERO_WEBSHOP_GENERATE``)."""
    return os.environ.get(GENERATE_ENV_VAR, "1").strip().lower() not in ("0", "false", "no")


def default_root(seed: int = DEFAULT_SEED) -> Path:
    """Where the default catalogue lives (whether or not it was generated yet)."""
    from skillzero.plugins.webshop.data import cache_base

    return cache_base() / "webshop-generated" / f"v{GENERATOR_VERSION}-seed{seed}"


def ensure_default_data(seed: int = DEFAULT_SEED) -> Path:
    """The default catalogue's folder, generated first when it is not complete.
    Concurrent first uses wait on a lock; the folder appears complete or not at all."""
    from skillzero.plugins.webshop.shop import locked

    root = default_root(seed)
    if (root / MARKER).is_file():
        return root
    with locked(
        root.parent / f"{root.name}.lock",
        lambda: f"webshop: waiting for another process to generate {root}",
    ):
        if (root / MARKER).is_file():
            return root
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        print(
            f"webshop: no WebShop data configured; generating the default catalogue "
            f"({DEFAULT_PRODUCTS} products, seed {seed}) into {root}",
            file=sys.stderr,
        )
        generate(tmp, seed=seed)
        (tmp / MARKER).write_text("ok\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    return root


def add_generate_command(sub: Any) -> None:
    """``skillzero webshop generate``."""
    parser = sub.add_parser(
        "generate",
        help="write a WebShop catalogue (products, attributes, human instructions)",
        description="Write a catalogue in WebShop's file formats: generated products "
        "(deterministic per seed) or, with --from-goals, the target products of "
        "structured goals plus distractors.",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="number of products")
    parser.add_argument(
        "--names",
        choices=sorted(FILE_NAMES),
        default="small",
        help="file names: small (items_shuffle_1000.json, ...) or full (items_shuffle.json)",
    )
    parser.add_argument(
        "--from-goals", metavar="GOALS.json", help="structured goals (chatshop_goals.json)"
    )
    parser.add_argument(
        "--attributes", metavar="ATTRS.json", help="with --from-goals: distractor attributes"
    )
    parser.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """The handler of ``skillzero webshop generate``."""
    if args.products < 1:
        print(f"error: --products must be >= 1, got {args.products}", file=sys.stderr)
        return 2
    for flag, path in (("--from-goals", args.from_goals), ("--attributes", args.attributes)):
        if path and not Path(path).is_file():
            print(f"error: {flag}: {path} is not a file", file=sys.stderr)
            return 2
    if args.attributes and not args.from_goals:
        print("error: --attributes needs --from-goals", file=sys.stderr)
        return 2
    try:
        manifest = generate(
            args.out,
            seed=args.seed,
            num_products=args.products,
            names=args.names,
            goals_file=args.from_goals,
            attributes_file=args.attributes,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {manifest['products']} products ({manifest['with_instruction']} with an "
        f"instruction, {manifest['human_instructions']} human instructions) to {args.out} "
        f"in {manifest['seconds']} s"
    )
    return 0
