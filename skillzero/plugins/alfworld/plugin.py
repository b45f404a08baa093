"""The hooks of the ALFWorld plugin (entry point ``alfworld``).

Import-light on purpose: components are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports TextWorld or alfworld. Only
the config schema and the command's argument set-up are imported here.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl
from skillzero.plugins.alfworld.check import setup_command
from skillzero.plugins.alfworld.config import AlfworldConfig
from skillzero.plugins.alfworld.games import TASK_TYPE_NAMES

CONFIG_PATH = "pkg://skillzero.plugins.alfworld.conf"


@hookimpl
def register_envs(register: Any) -> None:
    register(
        "alfworld",
        env="skillzero.plugins.alfworld.env:AlfworldEnv",
        tasks="skillzero.plugins.alfworld.setup:list_tasks",
        prompt="skillzero.plugins.alfworld.prompt:AlfworldPrompt",
        parser="skillzero.plugins.alfworld.prompt:AlfworldActionParser",
        task_types=TASK_TYPE_NAMES,
        config=AlfworldConfig,
        metrics="skillzero.plugins.alfworld.metrics:episode_metrics",
        expert="skillzero.plugins.alfworld.expert:SearchingExpert",
        description="ALFWorld household tasks on the TextWorld engine (3,553 train games)",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/env/alfworld.yaml to Hydra's search path: `env=alfworld`.
    register(CONFIG_PATH)


@hookimpl
def register_commands(register: Any) -> None:
    register(
        "alfworld",
        setup_command,
        help="ALFWorld tools: `check` plays every game's walkthrough to test an install, "
        "`generate` writes new games, `stats` describes a game set",
    )
