"""WebShop's web site, simulated in process: pages, clickables and the session.

WebShop renders HTML pages with Flask templates and its text env turns each into the
page's visible strings joined by ``" [SEP] "``. This module produces those strings
directly, page by page, with the same texts in the same order:

search page
    ``WebShop [SEP] Instruction: [SEP] <instruction> [SEP] Search``
results page
    ``Instruction: [SEP] <instruction> [SEP] Back to Search [SEP] Page P (Total
    results: N) [SEP] [< Prev [SEP]] Next > [SEP] <asin> [SEP] <title> [SEP] <price>
    ...`` (the top 50 BM25 hits, 10 per page; ``< Prev`` from page 2; ``Next >``
    always, as in WebShop)
item page
    ``Instruction: [SEP] <instruction> [SEP] Back to Search [SEP] < Prev [SEP]`` then
    each option group's name and values, the title, ``Price: <price>``, ``Rating:
    N.A.``, ``Description [SEP] Features [SEP] Reviews [SEP] [Attributes [SEP]] Buy Now``
sub pages (``description``, ``features``, ``reviews``, ``attributes``)
    ``Instruction: [SEP] <instruction> [SEP] Back to Search [SEP] < Prev [SEP]`` then
    the description, the bullet points, the reviews (WebShop ships none) or the
    attributes with category, query and product category.
done page
    ``Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] <score>``
    (WebShop's done page also prints hidden purchase details; the episode is over).

Empty strings are left out, as an empty template field renders no text.

Actions are WebShop's: ``search[keywords]`` and ``click[value]`` (see
:func:`parse_action`), the argument lower-cased. A click must name one of the
page's clickables: its buttons and product links (lower-cased) and its option values;
``click[search]`` does nothing. Anything else leaves the page unchanged (a no-op, with
the reason in :attr:`StepOutcome.noop_reason`). ``search`` works on every page, as in
WebShop, unless ``strict_search``. ``click[buy now]`` ends the episode with
:func:`~skillzero.plugins.webshop.reward.get_reward`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skillzero.plugins.webshop.shop import Shop

SEP = " [SEP] "
SEARCH_RETURN_N = 50
PRODUCT_WINDOW = 10
END_BUTTON = "Buy Now"
NEXT_PAGE = "Next >"
PREV_PAGE = "< Prev"
BACK_TO_SEARCH = "Back to Search"
SEARCH_BUTTON = "Search"
SUB_PAGES: tuple[str, ...] = ("Description", "Features", "Reviews", "Attributes")
SEARCH_ACTION = "search[<your query>]"
"""How the admissible-action list shows the search action (as verl-agent)."""

_ACTION = re.compile(r"(.+)\[(.+)\]")
_WHOLE_ACTION = re.compile(r"(search|click)\[(.+)\]", re.DOTALL)


def parse_action(action: str) -> tuple[str, str | None]:
    r"""``(name, argument)`` of ``name[argument]``; ``(action, None)`` when it does not
    match.

    A whole ``search[...]`` / ``click[...]`` takes everything between the first ``[``
    and the final ``]`` as the argument, so option values with brackets
    (``black [4k@30hz]``) can be clicked; otherwise WebShop's own pattern
    ``(.+)\[(.+)\]`` applies (matched at the start, greedy), which would split such a
    value at its last ``[`` and make it unclickable.
    """
    whole = _WHOLE_ACTION.fullmatch(action)
    if whole is not None:
        return whole.group(1), whole.group(2)
    match = _ACTION.match(action)
    if match is None:
        return action, None
    return match.group(1), match.group(2)


@dataclass
class Page:
    """One rendered page: its visible strings and what can be clicked on it."""

    name: str
    texts: list[str]
    buttons: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    has_search_bar: bool = False

    @property
    def observation(self) -> str:
        return SEP.join(self.texts)

    def clickables(self) -> dict[str, tuple[str, str]]:
        """Clickable text -> (kind, target): buttons and links lower-cased, then option
        values as shown (later entries win on a clash, as in WebShop)."""
        table: dict[str, tuple[str, str]] = {}
        for button in self.buttons:
            table[button.lower()] = ("button", button)
        for asin in self.links:
            table[asin.lower()] = ("link", asin)
        for group, value in self.options:
            table[value] = ("option", group)
        return table


@dataclass
class StepOutcome:
    """What one action did: the new page, whether the episode ended, the purchase score
    (``None`` before a purchase) with its parts, and why nothing happened (or ``None``)."""

    page: Page
    done: bool = False
    score: float | None = None
    reward_info: dict[str, Any] = field(default_factory=dict)
    noop_reason: str | None = None


def _texts(*parts: Any) -> list[str]:
    out = []
    for part in parts:
        if isinstance(part, list | tuple):
            out += _texts(*part)
        elif part is not None:
            text = str(part).strip()
            if text:
                out.append(text)
    return out


class WebShopSimulator:
    """One shopping session at a time over a compiled :class:`Shop`.

    ``reset(goal)`` starts a session on the search page; ``step(action)`` applies one
    action. ``show_attrs`` adds the ``Attributes`` button to item pages.
    """

    def __init__(self, shop: Shop, show_attrs: bool = False, strict_search: bool = False) -> None:
        self.shop = shop
        self.show_attrs = show_attrs
        self.strict_search = strict_search
        self.goal: Mapping[str, Any] = {}
        self.page = Page("search", [])
        self.done = False
        self.keywords = ""
        self.results: list[int] = []
        self.page_number = 1
        self.asin: str | None = None
        self.options: dict[str, str] = {}
        self.sub_page = ""
        self.visited_asins: list[str] = []

    # -- session -------------------------------------------------------------------------
    @property
    def instruction(self) -> str:
        return str(self.goal.get("instruction_text", ""))

    def reset(self, goal: Mapping[str, Any]) -> Page:
        """Start a session for ``goal`` on the search page."""
        self.goal = goal
        self.done = False
        self.visited_asins = []
        self._to_search_page()
        return self.page

    def admissible_actions(self) -> list[str]:
        """The actions of the current page: ``search[<your query>]`` where there is a
        search bar, then ``click[...]`` for each clickable (``click[search]`` left out:
        it does nothing)."""
        if self.done:
            return []
        actions = [SEARCH_ACTION] if self.page.has_search_bar else []
        actions += [f"click[{c}]" for c in self.page.clickables() if c != "search"]
        return actions

    def step(self, action: str) -> StepOutcome:
        """Apply one action (see the module docstring); never raises on bad input."""
        if self.done:
            return StepOutcome(self.page, done=True, noop_reason="the episode is over")
        if not isinstance(action, str):
            return self._noop("the action is not text")
        name, argument = parse_action(action)
        if argument is not None:
            argument = argument.lower()
        if name == "search" and argument:
            if self.strict_search and not self.page.has_search_bar:
                return self._noop("there is no search bar on this page")
            self._search(argument)
            return StepOutcome(self.page)
        if name == "click" and argument is not None:
            clickables = self.page.clickables()
            if argument == "search" or argument not in clickables:
                return self._noop(f"'{argument}' is not clickable on this page")
            return self._click(argument, clickables[argument])
        if argument is None:
            return self._noop("not an action: write search[...] or click[...]")
        return self._noop(f"unknown action '{name}': use search[...] or click[...]")

    def _noop(self, reason: str) -> StepOutcome:
        return StepOutcome(self.page, noop_reason=reason)

    # -- actions -------------------------------------------------------------------------
    def _search(self, keywords: str) -> None:
        # the hits are kept for `next >` / `< prev` (WebShop searches again: same hits)
        self.results = self.shop.search(keywords, SEARCH_RETURN_N)
        self.keywords = keywords
        self._to_results_page(1)

    def _click(self, name: str, clickable: tuple[str, str]) -> StepOutcome:
        kind, target = clickable
        current = self.page.name
        if name == END_BUTTON.lower():
            return self._buy()
        if name == BACK_TO_SEARCH.lower():
            self._to_search_page()
        elif name == NEXT_PAGE.lower() and current == "results":
            self._to_results_page(self.page_number + 1)
        elif name == PREV_PAGE.lower() and current == "results":
            self._to_results_page(self.page_number - 1)
        elif name == PREV_PAGE.lower() and current == "sub":
            self._to_item_page()
        elif name == PREV_PAGE.lower() and current == "item":
            self._to_results_page(self.page_number)
        elif name in {s.lower() for s in SUB_PAGES}:
            self._to_sub_page(next(s for s in SUB_PAGES if s.lower() == name))
        elif kind == "link":
            self.asin = target.upper()
            self.visited_asins.append(self.asin)
            self._to_item_page()
        elif kind == "option":
            self.options[target] = name
            self._to_item_page()
        else:  # a button with no handler on this page (cannot happen with our pages)
            return self._noop(f"'{name}' does nothing on this page")
        return StepOutcome(self.page)

    def _buy(self) -> StepOutcome:
        from skillzero.plugins.webshop.reward import get_reward

        row = self.shop.row_of(self.asin or "")
        if row is None:
            return self._noop("no product is open")
        product = self.shop.product(row)
        price = self.shop.price(row)
        score, info = get_reward(
            product, self.goal, price=price, options=self.options, verbose=True
        )
        info = {**info, "asin": product["asin"], "options": dict(self.options), "price": price}
        self.done = True
        self.page = Page(
            "done",
            _texts("Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", score),
        )
        return StepOutcome(self.page, done=True, score=float(score), reward_info=info)

    # -- pages ---------------------------------------------------------------------------
    def _header(self) -> list[str]:
        return _texts("Instruction:", self.instruction)

    def _to_search_page(self) -> None:
        self.keywords = ""
        self.results = []
        self.page_number = 1
        self.asin = None
        self.options = {}
        self.page = Page(
            "search",
            _texts("WebShop", "Instruction:", self.instruction, SEARCH_BUTTON),
            buttons=[SEARCH_BUTTON],
            has_search_bar=True,
        )

    def _to_results_page(self, page: int) -> None:
        self.page_number = page
        self.asin = None
        self.options = {}
        start = (page - 1) * PRODUCT_WINDOW
        rows = self.results[max(start, 0) : max(start, 0) + PRODUCT_WINDOW] if page >= 1 else []
        buttons = [BACK_TO_SEARCH] + ([PREV_PAGE] if page > 1 else []) + [NEXT_PAGE]
        texts = [
            *self._header(),
            BACK_TO_SEARCH,
            f"Page {page} (Total results: {len(self.results)})",
            *([PREV_PAGE] if page > 1 else []),
            NEXT_PAGE,
        ]
        links = []
        for row in rows:
            product = self.shop.product(row)
            links.append(product["asin"])
            texts += _texts(product["asin"], product.get("Title"), product.get("Price"))
        self.page = Page("results", texts, buttons=buttons, links=links)

    def _product(self) -> dict[str, Any]:
        product = self.shop.product_by_asin(self.asin or "")
        if product is None:  # only a broken shop gets here
            raise KeyError(f"product {self.asin} is not in the shop")
        return product

    def _to_item_page(self) -> None:
        product = self._product()
        options: list[tuple[str, str]] = []
        texts = [*self._header(), BACK_TO_SEARCH, PREV_PAGE]
        for group, values in (product.get("options") or {}).items():
            texts += _texts(group, values)
            options += [(group, value) for value in values]
        sub_pages = [s for s in SUB_PAGES if s != "Attributes" or self.show_attrs]
        texts += _texts(
            product.get("Title"),
            f"Price: {product.get('Price', '')}",
            f"Rating: {product.get('Rating', 'N.A.')}",
            sub_pages,
            END_BUTTON,
        )
        buttons = [BACK_TO_SEARCH, PREV_PAGE, *sub_pages, END_BUTTON]
        self.sub_page = ""
        self.page = Page("item", texts, buttons=buttons, options=options)

    def _to_sub_page(self, sub_page: str) -> None:
        product = self._product()
        texts = [*self._header(), BACK_TO_SEARCH, PREV_PAGE]
        if sub_page == "Description":
            texts += _texts(product.get("Description"))
        elif sub_page == "Features":
            texts += _texts(product.get("BulletPoints") or [])
        elif sub_page == "Reviews":
            for review in product.get("Reviews") or []:
                texts += _texts(f'"{review.get("title", "")}"', review.get("score"))
                texts += _texts(review.get("body"))
        else:
            texts += _texts(
                product.get("Attributes") or [],
                product.get("category"),
                product.get("query"),
                product.get("product_category"),
            )
        self.sub_page = sub_page
        self.page = Page("sub", texts, buttons=[BACK_TO_SEARCH, PREV_PAGE])
