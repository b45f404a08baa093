"""The word lists the catalogue generator draws from (written for this project).

Five categories, as in WebShop (beauty, electronics, fashion, garden, grocery), each
with product types: the search ``query`` a type is listed under, its category path, the
nouns its titles use, the attributes its products may have, the option groups its
products may offer, and a price range in dollars.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProductType:
    """One kind of product (see the module docstring)."""

    category: str
    query: str
    path: tuple[str, ...]
    nouns: tuple[str, ...]
    attributes: tuple[str, ...]
    options: tuple[str, ...]
    price: tuple[float, float]
    uses: tuple[str, ...] = field(default=())


COLORS = (
    "black", "white", "navy blue", "light grey", "dark green", "red", "pink", "beige",
    "khaki", "olive green", "purple", "yellow", "brown", "teal", "coral", "silver",
    "gold", "ivory", "burgundy", "sky blue",
)  # fmt: skip
SIZES_CLOTHING = ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large")
SIZES_SHOES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "11", "12")
SIZES_BED = ("twin", "full", "queen", "king", "california king")
SIZES_VOLUME = ("2 fl oz", "4 fl oz", "8 fl oz", "16 fl oz", "32 fl oz")
SIZES_WEIGHT = ("4 ounce", "8 ounce", "12 ounce", "1 pound", "2 pound", "5 pound")
PACKS = ("pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12")
FLAVORS = (
    "vanilla", "chocolate", "strawberry", "sea salt", "honey", "original", "cinnamon",
    "mango", "peanut butter", "matcha", "blueberry", "spicy",
)  # fmt: skip
SCENTS = ("lavender", "unscented", "eucalyptus", "citrus", "coconut", "sandalwood", "vanilla")
LENGTHS = ("6 feet", "10 feet", "3 feet", "15 feet", "1 meter")
STYLES_TECH = ("standard", "pro", "mini", "max", "wireless", "wired", "with case")
MATERIALS = ("cotton", "linen", "bamboo", "polyester", "wool", "leather", "canvas")
PATTERNS = ("solid", "striped", "floral", "plaid", "geometric", "paisley")
CAPACITY = ("32gb", "64gb", "128gb", "256gb", "512gb", "1tb")

OPTION_VALUES: dict[str, tuple[str, ...]] = {
    "color": COLORS,
    "size": SIZES_CLOTHING,
    "shoe size": SIZES_SHOES,
    "bed size": SIZES_BED,
    "volume": SIZES_VOLUME,
    "weight": SIZES_WEIGHT,
    "item package quantity": PACKS,
    "flavor name": FLAVORS,
    "scent": SCENTS,
    "length": LENGTHS,
    "style": STYLES_TECH,
    "material": MATERIALS,
    "pattern name": PATTERNS,
    "capacity": CAPACITY,
}
"""Option group (as the generated catalogue names it) -> values."""

OPTION_GROUP_NAMES: dict[str, str] = {
    "shoe size": "size",
    "bed size": "size",
    "volume": "size",
    "weight": "size",
}
"""Pools shown under another group name (several pools are all "size")."""

_BEAUTY = "Beauty & Personal Care"
_ELECTRONICS = "Electronics"
_FASHION = "Clothing, Shoes & Jewelry"
_GARDEN = "Home & Kitchen"
_GROCERY = "Grocery & Gourmet Food"

PRODUCT_TYPES: tuple[ProductType, ...] = (
    # -- beauty ----------------------------------------------------------------------------
    ProductType(
        "beauty", "hair extensions, wigs & accessories",
        (_BEAUTY, "Hair Care", "Hair Extensions, Wigs & Accessories"),
        ("hair extensions", "wig", "hairpiece", "ponytail extension"),
        ("natural looking", "heat resistant", "easy to apply", "long lasting", "synthetic hair",
         "high quality", "tangle free", "human hair"),
        ("color", "length"), (12.0, 90.0), ("everyday wear", "parties", "cosplay"),
    ),
    ProductType(
        "beauty", "shampoo & conditioner", (_BEAUTY, "Hair Care", "Shampoo & Conditioner"),
        ("shampoo", "conditioner", "hair wash"),
        ("sulfate free", "paraben free", "natural ingredients", "dry hair", "argan oil",
         "tea tree", "color safe", "cruelty free"),
        ("volume", "scent", "item package quantity"), (6.0, 45.0), ("dry hair", "oily scalp"),
    ),
    ProductType(
        "beauty", "lip balms & treatments", (_BEAUTY, "Skin Care", "Lips", "Balms & Treatments"),
        ("lip balm", "lip mask", "lip oil"),
        ("long lasting", "natural ingredients", "shea butter", "moisturizing", "spf 15",
         "vegan", "easy carry"),
        ("flavor name", "item package quantity"), (3.0, 25.0), ("chapped lips", "winter"),
    ),
    ProductType(
        "beauty", "face moisturizers", (_BEAUTY, "Skin Care", "Face", "Moisturizers"),
        ("face cream", "moisturizer", "night cream", "gel cream"),
        ("hyaluronic acid", "fragrance free", "sensitive skin", "anti aging", "oil free",
         "dermatologist tested", "non greasy", "vitamin c"),
        ("volume", "scent"), (9.0, 70.0), ("sensitive skin", "daily use"),
    ),
    ProductType(
        "beauty", "nail polish", (_BEAUTY, "Foot, Hand & Nail Care", "Nail Art & Polish"),
        ("nail polish", "gel polish", "nail lacquer"),
        ("quick dry", "long lasting", "non toxic", "high gloss", "chip resistant", "vegan"),
        ("color", "item package quantity"), (4.0, 30.0), ("manicures", "home salon"),
    ),
    ProductType(
        "beauty", "makeup brushes & tools", (_BEAUTY, "Tools & Accessories", "Makeup Brushes"),
        ("makeup brush set", "brush", "blending sponge"),
        ("soft bristles", "cruelty free", "easy to clean", "travel size", "synthetic hair",
         "high quality"),
        ("color", "item package quantity"), (6.0, 40.0), ("foundation", "eye shadow"),
    ),
    # -- electronics -----------------------------------------------------------------------
    ProductType(
        "electronics", "headphones", (_ELECTRONICS, "Headphones, Earbuds & Accessories",
                                      "Headphones"),
        ("headphones", "earbuds", "headset"),
        ("noise cancelling", "bluetooth", "long battery life", "water resistant",
         "fast charging", "built in microphone", "lightweight"),
        ("color", "style"), (15.0, 250.0), ("travel", "gaming", "workouts"),
    ),
    ProductType(
        "electronics", "usb cables", (_ELECTRONICS, "Computers & Accessories", "Cables",
                                      "USB Cables"),
        ("charging cable", "usb c cable", "lightning cable", "data cable"),
        ("fast charging", "braided nylon", "durable", "high speed", "usb c", "tangle free"),
        ("length", "color", "item package quantity"), (5.0, 30.0), ("phones", "tablets"),
    ),
    ProductType(
        "electronics", "memory cards", (_ELECTRONICS, "Computers & Accessories",
                                        "Memory Cards", "Micro SD Cards"),
        ("memory card", "micro sd card", "sd card"),
        ("high speed", "water resistant", "adapter included", "4k video", "shock proof"),
        ("capacity", "item package quantity"), (7.0, 120.0), ("cameras", "drones", "phones"),
    ),
    ProductType(
        "electronics", "bluetooth speakers", (_ELECTRONICS, "Portable Audio & Video",
                                              "Portable Speakers & Docks"),
        ("speaker", "bluetooth speaker", "sound bar"),
        ("waterproof", "long battery life", "bluetooth", "deep bass", "portable",
         "hands free calling"),
        ("color", "style"), (18.0, 200.0), ("outdoor parties", "the shower"),
    ),
    ProductType(
        "electronics", "phone cases", (_ELECTRONICS, "Cell Phones & Accessories", "Cases",
                                       "Basic Cases"),
        ("phone case", "case", "cover"),
        ("shock absorbing", "slim fit", "wireless charging compatible", "scratch resistant",
         "easy install", "raised edges"),
        ("color", "pattern name"), (6.0, 35.0), ("everyday protection",),
    ),
    ProductType(
        "electronics", "computer mice", (_ELECTRONICS, "Computers & Accessories",
                                         "Keyboards, Mice & Accessories", "Mice"),
        ("mouse", "wireless mouse", "gaming mouse"),
        ("ergonomic design", "rechargeable", "silent click", "wireless", "adjustable dpi",
         "plug and play"),
        ("color", "style"), (9.0, 80.0), ("laptops", "office work", "gaming"),
    ),
    # -- fashion ---------------------------------------------------------------------------
    ProductType(
        "fashion", "men's t-shirts", (_FASHION, "Men", "Clothing", "Shirts", "T-Shirts"),
        ("t-shirt", "tee", "crew neck shirt"),
        ("machine wash", "short sleeve", "cotton blend", "relaxed fit", "moisture wicking",
         "classic fit"),
        ("color", "size"), (9.0, 40.0), ("casual wear", "the gym"),
    ),
    ProductType(
        "fashion", "women's dresses", (_FASHION, "Women", "Clothing", "Dresses"),
        ("dress", "maxi dress", "sundress", "cocktail dress"),
        ("machine wash", "long sleeve", "v neck", "pockets", "flowy", "elastic waist",
         "hand wash"),
        ("color", "size", "pattern name"), (18.0, 90.0), ("weddings", "summer", "the office"),
    ),
    ProductType(
        "fashion", "running shoes", (_FASHION, "Men", "Shoes", "Athletic", "Running"),
        ("running shoes", "sneakers", "trainers"),
        ("rubber sole", "arch support", "breathable mesh", "non slip", "lightweight",
         "memory foam"),
        ("color", "shoe size"), (30.0, 140.0), ("jogging", "walking", "the gym"),
    ),
    ProductType(
        "fashion", "women's sandals", (_FASHION, "Women", "Shoes", "Sandals"),
        ("sandals", "slides", "flip flops"),
        ("arch support", "open toe", "rubber sole", "adjustable strap", "comfortable",
         "non slip"),
        ("color", "shoe size"), (14.0, 70.0), ("the beach", "summer"),
    ),
    ProductType(
        "fashion", "socks", (_FASHION, "Men", "Clothing", "Socks"),
        ("socks", "crew socks", "ankle socks"),
        ("moisture wicking", "cushioned", "cotton blend", "machine wash", "breathable"),
        ("color", "size", "item package quantity"), (8.0, 30.0), ("hiking", "everyday wear"),
    ),
    ProductType(
        "fashion", "backpacks", (_FASHION, "Luggage & Travel Gear", "Backpacks"),
        ("backpack", "daypack", "laptop backpack"),
        ("water resistant", "laptop compartment", "lightweight", "padded straps",
         "usb charging port", "large capacity"),
        ("color", "material"), (20.0, 110.0), ("school", "travel", "hiking"),
    ),
    # -- garden (home & kitchen) -----------------------------------------------------------
    ProductType(
        "garden", "bed sheets", (_GARDEN, "Bedding", "Sheets & Pillowcases", "Sheet Sets"),
        ("sheet set", "bed sheets", "fitted sheet"),
        ("deep pocket", "wrinkle free", "breathable", "machine washable", "soft", "cooling"),
        ("color", "bed size", "material"), (20.0, 120.0), ("hot sleepers", "guest rooms"),
    ),
    ProductType(
        "garden", "throw pillows", (_GARDEN, "Home Décor", "Decorative Pillows"),
        ("throw pillow", "pillow cover", "cushion cover"),
        ("hidden zipper", "machine washable", "soft", "double sided", "decorative"),
        ("color", "pattern name", "item package quantity"), (8.0, 45.0), ("sofas", "beds"),
    ),
    ProductType(
        "garden", "ottomans", (_GARDEN, "Furniture", "Living Room Furniture", "Ottomans"),
        ("ottoman", "storage ottoman", "footstool", "ottoman bench"),
        ("space saving", "storage space", "easy assembly", "sturdy", "faux leather",
         "living room"),
        ("color", "material"), (30.0, 220.0), ("living rooms", "bedrooms"),
    ),
    ProductType(
        "garden", "garden hoses", (_GARDEN, "Patio, Lawn & Garden", "Watering Equipment",
                                   "Garden Hoses"),
        ("garden hose", "expandable hose", "hose"),
        ("kink free", "lightweight", "durable", "leak proof", "easy storage", "heavy duty"),
        ("length", "color"), (15.0, 90.0), ("lawns", "car washing"),
    ),
    ProductType(
        "garden", "candles", (_GARDEN, "Home Décor", "Candles & Holders", "Candles"),
        ("candle", "jar candle", "soy candle"),
        ("soy wax", "long lasting", "natural ingredients", "lead free", "hand poured"),
        ("scent", "item package quantity"), (7.0, 40.0), ("relaxation", "gifts"),
    ),
    ProductType(
        "garden", "kitchen knives", (_GARDEN, "Kitchen & Dining", "Cutlery & Knife Accessories",
                                     "Kitchen Knives"),
        ("chef knife", "knife set", "paring knife"),
        ("stainless steel", "dishwasher safe", "ergonomic handle", "razor sharp",
         "rust resistant"),
        ("color", "item package quantity"), (12.0, 150.0), ("home cooks", "meal prep"),
    ),
    # -- grocery ---------------------------------------------------------------------------
    ProductType(
        "grocery", "snack foods", (_GROCERY, "Snack Foods", "Chips & Crisps"),
        ("potato chips", "veggie chips", "crackers", "snack bars"),
        ("gluten free", "non gmo", "low calorie", "kosher", "individually wrapped",
         "baked not fried"),
        ("flavor name", "item package quantity"), (4.0, 35.0), ("lunch boxes", "road trips"),
    ),
    ProductType(
        "grocery", "coffee", (_GROCERY, "Beverages", "Coffee, Tea & Cocoa", "Coffee"),
        ("ground coffee", "coffee beans", "coffee pods"),
        ("medium roast", "dark roast", "organic", "fair trade", "decaf", "single origin"),
        ("flavor name", "weight"), (7.0, 45.0), ("espresso", "drip brewers"),
    ),
    ProductType(
        "grocery", "tea", (_GROCERY, "Beverages", "Coffee, Tea & Cocoa", "Tea"),
        ("green tea", "herbal tea", "tea bags", "loose leaf tea"),
        ("caffeine free", "organic", "individually wrapped", "non gmo", "sugar free"),
        ("flavor name", "item package quantity"), (4.0, 30.0), ("bedtime", "mornings"),
    ),
    ProductType(
        "grocery", "nut butters", (_GROCERY, "Pantry Staples", "Jams, Jellies & Spreads",
                                   "Nut Butters"),
        ("peanut butter", "almond butter", "cashew butter"),
        ("no sugar added", "non gmo", "high protein", "gluten free", "keto friendly", "vegan"),
        ("flavor name", "weight"), (5.0, 30.0), ("smoothies", "toast"),
    ),
    ProductType(
        "grocery", "candy & chocolate", (_GROCERY, "Candy & Chocolate", "Chocolate"),
        ("chocolate bar", "dark chocolate", "candy", "truffles"),
        ("gluten free", "kosher", "individually wrapped", "low sugar", "dairy free",
         "gift box"),
        ("flavor name", "item package quantity"), (5.0, 40.0), ("gifts", "holidays"),
    ),
    ProductType(
        "grocery", "spices & seasonings",
        (_GROCERY, "Pantry Staples", "Herbs, Spices & Seasonings"),
        ("seasoning", "spice blend", "sea salt", "pepper"),
        ("non gmo", "organic", "no msg", "kosher", "gluten free", "low sodium"),
        ("flavor name", "weight"), (4.0, 25.0), ("grilling", "soups"),
    ),
)  # fmt: skip

BRAND_SYLLABLES = (
    "zor", "vel", "lum", "qui", "nar", "tek", "sol", "bri", "mox", "fen", "dal", "ora",
    "kip", "ven", "rua", "tal", "pex", "lin", "gor", "sai", "ber", "cue", "dyn", "hal",
)  # fmt: skip

TITLE_ADJECTIVES = (
    "Premium", "Classic", "Everyday", "Deluxe", "Essential", "Modern", "Original", "Ultra",
)  # fmt: skip

DESCRIPTION_OPENERS = (
    "Meet the {noun} made for {use}.",
    "This {noun} is designed for {use}.",
    "Our {noun} brings comfort and value to {use}.",
    "A dependable {noun} for {use}, built to last.",
)  # fmt: skip

HUMAN_TEMPLATES = (
    "i am looking for {attrs} {noun}{options}",
    "i need a {noun} that is {attrs}{options}",
    "find me {attrs} {noun}{options}",
    "i want to buy {noun} which is {attrs}{options}",
    "im looking for a {attrs} {noun} for {use}{options}",
)  # fmt: skip
