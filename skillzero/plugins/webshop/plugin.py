"""The hooks of the WebShop plugin (entry point ``webshop``).

Import-light on purpose: components are ``"module:attribute"`` strings that skillzero
imports on first use, so discovering plugins never imports numpy, bm25s or spaCy. Only
the config schema and the command's argument set-up are imported here.
"""

from __future__ import annotations

from typing import Any

from skillzero import hookimpl
from skillzero.plugins.webshop.check import setup_command
from skillzero.plugins.webshop.config import TASK_TYPES, WebshopConfig

CONFIG_PATH = "pkg://skillzero.plugins.webshop.conf"


@hookimpl
def register_envs(register: Any) -> None:
    register(
        "webshop",
        env="skillzero.plugins.webshop.env:WebshopEnv",
        tasks="skillzero.plugins.webshop.data:list_tasks",
        prompt="skillzero.plugins.webshop.prompt:WebshopPrompt",
        parser="skillzero.plugins.webshop.prompt:WebshopActionParser",
        task_types=TASK_TYPES,
        config=WebshopConfig,
        metrics="skillzero.plugins.webshop.metrics:episode_metrics",
        expert="skillzero.plugins.webshop.check:OracleExpert",
        description="WebShop online shopping, simulated in process (BM25 search, the "
        "original reward; default: a generated 1,000-product shop)",
    )


@hookimpl
def register_config_paths(register: Any) -> None:
    # Adds conf/env/webshop.yaml to Hydra's search path: `env=webshop`.
    register(CONFIG_PATH)


@hookimpl
def register_commands(register: Any) -> None:
    register(
        "webshop",
        setup_command,
        help="WebShop tools: `check` buys every goal's product with an oracle, `build` "
        "compiles a catalogue, `generate` writes a new catalogue",
    )
