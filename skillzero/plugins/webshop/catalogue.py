"""Readers for the WebShop product files, in the formats a WebShop user already has.

``items_shuffle_1000.json`` / ``items_shuffle.json``
    a JSON list of scraped products: ``asin``, ``name``, ``full_description``,
    ``small_description`` (bullet points), ``pricing`` (``"$x.xx"`` or a range),
    ``customization_options`` ``{name: [{"value", "image"}, ...]}``, ``images``,
    ``category``, ``query``, ``product_category`` (``"a › b › c"``).
``items_ins_v2_1000.json`` / ``items_ins_v2.json``
    ``{asin: {"attributes", "instruction", "instruction_attributes"}}``.
``items_human_ins.json``
    ``{asin: [{"instruction", "instruction_attributes", "instruction_options"}, ...]}``.

:func:`iter_products` turns them into the records the simulator and the reward read,
deriving the same fields as WebShop's ``load_products``: ``Title`` (the name),
``Description``, ``BulletPoints`` (a list), ``pricing`` (floats, at most two),
``Price`` (the shown price tag), ``options`` (``{name lower: [value lower with "/" as
" | "]}``), ``Attributes`` (``["DUMMY_ATTR"]`` when the attribute file has none),
``instructions`` / ``instruction_text`` / ``instruction_attributes`` (for the goals),
``Rating`` (``"N.A."``: reviews are not shipped) and the lower-cased ``query``. Products
whose asin is ``nan`` or longer than 10 characters, and repeated asins, are skipped, as
in the original.

The full product file (1.18M products, several GB of JSON) is read as a stream
(:func:`iter_json_array`), one product at a time, so it is never held in memory whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

SMALL_ITEMS = "items_shuffle_1000.json"
FULL_ITEMS = "items_shuffle.json"
SMALL_ATTRIBUTES = "items_ins_v2_1000.json"
FULL_ATTRIBUTES = "items_ins_v2.json"
HUMAN_INSTRUCTIONS = "items_human_ins.json"
DEFAULT_PRICE = 100.0
"""The price of a product without pricing (as in WebShop)."""
MISSING_ATTRIBUTE = "DUMMY_ATTR"


class CatalogueError(ValueError):
    """A product file that is missing or malformed; the message names it."""


@dataclass(frozen=True)
class CatalogueFiles:
    """The files of one catalogue (``human`` may be absent)."""

    items: Path
    attributes: Path
    human: Path | None = None

    def describe(self) -> str:
        names = [self.items.name, self.attributes.name]
        if self.human is not None:
            names.append(self.human.name)
        return f"{', '.join(names)} in {self.items.parent}"

    def fingerprint(self) -> str:
        """A digest of the files' paths, sizes and modification times."""
        digest = hashlib.sha256()
        for path in (self.items, self.attributes, self.human):
            if path is None:
                digest.update(b"-")
                continue
            stat = path.stat()
            digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]


def find_catalogue_files(data_dir: str | os.PathLike[str], full: bool = False) -> CatalogueFiles:
    """The product, attribute and human-instruction files in ``data_dir``.

    ``full`` picks ``items_shuffle.json`` + ``items_ins_v2.json`` (the 1.18M-product
    set); otherwise ``items_shuffle_1000.json`` + ``items_ins_v2_1000.json``. Raises
    :class:`CatalogueError` naming what is missing.
    """
    root = Path(data_dir).expanduser()
    items_name, attrs_name = (
        (FULL_ITEMS, FULL_ATTRIBUTES) if full else (SMALL_ITEMS, SMALL_ATTRIBUTES)
    )
    items, attributes = root / items_name, root / attrs_name
    missing = [p.name for p in (items, attributes) if not p.is_file()]
    if missing:
        other = "small" if full else "full"
        raise CatalogueError(
            f"WebShop catalogue not found in {root}: missing {', '.join(missing)} "
            f"(env.catalogue={'full' if full else 'small'}; set env.catalogue={other} for "
            "the other set, or generate a shop with `skillzero webshop generate`)"
        )
    human = root / HUMAN_INSTRUCTIONS
    return CatalogueFiles(items, attributes, human if human.is_file() else None)


def iter_json_array(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[Any]:
    """The elements of a file holding one JSON list, decoded one at a time (memory stays
    at about one element plus ``chunk_size``). Raises :class:`CatalogueError` on a file
    that is not a JSON list."""
    return _JsonArrayReader(path, chunk_size).elements()


class _JsonArrayReader:
    """The incremental reader behind :func:`iter_json_array`."""

    _SPACE = " \t\r\n"

    def __init__(self, path: str | os.PathLike[str], chunk_size: int) -> None:
        self.path = path
        self.chunk_size = max(1, int(chunk_size))
        self.buffer = ""
        self.position = 0
        self.eof = False
        self.handle: Any = None

    def _more(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at the end."""
        chunk = self.handle.read(self.chunk_size)
        if not chunk:
            self.eof = True
            return False
        self.buffer = self.buffer[self.position :] + chunk
        self.position = 0
        return True

    def _skip_space(self) -> None:
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in self._SPACE:
                self.position += 1
            if self.position < len(self.buffer) or not self._more():
                return

    def _peek(self) -> str:
        self._skip_space()
        return self.buffer[self.position] if self.position < len(self.buffer) else ""

    def _malformed(self, why: str) -> CatalogueError:
        return CatalogueError(f"{self.path}: malformed JSON ({why})")

    def elements(self) -> Iterator[Any]:
        decoder = json.JSONDecoder()
        with open(self.path, encoding="utf-8") as self.handle:
            if self._peek() != "[":
                raise CatalogueError(f"{self.path}: expected a JSON list")
            self.position += 1
            if self._peek() == "]":
                return
            while True:
                self._skip_space()
                while True:
                    try:
                        value, end = decoder.raw_decode(self.buffer, self.position)
                    except json.JSONDecodeError as exc:
                        if not self._more():
                            raise self._malformed(str(exc)) from None
                        continue
                    # a number near the end of the buffer may go on in the next chunk
                    if len(self.buffer) - end < 64 and not self.eof and self._more():
                        continue
                    break
                yield value
                self.position = end
                following = self._peek()
                if following == ",":
                    self.position += 1
                elif following == "]":
                    return
                else:
                    raise self._malformed(f"expected ',' or ']' but found {following!r}")


def read_json(path: str | os.PathLike[str]) -> Any:
    """A whole JSON file; :class:`CatalogueError` naming it when it does not parse."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc


def parse_pricing(pricing: Any) -> tuple[list[float], str]:
    """``(prices, price tag)`` of a raw ``pricing`` string: every ``$``-separated amount
    (a range keeps its first two), ``[100.0]`` and ``"$100.0"`` when there is none."""
    if not pricing or not isinstance(pricing, str):
        return [DEFAULT_PRICE], f"${DEFAULT_PRICE}"
    amounts = []
    for part in pricing.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            amounts.append(float(Decimal(digits)))
        except (InvalidOperation, ValueError):
            continue
    if not amounts:
        return [DEFAULT_PRICE], f"${DEFAULT_PRICE}"
    if len(amounts) == 1:
        return amounts, f"${amounts[0]}"
    return amounts[:2], f"${amounts[0]} to ${amounts[1]}"


def product_price(asin: str, pricing: list[float], seed: int = 0) -> float:
    """The price a purchase pays: the single price, or a draw from a price range.

    WebShop draws ``uniform(lo, hi)`` from the process's global random state, so its
    prices change between runs; here the draw is seeded by ``seed`` and the asin, so
    every worker and every run agree.
    """
    if not pricing:
        return DEFAULT_PRICE
    if len(pricing) == 1:
        return float(pricing[0])
    digest = hashlib.sha256(f"{seed}:{asin}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "little"))
    return rng.uniform(float(pricing[0]), float(pricing[1]))


def normalise_options(customization_options: Any) -> dict[str, list[str]]:
    """``{name lower: [value stripped, "/" as " | ", lower]}``; groups that are null are
    left out."""
    options: dict[str, list[str]] = {}
    if not isinstance(customization_options, Mapping):
        return options
    for name, contents in customization_options.items():
        if contents is None:
            continue
        values = []
        for content in contents:
            value = content.get("value") if isinstance(content, Mapping) else content
            if value is None:
                continue
            values.append(str(value).strip().replace("/", " | ").lower())
        options[str(name).lower()] = values
    return options


def normalise_product(
    raw: Mapping[str, Any],
    attributes: Mapping[str, Any],
    human: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """One product record (see the module docstring), or ``None`` for a product WebShop
    skips (asin ``nan`` or longer than 10 characters). ``human`` adds the product's
    human instructions (``instructions``)."""
    asin = str(raw.get("asin", ""))
    if not asin or asin == "nan" or len(asin) > 10:
        return None
    pricing, price_tag = parse_pricing(raw.get("pricing"))
    bullets = raw.get("small_description")
    bullets = bullets if isinstance(bullets, list) else [bullets if bullets else ""]
    attr = attributes.get(asin) if isinstance(attributes.get(asin), Mapping) else {}
    product: dict[str, Any] = {
        "asin": asin,
        "name": str(raw.get("name") or ""),
        "Title": str(raw.get("name") or ""),
        "Description": str(raw.get("full_description") or ""),
        "BulletPoints": [str(b) for b in bullets],
        "pricing": pricing,
        "Price": price_tag,
        "Rating": "N.A.",
        "options": normalise_options(raw.get("customization_options")),
        "Attributes": list(attr["attributes"]) if "attributes" in attr else [MISSING_ATTRIBUTE],
        "category": str(raw.get("category") or ""),
        "query": str(raw.get("query") or "").lower().strip(),
        "product_category": str(raw.get("product_category") or ""),
        "instruction_text": attr.get("instruction"),
        "instruction_attributes": attr.get("instruction_attributes"),
    }
    if human is not None and asin in human:
        product["instructions"] = human[asin]
    return product


def iter_products(
    files: CatalogueFiles,
    num_products: int | None = None,
    human: bool = True,
) -> Iterator[dict[str, Any]]:
    """The catalogue's product records in file order (first ``num_products`` entries of
    the product file when given, as WebShop's ``num_products``), skipping what WebShop
    skips. ``human`` reads ``items_human_ins.json`` when the catalogue has it."""
    attributes = read_json(files.attributes)
    if not isinstance(attributes, Mapping):
        raise CatalogueError(f"{files.attributes}: expected a JSON object keyed by asin")
    instructions = read_json(files.human) if human and files.human is not None else None
    seen: set[str] = set()
    for position, raw in enumerate(iter_json_array(files.items)):
        if num_products is not None and position >= num_products:
            break
        if not isinstance(raw, Mapping):
            raise CatalogueError(f"{files.items}: entry {position} is not a product object")
        product = normalise_product(raw, attributes, instructions)
        if product is None or product["asin"] in seen:
            continue
        seen.add(product["asin"])
        yield product


def search_document(product: Mapping[str, Any]) -> str:
    """The text WebShop indexes for a product: title, description, first bullet point
    and ``"name: v1, v2, and name: ..."``, lower-cased."""
    option_text = ", and ".join(
        f"{name}: {', '.join(values)}" for name, values in product.get("options", {}).items()
    )
    bullets = product.get("BulletPoints") or [""]
    return " ".join(
        [product.get("Title", ""), product.get("Description", ""), bullets[0], option_text]
    ).lower()
