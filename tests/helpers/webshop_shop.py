"""A small hand-written WebShop catalogue in the original file formats, compiled into a
shop, for tests that need to know exactly what each page shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ITEMS: list[dict[str, Any]] = [
    {
        "asin": "B000TEA001",
        "name": "Leafy Organic Green Tea Bags",
        "full_description": "Whole leaf green tea, picked in spring.",
        "small_description": ["Organic and caffeine light", "Individually wrapped bags"],
        "pricing": "$12.50",
        "customization_options": {
            "Flavor Name": [{"value": "Mint", "image": None}, {"value": "Lemon/Ginger"}],
            "Size": [{"value": "20 Count"}, {"value": "100 Count"}],
        },
        "images": ["x.png"],
        "category": "grocery",
        "query": "Tea ",
        "product_category": "Grocery › Beverages › Tea",
    },
    {
        "asin": "B000TEA002",
        "name": "Budget Black Tea Bags",
        "full_description": "Strong black tea.",
        "small_description": "Bold taste",
        "pricing": "$5.00 - $9.00",
        "customization_options": None,
        "images": ["x.png"],
        "category": "grocery",
        "query": "tea",
        "product_category": "Grocery › Beverages › Tea",
    },
    {
        "asin": "B000MUG003",
        "name": "Stoneware Tea Mug with Lid",
        "full_description": "",
        "small_description": [],
        "pricing": "",
        "customization_options": {"Color": [{"value": "Navy Blue"}, {"value": "White"}]},
        "images": ["x.png"],
        "category": "garden",
        "query": "mugs",
        "product_category": "Home & Kitchen › Kitchen & Dining › Mugs",
    },
    {"asin": "nan", "name": "skipped: asin nan"},
    {"asin": "B000TEA001", "name": "skipped: repeated asin"},
]
ATTRIBUTES: dict[str, Any] = {
    "B000TEA001": {
        "attributes": ["organic", "individually wrapped"],
        "instruction": "Find me tea with organic",
        "instruction_attributes": ["organic"],
    },
    "B000TEA002": {"attributes": []},
}
HUMAN: dict[str, Any] = {
    "B000TEA001": [
        {
            "instruction": "i want organic green tea in mint flavor.",
            "instruction_attributes": ["organic"],
            "instruction_options": ["mint"],
        },
        {"instruction": "no attributes: skipped", "instruction_attributes": []},
    ]
}


def write_files(folder: Path) -> Path:
    """Write the three files (small-set names) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items_shuffle_1000.json").write_text(json.dumps(ITEMS), encoding="utf-8")
    (folder / "items_ins_v2_1000.json").write_text(json.dumps(ATTRIBUTES), encoding="utf-8")
    (folder / "items_human_ins.json").write_text(json.dumps(HUMAN), encoding="utf-8")
    return folder


def build_tiny_shop(folder: Path) -> Path:
    """Compile the catalogue above into ``folder / "shop"``."""
    from skillzero.plugins.webshop.catalogue import find_catalogue_files, iter_products
    from skillzero.plugins.webshop.shop import build_shop

    files = find_catalogue_files(write_files(folder / "data"))
    return build_shop(folder / "shop", iter_products(files), goal_sets=("synthetic", "human"))
