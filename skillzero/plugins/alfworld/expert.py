"""ALFWorld experts for ``skillzero sft``: the planner walkthrough, with or without search.

A game's walkthrough (``game.tw-pddl``) is a planner's plan: it knows where every object
is, so its first step walks straight to the object's receptacle. A policy that sees only
the current observation cannot learn that step from the walkthrough alone: the object's
place is not in the prompt, and a walkthrough never shows what to do where the object is
not. :class:`SearchingExpert` adds what a policy can learn: before the walkthrough it
visits up to ``detours`` other receptacles where the object class may lie (ALFRED's
object-receptacle constraints, as ALFWorld's hand-coded expert uses them), opening the
closed ones, finds nothing there, and moves on. Its demonstrations therefore contain
"not here, look elsewhere" steps and arrivals where the object is in view, which is the
search a memoryless policy can imitate.

The detours are played in the real engine in the calling process, so a detour that would
reveal an instance of the object (the plan would then walk past it) is never used.
Choices are deterministic per (task, seed).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from skillzero.core.env import Task
from skillzero.plugins.alfworld.config import cfg_get
from skillzero.plugins.alfworld.games import read_walkthrough

_TAKE = re.compile(r"^take (\S+) \d+ from (.+)$")
_ROOM = re.compile(r"you see (.+?)\.\s*$", re.MULTILINE)


def receptacles_in_view(first_observation: str) -> list[str]:
    """The receptacle names (``"cabinet 1"``) listed by an ALFWorld first observation
    ("Looking quickly around you, you see a cabinet 1, a drawer 2, and a shelf 1.")."""
    marker = first_observation.find("Looking quickly around you")
    text = first_observation[marker:] if marker >= 0 else first_observation
    match = _ROOM.search(text)
    if not match:
        return []
    names = []
    for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", match.group(1)):
        part = part.strip()
        for article in ("a ", "an "):
            if part.startswith(article):
                part = part[len(article) :]
        if re.fullmatch(r"[a-z]+ \d+", part):
            names.append(part)
    return names


def object_in_view(observation: str, object_class: str) -> bool:
    """Whether ``observation`` shows an instance of ``object_class`` (``"mug 2"``)."""
    return re.search(rf"\b{re.escape(object_class)} \d+\b", observation) is not None


def _receptacle_classes_for(object_class: str) -> set[str]:
    """Receptacle classes (lower case) that ALFRED allows ``object_class`` in."""
    from alfworld.gen import constants

    classes = set()
    for receptacle, objects in constants.VAL_RECEPTACLE_OBJECTS.items():
        if any(o.lower() == object_class for o in objects):
            classes.add(receptacle.lower())
    return classes


class SearchingExpert:
    """The walkthrough, preceded by up to ``env.expert_detours`` searches of other
    receptacles that could hold the object (see the module docstring).

    ``env_cfg``: ``expert_detours`` (default 2; 0 gives the plain walkthrough), the seed
    of the choices (``expert_seed``, default 0) and ``max_steps`` (detours are added only
    while the whole plan fits the episode). The number of detours of a task is drawn
    uniformly from 0..``expert_detours``, so the demonstrations mix direct finds and
    searches.
    """

    def __init__(self, env_cfg: Mapping[str, Any] | Any | None = None) -> None:
        self.max_detours = max(0, int(cfg_get(env_cfg, "expert_detours", 2)))
        self.seed = int(cfg_get(env_cfg, "expert_seed", 0))
        self.max_steps = int(cfg_get(env_cfg, "max_steps", 50))
        self.env_cfg = env_cfg
        self._env: Any = None

    def actions(self, task: Task) -> list[str] | None:
        game_file = task.payload.get("game_file") if task.payload else None
        if not game_file:
            return None
        try:
            plan = read_walkthrough(game_file)
        except (OSError, ValueError):
            return None
        if not plan or self.max_detours == 0:
            return plan or None
        try:
            return self._with_detours(task, plan)
        except Exception:  # the engine failed on this game: the plain plan
            return plan

    def _rng(self, task: Task) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}:{task.task_id}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _with_detours(self, task: Task, plan: Sequence[str]) -> list[str]:
        take = next((m for m in map(_TAKE.match, plan) if m), None)
        if take is None:
            return list(plan)
        object_class, target = take.group(1), take.group(2)
        rng = self._rng(task)
        wanted = rng.randint(0, self.max_detours)
        if wanted == 0:
            return list(plan)
        env = self._engine_env()
        observation, _info = env.reset(seed=0, options={"task": task})
        allowed = _receptacle_classes_for(object_class)
        candidates = [
            r
            for r in receptacles_in_view(observation)
            if r != target and r.rsplit(" ", 1)[0] in allowed
        ]
        rng.shuffle(candidates)
        detours: list[str] = []
        searched: list[str] = []
        for receptacle in candidates:
            # A detour costs one or two steps; the whole plan must fit the episode.
            if len(searched) == wanted or len(detours) + len(plan) + 2 > self.max_steps:
                break
            steps = [f"go to {receptacle}"]
            observation, _r, done, _t, info = env.step(steps[0])
            if done:
                break
            if "is closed" in observation and f"open {receptacle}" in info.get(
                "admissible_actions", ()
            ):
                steps.append(f"open {receptacle}")
                observation, _r, done, _t, info = env.step(steps[1])
            if object_in_view(observation, object_class):
                # The object is here too: a demonstration walking past it would teach
                # the wrong thing, and the plan names another instance. Stop searching.
                break
            detours.extend(steps)
            searched.append(receptacle)
        return detours + list(plan)

    def _engine_env(self) -> Any:
        if self._env is None:
            from skillzero.plugins.alfworld.env import AlfworldEnv

            self._env = AlfworldEnv(self.env_cfg)
            # Room for the detours and the plan, whatever the episode limit.
            self._env.max_steps = 1000
        return self._env

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
