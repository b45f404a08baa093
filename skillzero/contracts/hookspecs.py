"""Hook specifications: the only way plugins add components to skillzero.

Every hook receives a ``register`` callback, in the style of ``llm``: a plugin calls it
once per component it provides. Registration is cheap and must stay cheap: pass a
*factory* (a callable, or a ``"package.module:attribute"`` string that is imported only
when the component is first used) rather than building anything heavy. Plugin discovery
therefore never imports torch, vLLM or a benchmark engine.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`::

    from skillzero import hookimpl

    @hookimpl
    def register_envs(register):
        register(
            "numberguess",
            env="skillzero_numberguess.env:NumberGuessEnv",
            tasks="skillzero_numberguess.env:list_tasks",
            prompt="skillzero_numberguess.prompt:NumberGuessPrompt",
            parser="skillzero_numberguess.prompt:parse_action",
            task_types=("small", "large"),
        )

and is declared in its ``pyproject.toml`` under the entry-point group ``skillzero``::

    [project.entry-points.skillzero]
    numberguess = "skillzero_numberguess.plugin"

The keyword arguments each ``register`` accepts are the fields of the matching spec
class in :mod:`skillzero.registry.specs`. Registering a name that another plugin already
registered for the same kind is an error that names both plugins.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT_NAME = "skillzero"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[..., None]


@hookspec
def register_envs(register: Register) -> None:
    """Register multi-turn text environments (benchmarks).

    ``register(name, *, env, tasks, prompt, parser, task_types=(), config=None,
    metrics=None, expert=None, description="")`` where

    - ``env``: factory ``(env_cfg: Mapping) -> TextEnv``. It runs inside env-pool worker
      processes, so it must be importable by reference (a module-level callable or a
      ``"module:attr"`` string), never a lambda or closure.
    - ``tasks``: factory ``(env_cfg: Mapping, split: str) -> Sequence[Task]`` listing the
      tasks of a split (``train``, ``valid_seen``, ...), in a stable order.
    - ``prompt``: factory ``(env_cfg: Mapping) -> PromptBuilder``.
    - ``parser``: factory ``(env_cfg: Mapping) -> ActionParser``.
    - ``task_types``: the categories tasks belong to; skill routing and per-type metrics
      use them.
    - ``config``: optional dataclass, the structured schema of the env's config group
      entry; composed configs are validated against it.
    - ``metrics``: optional factory ``(records: list[dict]) -> dict[str, float]`` that
      aggregates finished episodes (dicts with ``task_type``, ``task_id``, ``won``,
      ``length``, ``valid_actions``) into the env's own metrics, e.g. success per task
      type under the names papers use. Without it the trainer reports success overall
      and per ``task_type``.
    - ``expert``: optional factory ``(env_cfg: Mapping) -> Expert``, where
      ``Expert.actions(task) -> Sequence[str] | None`` is a sequence of actions that
      solves ``task`` from its start (e.g. a planner's walkthrough), or ``None`` when it
      has none for that task. ``skillzero sft`` replays these plans in the env to build
      supervised samples; it also needs the parser's ``render`` (see
      :class:`skillzero.contracts.env.ActionParser`). An optional ``close()`` is called
      once all plans are made (an expert that plays the env itself frees it there).

    See :mod:`skillzero.contracts.env` for the contracts.
    """


@hookspec
def register_skill_providers(register: Register) -> None:
    """Register skill providers: components that choose skills for a task.

    ``register(name, factory, *, config=None, description="")`` with
    ``factory(skills_cfg: Mapping) -> SkillProvider`` (see :mod:`skillzero.contracts.skills`).
    """


@hookspec
def register_rollout_backends(register: Register) -> None:
    """Register rollout (generation) backends such as transformers or vLLM.

    ``register(name, factory, *, config=None, description="")`` with
    ``factory(model_cfg: Mapping, backend_cfg: Mapping) -> RolloutBackend``
    (see :mod:`skillzero.contracts.rollout`).
    """


@hookspec
def register_loss_terms(register: Register) -> None:
    """Register loss terms. An algorithm is a list of loss terms with coefficients.

    ``register(name, factory, *, config=None, description="")`` with
    ``factory(**params) -> LossTerm`` (see :mod:`skillzero.contracts.losses`); ``params``
    come from the term's entry in ``algo.loss_terms``.
    """


@hookspec
def register_advantage_estimators(register: Register) -> None:
    """Register advantage estimators (GRPO, GiGPO, ...).

    ``register(name, factory, *, config=None, description="")`` with
    ``factory(**params) -> AdvantageEstimator`` (see :mod:`skillzero.contracts.losses`).
    """


@hookspec
def register_trainer_callbacks(register: Register) -> None:
    """Register trainer callbacks: code that runs at fixed points of the training loop
    and may carry state saved in checkpoints (a skill curriculum, a teacher scorer, ...).

    ``register(name, factory, *, config=None, description="")`` with
    ``factory(**params) -> TrainerCallback`` (see :mod:`skillzero.contracts.callbacks`).
    """


@hookspec
def register_env_workers(register: Register) -> None:
    """Register env-pool worker backends: where the environments of a pool run.

    ``register(name, factory, *, description="")`` with
    ``factory(**options) -> WorkerBackend`` (see :mod:`skillzero.core.pool`). The
    first-party plugin registers ``process`` (local worker processes) and ``inline``
    (same process, for debugging).
    """


@hookspec
def register_config_paths(register: Register) -> None:
    """Register Hydra config search paths, so that a plugin adds entries to the config
    groups (``env=myenv``, ``algo=myalgo``) without any edit to skillzero.

    ``register(path)`` with a Hydra search-path string, usually
    ``"pkg://my_plugin.conf"`` for a package that holds ``env/myenv.yaml`` and so on.
    """


@hookspec
def register_commands(register: Register) -> None:
    """Register subcommands of the ``skillzero`` command line.

    ``register(name, setup, *, help="")`` where ``setup(parser: argparse.ArgumentParser)``
    adds the command's arguments (or sub-subcommands) and sets a ``handler`` default:
    ``parser.set_defaults(handler=fn)`` with ``fn(args) -> int`` (the exit status).
    """


ALL_HOOKS: tuple[str, ...] = (
    "register_envs",
    "register_skill_providers",
    "register_rollout_backends",
    "register_loss_terms",
    "register_advantage_estimators",
    "register_trainer_callbacks",
    "register_env_workers",
    "register_config_paths",
    "register_commands",
)
