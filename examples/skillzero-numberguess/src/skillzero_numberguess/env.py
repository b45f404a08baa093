"""The "guess the number" environment and its task lists.

A task holds a secret whole number in ``[low, high]``. Each action is ``guess N``; the
observation says whether the secret is higher, lower, or the guess is correct. The
episode ends (``terminated``, reward 1.0, ``won``) on the correct guess, or is truncated
after ``max_steps`` guesses. The admissible actions are ``guess k`` for every ``k`` still
consistent with the answers so far, so they shrink as the agent narrows the range down.

Two task types: ``small`` (secret in ``1..small_high``, default 10) and ``large``
(``1..large_high``, default 100).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from skillzero.contracts.env import Task, TextEnv

TASK_TYPES: tuple[str, ...] = ("small", "large")
SPLITS: dict[str, tuple[str, int]] = {
    # split -> (config key holding its size, default size)
    "train": ("num_tasks", 64),
    "valid": ("num_val_tasks", 16),
}
DEFAULT_HIGH = {"small": 10, "large": 100}
DEFAULT_MAX_STEPS = 12

# ``guess N``; the digit cap keeps int() away from Python's huge-integer limit.
_GUESS_RE = re.compile(r"^\s*guess\s+([+-]?\d{1,12})\s*$", re.IGNORECASE)


def config_value(cfg: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    """``cfg[key]`` for a dict or an OmegaConf node, ``default`` when absent or null."""
    if cfg is None:
        return default
    value = cfg.get(key, default)
    return default if value is None else value


def parse_guess(action: str) -> int | None:
    """The number in ``guess N`` (case and surrounding spaces ignored), else ``None``."""
    match = _GUESS_RE.match(action)
    return int(match.group(1)) if match else None


def guess_actions(low: int, high: int) -> list[str]:
    """The actions ``guess low`` .. ``guess high``."""
    return [f"guess {k}" for k in range(low, high + 1)]


def describe_task(task: Task) -> str:
    """The task as the agent is told it (never the secret)."""
    low, high = int(task.payload["low"]), int(task.payload["high"])
    return (
        f"I am thinking of a secret whole number between {low} and {high} (inclusive). "
        "Find it: each turn, guess a number and I will tell you whether the secret is "
        "higher, lower, or correct."
    )


def list_tasks(env_cfg: Mapping[str, Any] | None, split: str) -> list[Task]:
    """The tasks of ``split`` (``train`` or ``valid``), in a stable order.

    The secrets come from a RNG seeded by ``task_seed`` and the split name, so the list is
    the same on every run and machine; task types alternate ``small``, ``large``, ...
    """
    if split not in SPLITS:
        raise ValueError(
            f"numberguess has no split {split!r}; available splits: {', '.join(SPLITS)}"
        )
    size_key, default_size = SPLITS[split]
    count = int(config_value(env_cfg, size_key, default_size))
    if count < 0:
        raise ValueError(f"numberguess: {size_key} must be >= 0, got {count}")
    highs = {
        "small": int(config_value(env_cfg, "small_high", DEFAULT_HIGH["small"])),
        "large": int(config_value(env_cfg, "large_high", DEFAULT_HIGH["large"])),
    }
    for task_type, high in highs.items():
        if high < 1:
            raise ValueError(f"numberguess: {task_type}_high must be >= 1, got {high}")
    seed = config_value(env_cfg, "task_seed", 0)
    rng = random.Random(f"numberguess:{seed}:{split}")
    tasks = []
    for i in range(count):
        task_type = TASK_TYPES[i % len(TASK_TYPES)]
        high = highs[task_type]
        tasks.append(
            Task(
                task_id=f"numberguess/{split}/{i:04d}",
                task_type=task_type,
                split=split,
                payload={"low": 1, "high": high, "secret": rng.randint(1, high)},
            )
        )
    return tasks


class NumberGuessEnv(TextEnv):
    """Plays one "guess the number" task per episode.

    ``env_cfg`` is the env's config mapping (``cfg.env``); only ``max_steps`` is read.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(max_steps=int(config_value(env_cfg, "max_steps", DEFAULT_MAX_STEPS)))
        self.secret = 0
        self.low = self.high = 0
        self.guesses: list[int] = []

    @property
    def admissible_actions(self) -> list[str]:
        return guess_actions(self.low, self.high)

    def _reset(self, task: Task, seed: int | None) -> tuple[str, dict[str, Any]]:
        payload = task.payload
        self.low, self.high = int(payload["low"]), int(payload["high"])
        self.secret = int(payload["secret"])
        if not self.low <= self.secret <= self.high:
            raise ValueError(
                f"task {task.task_id!r}: secret {self.secret} is outside [{self.low}, {self.high}]"
            )
        self.guesses = []
        observation = (
            f"I am thinking of a whole number between {self.low} and {self.high}. "
            f"You have {self.max_steps} guesses. Answer with `guess N`."
        )
        return observation, {"won": False, "admissible_actions": self.admissible_actions}

    def _step(self, action: str) -> tuple[str, float, bool, dict[str, Any]]:
        guess = parse_guess(action)
        if guess is None:
            shown = action if len(action) <= 40 else action[:37] + "..."
            observation = (
                f"{shown!r} is not a valid action. Answer `guess N` with a whole number N "
                f"between {self.low} and {self.high}."
            )
            return observation, 0.0, False, self._info(won=False, valid=False)
        self.guesses.append(guess)
        if guess == self.secret:
            observation = f"guess {guess}: correct! The number was {self.secret}."
            info = self._info(won=True, valid=True)
            info["admissible_actions"] = []
            return observation, 1.0, True, info
        if guess < self.secret:
            self.low = max(self.low, guess + 1)
            observation = f"guess {guess}: higher. The number is greater than {guess}."
        else:
            self.high = min(self.high, guess - 1)
            observation = f"guess {guess}: lower. The number is less than {guess}."
        return observation, 0.0, False, self._info(won=False, valid=True)

    def _info(self, *, won: bool, valid: bool) -> dict[str, Any]:
        return {
            "won": won,
            "admissible_actions": self.admissible_actions,
            "valid_action": valid,
            "num_guesses": len(self.guesses),
        }


def binary_search_action(admissible_actions: Sequence[str]) -> str:
    """The middle admissible guess: a perfect policy, handy for tests and demos."""
    numbers = sorted(n for n in map(parse_guess, admissible_actions) if n is not None)
    if not numbers:
        raise ValueError("no admissible guess left")
    return f"guess {numbers[(len(numbers) - 1) // 2]}"
