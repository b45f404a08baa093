"""The hooks of the Search-QA plugin (entry point ``search``).

Import-light on purpose: components are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports faiss, torch or FastAPI.
Only the config schema and the command's argument set-up are imported here.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl
from skillzero.plugins.search.cli import setup_command
from skillzero.plugins.search.config import SearchConfig
from skillzero.plugins.search.datasets import TASK_TYPES

CONFIG_PATH = "pkg://skillzero.plugins.search.conf"


def _optional_fields() -> dict[str, Any]:
    """Env fields this version of skillzero may not know yet (the SFT expert)."""
    from skillzero.registry.specs import EnvSpec

    if "expert" in EnvSpec.__dataclass_fields__:
        return {"expert": "skillzero.plugins.search.datasets:SearchExpert"}
    return {}


@hookimpl
def register_envs(register: Any) -> None:
    register(
        "search",
        **_optional_fields(),
        env="skillzero.plugins.search.env:SearchEnv",
        tasks="skillzero.plugins.search.datasets:list_tasks",
        prompt="skillzero.plugins.search.prompt:SearchPrompt",
        parser="skillzero.plugins.search.prompt:SearchActionParser",
        task_types=TASK_TYPES,
        config=SearchConfig,
        metrics="skillzero.plugins.search.metrics:episode_metrics",
        description="Search-QA with a retrieval server (Search-R1 protocol; exact-match reward)",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/env/search.yaml to Hydra's search path: `env=search`.
    register(CONFIG_PATH)


@hookimpl
def register_commands(register: Any) -> None:
    register(
        "search",
        setup_command,
        help="Search-QA tools: `serve` a retrieval index, build an `index`, `generate` the "
        "QA world, `gold-corpus`, `query` a server",
    )
