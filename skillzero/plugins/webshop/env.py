"""The WebShop text environment: one shopping session per episode.

Observations are the simulator's pages (:mod:`~skillzero.plugins.webshop.simulator`):
the visible strings of a WebShop page joined by ``" [SEP] "``. ``info`` carries, besides
the keys every env has:

- ``admissible_actions``: ``search[<your query>]`` on the search page, then
  ``click[...]`` for every clickable of the page;
- ``available_actions``: WebShop's own form, ``{"has_search_bar", "clickables"}``;
- ``task_score``: the purchase score in [0, 1] (0 until ``click[buy now]``), and
  ``reward_info`` with its parts after a purchase;
- ``page``: ``search``, ``results``, ``item``, ``sub`` or ``done``;
- ``noop`` / ``noop_reason``: the action changed nothing, and why.

Reward: ``reward_mode=success`` (verl-agent's) pays ``success_reward`` (10) on a
purchase that scores 1.0 and 0 otherwise; ``reward_mode=score`` pays the score. ``won``
is ``score == 1``. The episode terminates on ``buy now``; the base class truncates it
after ``max_steps`` (15). An action that is not valid on the page does nothing and never
raises; with ``noop_feedback`` the observation says why below the unchanged page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skillzero.contracts.env import Task, TextEnv
from skillzero.core.config import cfg_get
from skillzero.plugins.webshop.config import REWARD_MODES


class WebshopEnv(TextEnv):
    """Plays WebShop goals in the in-process simulator.

    ``env_cfg`` is the env's config mapping (:class:`~skillzero.plugins.webshop.config.
    WebshopConfig`); this class reads ``max_steps``, ``show_attrs``, ``strict_search``,
    ``noop_feedback``, ``reward_mode`` and ``success_reward``. A task's payload names the
    shop folder, the goal set and the goal index (see
    :func:`~skillzero.plugins.webshop.data.list_tasks`).
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        super().__init__(max_steps=int(cfg_get(env_cfg, "max_steps", 15)))
        self.show_attrs = bool(cfg_get(env_cfg, "show_attrs", False))
        self.strict_search = bool(cfg_get(env_cfg, "strict_search", False))
        self.noop_feedback = bool(cfg_get(env_cfg, "noop_feedback", False))
        self.reward_mode = str(cfg_get(env_cfg, "reward_mode", "success"))
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(
                f"env.reward_mode must be one of {', '.join(REWARD_MODES)}, got "
                f"{self.reward_mode!r}"
            )
        self.success_reward = float(cfg_get(env_cfg, "success_reward", 10.0))
        self.simulator: Any = None
        self.goal: dict[str, Any] = {}
        self._shop_path: str | None = None

    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        from skillzero.plugins.webshop.shop import open_shop
        from skillzero.plugins.webshop.simulator import WebShopSimulator

        payload = task.payload or {}
        shop_path = payload.get("shop")
        if not shop_path:
            raise ValueError(f"task {task.task_id!r} has no payload['shop']")
        shop_path = str(shop_path)
        shop = open_shop(shop_path)
        if "goal" in payload:  # a goal given inline (tests, custom task lists)
            goal = dict(payload["goal"])
        elif "goal_set" in payload and "goal_index" in payload:
            goal = shop.goal(str(payload["goal_set"]), int(payload["goal_index"]))
        else:
            raise ValueError(f"task {task.task_id!r} names no goal (goal_set + goal_index)")
        if self.simulator is None or self._shop_path != shop_path:
            self.simulator = WebShopSimulator(shop, self.show_attrs, self.strict_search)
            self._shop_path = shop_path
        self.goal = goal
        page = self.simulator.reset(goal)
        return page.observation, self._info(task_score=0.0)

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        outcome = self.simulator.step(action)
        score = outcome.score if outcome.score is not None else 0.0
        won = outcome.done and outcome.score is not None and outcome.score == 1.0
        info = self._info(task_score=score, won=won)
        observation = outcome.page.observation
        if outcome.noop_reason is not None:
            info["noop"] = True
            info["noop_reason"] = outcome.noop_reason
            if self.noop_feedback:
                observation = f"{observation} [SEP] Nothing happened: {outcome.noop_reason}."
        if outcome.reward_info:
            info["reward_info"] = outcome.reward_info
        if self.reward_mode == "success":
            reward = self.success_reward if won else 0.0
        else:
            reward = score if outcome.done else 0.0
        return observation, reward, outcome.done, info

    def _info(self, task_score: float, won: bool = False) -> dict[str, Any]:
        simulator = self.simulator
        return {
            "won": won,
            "task_score": float(task_score),
            "admissible_actions": simulator.admissible_actions(),
            "available_actions": {
                "has_search_bar": simulator.page.has_search_bar and not simulator.done,
                "clickables": [] if simulator.done else list(simulator.page.clickables()),
            },
            "page": simulator.page.name,
            "noop": False,
        }
