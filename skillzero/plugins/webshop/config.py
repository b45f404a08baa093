"""The structured schema of the ``env=webshop`` config entry.

Imported at plugin discovery (it is the env's config schema), so it stays light: no
numpy, no search engine, no spaCy.
"""

from __future__ import annotations

from dataclasses import dataclass

from skillzero.core.config import EnvConfig

DATA_ENV_VAR = "WEBSHOP_DATA"
"""A folder with WebShop's product files (or a compiled shop), used when
``env.data_dir`` is not set."""

TASK_TYPES: tuple[str, ...] = ("beauty", "electronics", "fashion", "garden", "grocery")
"""WebShop's five product categories; a task's type is its target product's category."""

REWARD_MODES: tuple[str, ...] = ("success", "score")


@dataclass
class WebshopConfig(EnvConfig):
    """Settings of the WebShop env, on top of those every env has (:class:`EnvConfig`).

    Data
        ``data_dir``: a folder with WebShop's files (``items_shuffle_1000.json`` +
        ``items_ins_v2_1000.json``, or the full ``items_shuffle.json`` +
        ``items_ins_v2.json``, with ``items_human_ins.json`` for human goals) or a
        compiled shop; ``None`` means ``$WEBSHOP_DATA``, then the project's generated
        default shop (made on first use). ``catalogue``: ``small`` (the 1,000-product
        files) or ``full``. ``num_products``: use only the first N products of the
        product file. ``price_seed``: seeds the price draws (ranged prices, goal price
        bounds).
    Goals
        ``goals``: ``synthetic`` (verl-agent's default: instruction x option combination
        + price bound) or ``human``. ``goal_file``: a JSON list of structured goals in
        WebShop order (e.g. ``chatshop_goals.json``), used instead. ``split_scheme``:
        ``webshop`` (test 0-499, dev 500-1,499, train 1,500+) or ``verl_agent`` (test
        0-499, train 500+); every scheme also has ``fixed100`` and ``all``, and a split
        may be ``START:END``.
    Episodes
        ``max_steps``: steps before truncation (15, verl-agent's). ``show_attrs``: item
        pages have an ``attributes`` button (off in WebShop by default).
        ``reward_mode``: ``success`` pays ``success_reward`` when the purchase scores 1
        (verl-agent); ``score`` pays the purchase score itself. ``strict_search``:
        ``search[...]`` works only on the search page (WebShop allows it anywhere).
        ``noop_feedback``: an action that does nothing shows a line saying why above
        the unchanged page (WebShop shows the page unchanged).
    Prompt and parsing
        ``response_format``: ``standard`` (verl-agent's ``<think>`` + ``<action>``) or
        ``compact`` (``<action>`` only, for small models on CPU). ``require_think``
        (``null``: as the format asks), ``reject_cjk``, ``lowercase`` (verl-agent's rules) and
        ``require_admissible`` (off, as in verl-agent); ``max_prompt_chars``: a prompt
        with history longer than this falls back to the prompt without history
        (verl-agent: 13,000).
    """

    name: str = "webshop"
    num_groups: int = 16
    group_size: int = 8
    max_steps: int = 15
    history_length: int = 2
    invalid_action_penalty: float = 0.1
    train_split: str = "train"
    val_split: str = "test"
    max_prompt_tokens: int = 4096
    data_dir: str | None = None
    catalogue: str = "small"
    num_products: int | None = None
    price_seed: int = 0
    goals: str = "synthetic"
    goal_file: str | None = None
    split_scheme: str = "webshop"
    show_attrs: bool = False
    reward_mode: str = "success"
    success_reward: float = 10.0
    strict_search: bool = False
    noop_feedback: bool = False
    require_think: bool | None = None
    reject_cjk: bool = True
    lowercase: bool = True
    require_admissible: bool = False
    max_prompt_chars: int = 13000
