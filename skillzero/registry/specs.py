"""What a plugin registers: one spec class per component kind.

A spec holds *factories*, never built objects. A factory is a callable or a
``"package.module:attribute"`` string; :func:`resolve` imports strings on first use, so
discovering plugins stays cheap (no torch, no engine imports).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Factory = Callable[..., Any] | str


def resolve(factory: Factory) -> Callable[..., Any]:
    """Turn a factory reference into the callable it names."""
    if callable(factory):
        return factory
    if not isinstance(factory, str) or ":" not in factory:
        raise TypeError(
            f"a factory must be a callable or a 'module:attribute' string, got {factory!r}"
        )
    module_name, _, attr_path = factory.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{factory!r} names {obj!r}, which is not callable")
    return obj


@dataclass(frozen=True)
class ComponentSpec:
    """A named component registered by a plugin.

    ``plugin`` is filled in by the registry (the entry-point name of the plugin that
    registered it); ``config`` is an optional dataclass schema for the component's
    settings.
    """

    name: str
    factory: Factory
    description: str = ""
    config: type | None = None
    plugin: str = ""

    def load(self) -> Callable[..., Any]:
        return resolve(self.factory)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)


@dataclass(frozen=True)
class EnvSpec:
    """An environment (benchmark); see ``register_envs`` for the meaning of each field."""

    name: str
    env: Factory
    tasks: Factory
    prompt: Factory
    parser: Factory
    task_types: tuple[str, ...] = ()
    config: type | None = None
    metrics: Factory | None = None
    expert: Factory | None = None
    description: str = ""
    plugin: str = ""

    def make_env(self, env_cfg: Any) -> Any:
        return resolve(self.env)(env_cfg)

    def list_tasks(self, env_cfg: Any, split: str) -> Any:
        return resolve(self.tasks)(env_cfg, split)

    def make_prompt_builder(self, env_cfg: Any) -> Any:
        return resolve(self.prompt)(env_cfg)

    def make_action_parser(self, env_cfg: Any) -> Any:
        return resolve(self.parser)(env_cfg)

    def episode_metrics(self, records: list[dict[str, Any]]) -> dict[str, float] | None:
        """The env's own episode metrics (None when it registered no ``metrics``)."""
        return None if self.metrics is None else resolve(self.metrics)(records)

    def make_expert(self, env_cfg: Any) -> Any:
        """The env's expert (see ``register_envs``); None when it registered none."""
        return None if self.expert is None else resolve(self.expert)(env_cfg)


@dataclass(frozen=True)
class CommandSpec:
    """A ``skillzero`` subcommand contributed by a plugin."""

    name: str
    setup: Callable[..., Any]
    help: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class ConfigPathSpec:
    """A Hydra config search path contributed by a plugin."""

    path: str
    plugin: str = ""

    @property
    def name(self) -> str:
        return self.path


@dataclass(frozen=True)
class Kind:
    """One kind of component: its hook, the spec it builds and how it is named in text."""

    name: str
    hook: str
    spec: type
    singular: str
    positional: tuple[str, ...] = field(default=("name", "factory"))


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("envs", "register_envs", EnvSpec, "env", ("name",)),
        Kind("skill_providers", "register_skill_providers", ComponentSpec, "skill provider"),
        Kind("rollout_backends", "register_rollout_backends", ComponentSpec, "rollout backend"),
        Kind("loss_terms", "register_loss_terms", ComponentSpec, "loss term"),
        Kind(
            "advantage_estimators",
            "register_advantage_estimators",
            ComponentSpec,
            "advantage estimator",
        ),
        Kind("trainer_callbacks", "register_trainer_callbacks", ComponentSpec, "trainer callback"),
        Kind("env_workers", "register_env_workers", ComponentSpec, "env worker backend"),
        Kind("commands", "register_commands", CommandSpec, "command", ("name", "setup")),
        Kind("config_paths", "register_config_paths", ConfigPathSpec, "config path", ("path",)),
    )
}
