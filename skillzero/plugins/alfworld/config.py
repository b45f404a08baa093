"""The structured schema of the ``env=alfworld`` config entry.

Imported at plugin discovery (it is the env's config schema), so it must stay light: no
TextWorld, no alfworld. Where the games are is :mod:`~skillzero.plugins.alfworld.data`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# cfg_get is re-exported: the plugin's modules read their settings with it
from skillzero.core.config import EnvConfig
from skillzero.core.config import cfg_get as cfg_get


@dataclass
class GeneratedGamesConfig:
    """The game set generated on first use when no ALFWorld games are found
    (``env.generated``; see ``skillzero.plugins.alfworld.generate.default``).

    ``seed``: the set's master seed (``None``: 1). ``train`` / ``valid``: games in
    ``train`` and in each of ``valid_seen`` and ``valid_unseen`` (``None``: 240 and
    24). ``max_receptacles``: rooms cut down to this many receptacles (at least 4),
    keeping what each task needs (``None``: whole rooms, as the benchmark's games).
    ``max_object_types``: only the goal object's type and up to this many minus one
    other movable types are placed (``None``: every type the room has). Each
    combination is its own cached folder."""

    seed: int | None = None
    train: int | None = None
    valid: int | None = None
    max_receptacles: int | None = None
    max_object_types: int | None = None


@dataclass
class AlfworldConfig(EnvConfig):
    """Settings of the ALFWorld env, on top of those every env has (:class:`EnvConfig`).

    Data
        ``data_dir``: the data root (the folder holding ``json_2.1.1/``); ``None`` means
        ``$ALFWORLD_DATA``, then ``~/.cache/alfworld`` (where ``alfworld-download`` puts
        it), then the generated default game set (made on first use by the env's
        set-up, ``skillzero.plugins.alfworld.setup``; not when ``$ALFWORLD_DATA`` is
        set). ``generated``: which set to generate and use in that last case
        (:class:`GeneratedGamesConfig`). ``train_split`` / ``val_split``: folders under
        ``json_2.1.1``.
        ``task_types``: ALFWorld task-type ids to keep (1 pick, 2 look, 3 clean, 4 heat,
        5 cool, 6 pick two), as ALFWorld's own ``env.task_types``.
    Episodes
        ``max_steps``: steps before truncation. ``won_reward``: reward of the winning step
        (the reward is ``won_reward * won``). ``engine_cache``: memoise the engine's pure
        computations in each worker process (same results, several times faster; see
        ``skillzero.plugins.alfworld.engine``). ``fast_noop``: answer an action that is
        not one of the engine's commands with the engine's own ``Nothing happens.``
        without running the engine.
    Prompt and parsing
        ``history_length``: past (observation, action) pairs shown.
        ``response_format``: ``standard`` (``<think>...</think><action>...</action>``, as
        verl-agent) or ``compact`` (``<action>...</action>`` only, 24 new tokens; for
        small models on CPU). ``require_think``: a response without a
        ``<think>...</think>`` block is invalid (``null``: when the format asks for
        one). ``reject_cjk``: a response with CJK ideographs is invalid. ``lowercase``:
        the action is lower-cased. ``require_admissible``: an action that is not one of
        the admissible commands is invalid (verl-agent does not check this; off by
        default).
        ``invalid_action_penalty``: subtracted by the trainer for each invalid response.
    Expert (``skillzero sft``)
        ``expert_detours``: the expert searches up to this many other receptacles that
        could hold the object before following the game's walkthrough (0: the plain
        walkthrough; see ``skillzero.plugins.alfworld.expert``). ``expert_seed``: seed
        of those choices.
    """

    # only what differs from EnvConfig; the rest (max_steps, history_length, ...) is
    # inherited
    name: str = "alfworld"
    num_groups: int = 16
    group_size: int = 8
    val_split: str = "valid_unseen"
    data_dir: str | None = None
    generated: GeneratedGamesConfig = field(default_factory=GeneratedGamesConfig)
    task_types: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6])
    won_reward: float = 10.0
    engine_cache: bool = True
    fast_noop: bool = True
    require_think: bool | None = None
    reject_cjk: bool = True
    lowercase: bool = True
    require_admissible: bool = False
    expert_detours: int = 2
    expert_seed: int = 0
