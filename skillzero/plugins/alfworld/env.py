"""The ALFWorld text environment: one TextWorld game per episode.

Observations are exactly what TextWorld with ALFWorld's wrappers returns: the first one
holds the room description and ``Your task is to: ...``, later ones the feedback of the
last command. ``info["admissible_actions"]`` is the engine's admissible commands without
``help`` (as verl-agent shows them); ``info["won"]`` is the engine's goal check. The
reward is ``won_reward * won`` (10 by default), the episode terminates when the game is
won, and the base class truncates it after ``max_steps`` (50 by default).

Invalid actions
    The action parser turns an invalid response into the empty string. The engine
    answers any string that is not one of its commands (after stripping spaces) with
    ``Nothing happens.`` and leaves the game untouched, so an invalid response only
    advances the step counter. With ``fast_noop`` (default) the env gives that answer
    itself, with the unchanged admissible commands, without running the engine; an
    admissible command, or ``help``, always goes to the engine.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from skillzero.contracts.env import Task, TextEnv
from skillzero.contracts.settings import cfg_get
from skillzero.plugins.alfworld.engine import NOTHING_HAPPENS

HIDDEN_COMMANDS: frozenset[str] = frozenset({"help"})
"""Engine commands not shown to the agent (verl-agent removes ``help``)."""


def visible_actions(admissible_commands: list[str] | None) -> list[str]:
    """The admissible commands as the agent sees them (without ``help``)."""
    return [c for c in admissible_commands or [] if c not in HIDDEN_COMMANDS]


class AlfworldEnv(TextEnv):
    """Plays ALFWorld games with the real TextWorld engine.

    ``env_cfg`` is the env's config mapping (``cfg.env``, see
    :class:`~skillzero.plugins.alfworld.config.AlfworldConfig`); this class reads
    ``max_steps``, ``won_reward``, ``engine_cache`` and ``fast_noop``. A task's
    ``payload["game_file"]`` names the game. The engine is built on the first reset and
    kept for the env's life; a game is loaded only when it differs from the last one.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        super().__init__(max_steps=int(cfg_get(env_cfg, "max_steps", 50)))
        self.won_reward = float(cfg_get(env_cfg, "won_reward", 10.0))
        self.engine_cache = bool(cfg_get(env_cfg, "engine_cache", True))
        self.fast_noop = bool(cfg_get(env_cfg, "fast_noop", True))
        self._engine: Any = None
        self._loaded_game: str | None = None
        self._commands: frozenset[str] = frozenset()
        self._visible: list[str] = []
        self._won = False

    @property
    def engine(self) -> Any:
        """The TextWorld environment (built on first use)."""
        if self._engine is None:
            from skillzero.plugins.alfworld.engine import install_engine_caches, make_engine

            if self.engine_cache:
                install_engine_caches()
            self._engine = make_engine()
        return self._engine

    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        game_file = task.payload.get("game_file") if task.payload else None
        if not game_file:
            raise ValueError(f"task {task.task_id!r} has no payload['game_file']")
        game_file = str(game_file)
        engine = self.engine
        argv = list(sys.argv)  # fast-downward's translator overwrites sys.argv
        try:
            if game_file != self._loaded_game:
                self._loaded_game = None
                engine.load(game_file)
                self._loaded_game = game_file
            observation, infos = engine.reset()
        finally:
            sys.argv[:] = argv
        return observation, self._info(infos)

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        if self.fast_noop and action.strip() not in self._commands:
            # Exactly what the engine answers, without recomputing the commands.
            info = {
                "won": self._won,
                "admissible_actions": list(self._visible),
                "game_file": self._loaded_game,
            }
            return NOTHING_HAPPENS, self.won_reward * float(self._won), self._won, info
        observation, _score, done, infos = self.engine.step(action)
        info = self._info(infos)
        won = info["won"]
        return observation, self.won_reward * float(won), bool(won or done), info

    def _info(self, infos: Mapping[str, Any]) -> dict[str, Any]:
        commands = list(infos.get("admissible_commands") or [])
        self._commands = frozenset(commands)
        self._visible = visible_actions(commands)
        self._won = bool(infos.get("won", False))
        return {
            "won": self._won,
            "admissible_actions": list(self._visible),
            "game_file": self._loaded_game,
        }

    def close(self) -> None:
        if self._engine is not None:
            try:
                self._engine.close()
            finally:
                self._engine = None
                self._loaded_game = None
