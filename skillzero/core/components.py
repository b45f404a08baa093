"""Building a run's components from the composed config, through the registry.

Each function turns one part of the config into what the loop uses: the env's pieces
(:func:`build_env`), the algorithm (:func:`build_algorithm`), the skill provider
(:func:`make_skill_provider`), an env pool (:func:`make_pool`), a rollout backend
(:func:`make_backend`) and the tokenizer's chat prompts (:func:`chat_prompt_ids`). The
trainer, the SFT warm start, ``skillzero eval`` and ``skillzero play`` all build from
here, so how a component is made is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from skillzero import registry
from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.env import ActionParser, PromptBuilder, sampling_overrides
from skillzero.contracts.losses import AdvantageEstimator, WeightedTerm
from skillzero.contracts.rollout import RolloutBackend
from skillzero.contracts.skills import SkillProvider
from skillzero.contracts.trajectory import K
from skillzero.core.config import cfg_get, to_container
from skillzero.core.pool import EnvPool
from skillzero.registry.specs import EnvSpec


@dataclass
class EnvParts:
    """The env as the loop uses it: its registered spec, its settings as a plain dict
    (what workers and factories receive), its prompt builder and action parser, and the
    sampling settings its response format asks for."""

    spec: EnvSpec
    cfg: dict[str, Any]
    prompt_builder: PromptBuilder
    parser: ActionParser
    sampling_overrides: dict[str, Any]


def build_env(env_cfg: DictConfig | Mapping[str, Any]) -> EnvParts:
    """The registered env named by ``env_cfg.name``, with its builder and parser."""
    spec = registry.get("envs", str(cfg_get(env_cfg, "name")))
    cfg = to_container(env_cfg) if isinstance(env_cfg, DictConfig) else dict(env_cfg)
    prompt_builder = spec.make_prompt_builder(cfg)
    parser = spec.make_action_parser(cfg)
    return EnvParts(spec, cfg, prompt_builder, parser, sampling_overrides(prompt_builder))


@dataclass
class Algorithm:
    """An algorithm as the update uses it: the advantage estimator, the loss terms with a
    non-zero coefficient, and the trainer callbacks."""

    estimator: AdvantageEstimator
    terms: list[WeightedTerm]
    callbacks: list[TrainerCallback]

    @property
    def requires(self) -> set[str]:
        """Batch keys some term or the estimator reads beyond the collected ones."""
        return set().union(*(w.term.requires for w in self.terms), self.estimator.requires)

    @property
    def needs_entropy(self) -> bool:
        return any(w.term.needs_entropy for w in self.terms)

    @property
    def needs_reference(self) -> bool:
        """A term reads ``ref_log_probs``: the policy keeps a frozen reference model."""
        return K.REF_LOG_PROBS in self.requires


def build_algorithm(algo_cfg: DictConfig) -> Algorithm:
    """The estimator, loss terms and callbacks named by an ``algo`` config; a term with
    ``coef: 0`` is switched off (and with it what only it requires)."""
    estimator: AdvantageEstimator = registry.get(
        "advantage_estimators", algo_cfg.advantage.name
    ).create(**to_container(algo_cfg.advantage.params))
    terms: list[WeightedTerm] = []
    for term_cfg in algo_cfg.loss_terms:
        if float(term_cfg.coef) == 0.0:
            continue  # a zero coefficient switches a term off (and what it needs)
        term = registry.get("loss_terms", term_cfg.name).create(**to_container(term_cfg.params))
        terms.append(WeightedTerm(term_cfg.name, float(term_cfg.coef), term))
    if not terms:
        raise ValueError("algo.loss_terms has no term with a non-zero coefficient")
    callbacks: list[TrainerCallback] = [
        registry.get("trainer_callbacks", cb.name).create(**to_container(cb.params))
        for cb in algo_cfg.callbacks
    ]
    for callback, cb_cfg in zip(callbacks, algo_cfg.callbacks, strict=True):
        callback.name = callback.name or cb_cfg.name
    return Algorithm(estimator, terms, callbacks)


def make_skill_provider(skills_cfg: Mapping[str, Any], env_name: str) -> SkillProvider:
    """The registered provider named by ``skills_cfg["provider"]``, built from the
    mapping; a missing ``bank`` means the bank named after the env."""
    skills_cfg = dict(skills_cfg)
    skills_cfg["bank"] = skills_cfg.get("bank") or env_name
    return registry.get("skill_providers", skills_cfg.get("provider", "none")).create(skills_cfg)


def make_pool(
    env_spec: EnvSpec,
    env_cfg: Mapping[str, Any],
    pool_cfg: Any,
    *,
    num_groups: int,
    group_size: int,
    seed: int,
) -> EnvPool:
    """An :class:`EnvPool` of ``num_groups`` x ``group_size`` envs of ``env_spec``, its
    workers as ``pool_cfg`` (an ``env.pool`` section) says."""
    return EnvPool(
        env_spec.env,
        env_cfg,
        num_groups=num_groups,
        group_size=group_size,
        workers=int(pool_cfg.workers),
        backend=str(pool_cfg.backend),
        seed=seed,
        receive_timeout=pool_cfg.receive_timeout,
    )


def make_backend(cfg: DictConfig, model_path: str) -> RolloutBackend:
    """The configured rollout backend (``backend.name``) serving the weights at
    ``model_path``."""
    model_cfg = to_container(cfg.model)
    model_cfg["path"] = model_path
    return registry.get("rollout_backends", cfg.backend.name).create(
        model_cfg, to_container(cfg.backend)
    )


def chat_prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Prompt ids of one chat, ending with the assistant's generation prompt."""
    return list(
        tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
    )


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of ``text`` without special tokens (skill budgets are counted so)."""
    return len(tokenizer.encode(text, add_special_tokens=False))


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's pad token, or its EOS token when it has none."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


__all__ = [
    "Algorithm",
    "EnvParts",
    "build_algorithm",
    "build_env",
    "chat_prompt_ids",
    "count_tokens",
    "make_backend",
    "make_pool",
    "make_skill_provider",
    "pad_token_id",
]
