"""The hooks of the SKILL0 plugin (entry point ``skill0``).

Import-light on purpose: the callback is a ``"module:attribute"`` string that skillzero
imports on first use.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl

CONFIG_PATH = "pkg://skillzero.plugins.skill0.conf"


@hookimpl
def register_trainer_callbacks(register: Any) -> None:
    register(
        "skill0_curriculum",
        "skillzero.plugins.skill0.callback:Skill0Curriculum",
        description="SKILL0: withdraw skill files over training, ranked by validation helpfulness",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/algo/skill0.yaml to Hydra's search path: `algo=skill0`.
    register(CONFIG_PATH)
