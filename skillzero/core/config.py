"""Structured configs and Hydra composition.

The primary config (``skillzero/configs/config.yaml``) composes one entry from each
group: ``env``, ``algo``, ``model``, ``backend``, ``skills`` and ``trainer``. Plugins add
group entries through ``register_config_paths``; :class:`SkillzeroSearchPathPlugin`
puts those paths on Hydra's search path (Hydra finds it through the ``hydra_plugins``
namespace package shipped with skillzero).

Composed configs are validated against the dataclasses below (an env may register its
own schema, a subclass of :class:`EnvConfig`), so a wrong type or a misspelled key fails
with a message naming the key, before anything expensive starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

# re-exported: plugins and the loop read settings with it
from skillzero.contracts.settings import cfg_get as cfg_get

CONFIG_MODULE = "skillzero.configs"
PRIMARY_CONFIG = "config"
GROUPS: tuple[str, ...] = ("env", "algo", "model", "backend", "skills", "trainer", "experiment")


class ConfigError(ValueError):
    """A config that cannot be composed or does not match its schema."""


# ----------------------------------------------------------------------------------------
# Schemas
# ----------------------------------------------------------------------------------------


@dataclass
class PoolConfig:
    """Where and how the envs of a pool run. ``params`` go to the worker backend (e.g.
    ``ray``: ``address``, ``num_cpus`` per actor; see ``skillzero.core.ray_pool``)."""

    workers: int = 2
    backend: str = "process"
    receive_timeout: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class EnvConfig:
    """Settings every environment has. Env plugins subclass it for their own keys."""

    name: str = MISSING
    num_groups: int = 4
    group_size: int = 4
    max_steps: int = 50
    history_length: int = 2
    invalid_action_penalty: float = 0.1
    train_split: str = "train"
    val_split: str = "valid"
    max_prompt_tokens: int = 2048
    # "standard": the benchmark's published answer format (verl-agent's); "compact": a
    # shorter one for small models on CPU, where the env defines one
    response_format: str = "standard"
    pool: PoolConfig = field(default_factory=PoolConfig)


@dataclass
class ComponentRef:
    """A registered component by name, with its constructor parameters."""

    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossTermConfig:
    """One loss term of an algorithm: ``coef * term(**params)``."""

    name: str = MISSING
    coef: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class AlgoConfig:
    """An algorithm: an advantage estimator, loss terms and trainer callbacks."""

    name: str = MISSING
    advantage: ComponentRef = field(default_factory=lambda: ComponentRef(name="grpo"))
    loss_terms: list[LossTermConfig] = field(default_factory=list)
    callbacks: list[ComponentRef] = field(default_factory=list)
    dynamic_sampling: bool = False
    max_resample_rounds: int = 10
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The policy model. ``path`` is a Hugging Face folder or hub name."""

    name: str = MISSING
    path: str | None = None
    dtype: str = "float32"
    # matrix products in this dtype (torch.autocast) with weights in `dtype`: null,
    # bfloat16, float16, or auto (bfloat16 where the hardware has it: AVX512-BF16/AMX
    # CPUs, recent GPUs). Trainer and transformers rollout alike (core/models.py).
    compute_dtype: str | None = None
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    # train only the top N decoder blocks and the final norm (embeddings and LM head
    # frozen); null trains every weight
    trainable_layers: int | None = None
    trust_remote_code: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SamplingConfig:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    stop: list[str] = field(default_factory=list)


@dataclass
class BackendConfig:
    """A rollout backend and its sampling settings (train and validation)."""

    name: str = MISSING
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    val_sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=0.4))
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SkillsConfig:
    """Which skill provider fills the prompt's skill slot (``none`` for zero skills)."""

    provider: str = "none"
    bank: str | None = None
    budget_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW with a linear warm-up, then a constant (or cosine-decayed) learning rate."""

    lr: float = 1e-6
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 0
    scheduler: str = "constant"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0


@dataclass
class FSDPConfig:
    """FSDP2 settings. ``mixed_precision``: null (parameters in ``model.dtype``) or
    ``bf16``/``fp16`` (compute in that dtype, gradients reduced in float32)."""

    mixed_precision: str | None = None
    reshard_after_forward: bool = True
    cpu_offload: bool = False
    # one rank: keep the plain module (FSDP would only add copies) unless true
    shard_single_rank: bool = False


@dataclass
class RolloutConfig:
    """Rollout engines (``skillzero.core.multi_engine``). ``engines`` > 1 runs that many
    copies of the backend as Ray actors (the ``ray`` extra), each asking for ``num_cpus``
    and ``num_gpus`` (null: 1 when the cluster has GPUs), in the cluster at ``address``
    (null: ``$RAY_ADDRESS``, else a local one)."""

    engines: int = 1
    num_cpus: float = 1.0
    num_gpus: float | None = None
    address: str | None = None
    startup_timeout: float = 1800.0


@dataclass
class TrainerConfig:
    """The training loop: steps, batching, checkpoints, validation, logging."""

    total_steps: int = 100
    seed: int = 0
    device: str = "auto"
    ppo_epochs: int = 1
    minibatch_size: int = 64
    microbatch_size: int = 8
    log_prob_microbatch_size: int | None = None
    recompute_log_probs: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    output_dir: str = "runs/${now:%Y%m%d-%H%M%S}"
    resume: bool = False
    save_every: int = 0
    keep_checkpoints: int = 2
    val_every: int = 0
    val_before_train: bool = False
    val_tasks: int = 12
    val_envs: int = 8
    loggers: list[str] = field(default_factory=lambda: ["console", "jsonl"])
    wandb_project: str = "skillzero"
    plots: bool = True
    progress: bool = True
    log_prompts: int = 2
    deterministic: bool = False
    # "none", "sft": start from the cached supervised warm start (built on first use from
    # the `sft` settings; see skillzero.core.sft), or "auto": sft when the env has an
    # expert (or sft.source names recorded episodes), else none
    warm_start: str = "none"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SFTConfig:
    """``skillzero sft`` and the ``trainer.warm_start=sft`` of ``skillzero train``.

    ``source``: ``expert`` (the env's expert plans) or the path of recorded episodes (a
    ``skillzero eval`` JSON report or a JSONL file). ``max_tasks``: demonstrations from
    N tasks of ``env.train_split``, round-robin over task types (null: all).
    ``heldout_tasks``: tasks kept out of training to measure held-out loss and action
    accuracy. ``validate_after``: play the validation tasks after training too (the
    base model is always validated first); false leaves the trained policy's first
    validation to the RL run that starts from it. One optimiser step per
    ``batch_size`` samples; ``sft.lr`` / ``warmup_steps`` / ``scheduler`` /
    ``min_lr_ratio`` replace ``trainer.optim``'s for the SFT run.
    """

    source: str = "expert"
    only_won: bool = True
    max_tasks: int | None = None
    heldout_tasks: int = 8
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 1e-4
    warmup_steps: int = 2
    scheduler: str = "cosine"
    min_lr_ratio: float = 0.1
    eval_every: int = 10
    validate_after: bool = True
    replay_envs: int = 8
    cache_dir: str | None = None


@dataclass
class EvalConfig:
    """``skillzero eval``: which weights, which split, how many tasks.

    ``checkpoint`` is a checkpoint folder written by the trainer (its ``model``
    subfolder is loaded) or a Hugging Face model folder; null evaluates ``model``.
    """

    checkpoint: str | None = None
    split: str | None = None
    num_tasks: int | None = None
    num_envs: int = 8
    seed: int = 0
    output: str | None = None


@dataclass
class SkillzeroConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    skills: SkillsConfig = field(default_factory=SkillsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)


# ----------------------------------------------------------------------------------------
# Composition and validation
# ----------------------------------------------------------------------------------------


def _group_overrides(overrides: Sequence[str]) -> dict[str, str]:
    chosen = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key in GROUPS:
            chosen[key] = value
    return chosen


def _schema_paths() -> set[str]:
    """Every dotted key path of :class:`SkillzeroConfig` (``trainer.optim.lr``, ...)."""
    paths: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        for key in node:
            path = f"{prefix}{key}"
            paths.add(path)
            child = node._get_node(key)
            kind = child._metadata.object_type if isinstance(child, DictConfig) else None
            if kind is not None and kind is not dict:  # a nested schema, not a free dict
                walk(child, path + ".")

    walk(OmegaConf.structured(SkillzeroConfig), "")
    return paths


def _allow_schema_keys(overrides: Sequence[str]) -> list[str]:
    """Rewrite ``key=value`` as ``++key=value`` when ``key`` is a schema field or a key
    inside a schema's free ``params`` dict (``env.pool.params.num_cpus``), so that a
    setting whose default lives only in the schema (not in the group's yaml file) can
    still be overridden on the command line."""
    paths = _schema_paths()
    out = []
    for item in overrides:
        key, sep, _ = item.partition("=")
        in_params = any(
            key.startswith(path + ".") for path in paths if path.rsplit(".", 1)[-1] == "params"
        )
        if sep and (key in paths or in_params) and "." in key and not key.startswith(("+", "~")):
            out.append("++" + item)
        else:
            out.append(item)
    return out


def _mandatory_groups() -> list[str]:
    from importlib import resources

    import yaml

    text = resources.files(CONFIG_MODULE).joinpath(f"{PRIMARY_CONFIG}.yaml").read_text()
    defaults = (yaml.safe_load(text) or {}).get("defaults", [])
    return [
        key
        for entry in defaults
        if isinstance(entry, dict)
        for key, value in entry.items()
        if value == "???"
    ]


def compose(
    overrides: Sequence[str] = (),
    config_name: str = PRIMARY_CONFIG,
    *,
    fill_required: bool = False,
) -> DictConfig:
    """Compose the config from the packaged groups and every plugin's config paths.

    A group option that does not exist, or a required group left out, raises a
    :class:`ConfigError` that lists the available options. With ``fill_required`` a
    required group left out gets its first option instead (``grpo`` for ``algo`` when
    present): for commands such as ``skillzero eval`` that do not use that group.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            loader = GlobalHydra.instance().config_loader()
            chosen = _group_overrides(overrides)
            problems = []
            for group, value in chosen.items():
                options = loader.get_group_options(group)
                if value not in options:
                    problems.append(
                        f"unknown {group} {value!r}; available: {', '.join(options) or '(none)'}"
                    )
            overrides = list(overrides)
            for group in _mandatory_groups():
                if group not in chosen:
                    options = loader.get_group_options(group)
                    if fill_required and options:
                        pick = "grpo" if "grpo" in options else options[0]
                        overrides.append(f"{group}={pick}")
                        continue
                    problems.append(
                        f"choose {group}=<name>; available: {', '.join(options) or '(none)'}"
                    )
            if problems:
                raise ConfigError("\n".join(problems))
            return hydra_compose(config_name=config_name, overrides=_allow_schema_keys(overrides))
    except HydraException as exc:
        raise ConfigError(str(exc).strip()) from None
    except OmegaConfBaseException as exc:
        raise ConfigError(str(exc).strip()) from None
    finally:
        GlobalHydra.instance().clear()


def _env_schema(name: str) -> type:
    from skillzero import registry

    spec = registry.get("envs", name)
    schema = spec.config or EnvConfig
    if not (isinstance(schema, type) and issubclass(schema, EnvConfig)):
        raise ConfigError(
            f"env {name!r} (plugin {spec.plugin!r}) declares config schema {schema!r}, "
            "which is not a subclass of skillzero.core.config.EnvConfig"
        )
    return schema


def validate(cfg: DictConfig, *, check_components: bool = True) -> DictConfig:
    """Check ``cfg`` against the schemas; return a typed copy (defaults filled in).

    The env section is checked against the env's own schema when its plugin is loaded.
    With ``check_components``, names (env, advantage, loss terms, callbacks, backend,
    skill provider) must be registered by a loaded plugin; an unknown name raises a
    :class:`ConfigError` listing the known ones.
    """
    from skillzero import registry

    env_name = OmegaConf.select(cfg, "env.name", default=None)
    if env_name in (None, MISSING, "???"):
        raise ConfigError("no environment chosen: add env=<name> (see `skillzero envs`)")
    try:
        schema = OmegaConf.structured(SkillzeroConfig)
        try:
            schema.env = OmegaConf.structured(_env_schema(env_name))
        except registry.UnknownComponentError:
            if check_components:
                raise
            # The env's plugin is not loaded: type-check the common keys, allow the rest.
            OmegaConf.set_struct(schema.env, False)
        merged = OmegaConf.merge(schema, cfg)
        OmegaConf.resolve(merged)
    except registry.UnknownComponentError as exc:
        raise ConfigError(str(exc)) from None
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from None
    if check_components:
        _check_components(merged)
    return merged


def _describe(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    message = str(exc).splitlines()[0]
    return f"invalid config value at '{key}': {message}" if key else f"invalid config: {message}"


def _check_components(cfg: DictConfig) -> None:
    from skillzero import registry

    wanted: list[tuple[str, str, str]] = [
        ("advantage_estimators", cfg.algo.advantage.name, "algo.advantage.name"),
        ("rollout_backends", cfg.backend.name, "backend.name"),
        ("skill_providers", cfg.skills.provider, "skills.provider"),
        ("env_workers", cfg.env.pool.backend, "env.pool.backend"),
    ]
    wanted += [
        ("loss_terms", term.name, f"algo.loss_terms[{i}].name")
        for i, term in enumerate(cfg.algo.loss_terms)
    ]
    wanted += [
        ("trainer_callbacks", cb.name, f"algo.callbacks[{i}].name")
        for i, cb in enumerate(cfg.algo.callbacks)
    ]
    problems = []
    for kind, name, key in wanted:
        try:
            registry.get(kind, name)
        except registry.UnknownComponentError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ConfigError(
            "config names components no loaded plugin provides:\n  " + "\n  ".join(problems)
        )


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """A plain-dict copy (picklable; what env workers and factories receive)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
