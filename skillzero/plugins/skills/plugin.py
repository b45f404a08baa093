"""The hooks of the skills plugin (entry point ``skills``).

Import-light on purpose: providers are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports torch or transformers.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl

CONFIG_PATH = "pkg://skillzero.plugins.skills.conf"
_PROVIDERS = "skillzero.plugins.skills.providers"


@hookimpl
def register_skill_providers(register: Any) -> None:
    register(
        "category",
        f"{_PROVIDERS}:make_category_provider",
        description="general skills + the bank's files for the task type (SKILL0 routing)",
    )
    register(
        "all",
        f"{_PROVIDERS}:make_all_provider",
        description="every skill of the bank",
    )
    register(
        "embedding",
        f"{_PROVIDERS}:make_embedding_provider",
        description="top-k general and task skills by all-MiniLM-L6-v2 similarity to the task",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/skills/{category,all,embedding}.yaml: `skills=category` and so on.
    register(CONFIG_PATH)
