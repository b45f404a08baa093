"""The training loop: ``skillzero train env=... algo=...``.

One iteration (``step``), top to bottom::

    callbacks.before_rollout
    collect          rank 0 plays num_groups x group_size episodes (dynamic sampling:
                     groups whose returns are all equal are dropped and more collected)
    broadcast        every rank receives the batch of step samples (a TensorDict)
    penalty          coef * (1 - action_valid) on every step sample
    old log-probs    the current weights score the sampled responses (and the frozen
                     reference, when a loss term needs ref_log_probs)
    callbacks.after_rollout   e.g. a teacher adds teacher_log_probs
    advantages       the algorithm's estimator (GRPO, GiGPO, ...)
    update           ppo_epochs x mini-batches x micro-batches of sum(coef * term)
    weight sync      the new weights go to the rollout backend
    callbacks.after_update    e.g. a skill curriculum validates and changes the skills
    validation, checkpoint, logging

Every rank runs this loop; only rank 0 owns the env pools and the rollout backend, and
the others wait at the next collective. The trainer's public attributes and methods
(``step``, ``config``, ``skill_provider``, ``validate``, ``render_skills``,
``score_responses``, ``log``, ...) are what trainer callbacks use.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from skillzero import registry
from skillzero.core import checkpoint as ckpt
from skillzero.core.callbacks import TrainerCallback
from skillzero.core.collector import (
    Assignment,
    Collector,
    EpisodeResult,
    RolloutResult,
    skill_block_for,
)
from skillzero.core.config import cfg_get, to_container
from skillzero.core.distributed import DistContext, init_distributed
from skillzero.core.env import PromptContext, Task, sampling_overrides
from skillzero.core.losses import AdvantageEstimator, WeightedTerm
from skillzero.core.models import resolve_model_path
from skillzero.core.pool import EnvPool
from skillzero.core.rollout import RolloutBackend, SamplingParams
from skillzero.core.skills import RenderedSkills, SkillProvider
from skillzero.core.tasks import TaskSampler
from skillzero.core.trajectory import K, collate_steps


@dataclass
class ValidationResult:
    """Episodes of one validation pass and their metrics (keys prefixed by the tag)."""

    episodes: list[EpisodeResult]
    metrics: dict[str, float] = field(default_factory=dict)


def sampling_params(
    section: Any, *, seed: int | None = None, overrides: Mapping[str, Any] | None = None
) -> SamplingParams:
    """SamplingParams from a ``backend.sampling``-style config section, with
    ``overrides`` (what the env's response format asks for, see
    :func:`skillzero.core.env.sampling_overrides`) taking precedence."""
    base = to_container(section) if isinstance(section, DictConfig) else dict(section or {})
    merged = {**base, **dict(overrides or {})}
    return SamplingParams(
        max_new_tokens=int(merged.get("max_new_tokens", 256)),
        temperature=float(merged.get("temperature", 1.0)),
        top_p=float(merged.get("top_p", 1.0)),
        top_k=int(merged.get("top_k", -1)),
        stop=tuple(merged.get("stop", ()) or ()),
        seed=seed,
    )


def episode_metrics(
    episodes: Sequence[EpisodeResult], env_spec: Any, prefix: str
) -> dict[str, float]:
    """Success (overall and per task type), valid-action ratio, episode length, tokens
    per step and return of finished episodes, as ``<prefix>/<name>``."""
    if not episodes:
        return {f"{prefix}/episodes": 0.0}
    records = [e.as_record() for e in episodes]
    metrics = env_spec.episode_metrics(records) if env_spec is not None else None
    if metrics is None:
        metrics = {
            "episodes": float(len(episodes)),
            "success_rate": sum(e.won for e in episodes) / len(episodes),
        }
        steps = sum(e.length for e in episodes)
        metrics["valid_action_ratio"] = (
            sum(e.valid_actions for e in episodes) / steps if steps else 1.0
        )
        metrics["episode_length"] = steps / len(episodes)
        by_type: dict[str, list[bool]] = {}
        for e in episodes:
            by_type.setdefault(e.task.task_type, []).append(e.won)
        for task_type, wins in sorted(by_type.items()):
            metrics[f"success_rate/{task_type}"] = sum(wins) / len(wins)
    steps = max(1, sum(e.length for e in episodes))
    metrics["prompt_tokens_per_step"] = sum(e.prompt_tokens for e in episodes) / steps
    metrics["response_tokens_per_step"] = sum(e.response_tokens for e in episodes) / steps
    metrics["skill_tokens_per_step"] = sum(e.skill_tokens * e.length for e in episodes) / steps
    metrics["return_mean"] = sum(e.env_return for e in episodes) / len(episodes)
    metrics["env_errors"] = float(sum(e.error is not None for e in episodes))
    return {f"{prefix}/{key}": float(value) for key, value in metrics.items()}


def balanced_subset(tasks: Sequence[Task], limit: int) -> list[Task]:
    """``limit`` of ``tasks`` taken round-robin over their task types, each type's tasks
    in split order (all tasks when ``limit`` <= 0 or covers them). A small validation set
    then measures every task type, where the first N of a split sorted by name would
    hold only the first types."""
    if limit <= 0 or limit >= len(tasks):
        return list(tasks)
    by_type: dict[str, list[Task]] = {}
    for task in tasks:
        by_type.setdefault(task.task_type, []).append(task)
    queues = [list(group) for group in by_type.values()]
    chosen: list[Task] = []
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def make_skill_provider(skills_cfg: Mapping[str, Any], env_name: str) -> SkillProvider:
    """The registered provider named by ``skills_cfg["provider"]``, built from the
    mapping; a missing ``bank`` means the bank named after the env."""
    skills_cfg = dict(skills_cfg)
    skills_cfg["bank"] = skills_cfg.get("bank") or env_name
    return registry.get("skill_providers", skills_cfg.get("provider", "none")).create(skills_cfg)


def _mix_seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * 1_000_003 + int(part)) % (2**31 - 1)
    return value


class Trainer:
    """Builds every component from the composed config and runs :meth:`fit`."""

    def __init__(self, cfg: DictConfig, *, ctx: DistContext | None = None) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # per-file load/save bars drown the step lines
        self.config = cfg
        tcfg = cfg.trainer
        self.ctx = ctx or init_distributed(str(tcfg.device))
        self.is_main_process = self.ctx.is_main
        self.total_steps = int(tcfg.total_steps)
        self.seed = int(tcfg.seed)
        self.step = 0
        self._seed_everything(self.seed + self.ctx.rank)
        if tcfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

        # -- run folder and resume point -------------------------------------------------
        self.run_dir = Path(self.ctx.broadcast_object(str(tcfg.output_dir))).resolve()
        self.resume_path: Path | None = None
        if tcfg.resume:
            self.resume_path = ckpt.latest_checkpoint(self.run_dir)
            if self.resume_path is None and self.is_main_process:
                print(f"[skillzero] no complete checkpoint in {self.run_dir}; starting fresh")
        if self.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, self.run_dir / "config.yaml")

        # -- environment -----------------------------------------------------------------
        self.env_spec = registry.get("envs", cfg.env.name)
        self.env_cfg: dict[str, Any] = to_container(cfg.env)
        self.prompt_builder = self.env_spec.make_prompt_builder(self.env_cfg)
        self.parser = self.env_spec.make_action_parser(self.env_cfg)
        self.sampling_overrides = sampling_overrides(self.prompt_builder)
        self.train_tasks: list[Task] = list(
            self.env_spec.list_tasks(self.env_cfg, cfg.env.train_split)
        )
        if not self.train_tasks:
            raise ValueError(f"env {cfg.env.name!r} has no tasks in split {cfg.env.train_split!r}")
        self.sampler = TaskSampler(self.train_tasks, seed=self.seed)
        self._val_tasks: list[Task] | None = None

        # -- algorithm -------------------------------------------------------------------
        algo = cfg.algo
        self.estimator: AdvantageEstimator = registry.get(
            "advantage_estimators", algo.advantage.name
        ).create(**to_container(algo.advantage.params))
        self.terms: list[WeightedTerm] = []
        for term_cfg in algo.loss_terms:
            if float(term_cfg.coef) == 0.0:
                continue  # a zero coefficient switches a term off (and what it needs)
            term = registry.get("loss_terms", term_cfg.name).create(**to_container(term_cfg.params))
            self.terms.append(WeightedTerm(term_cfg.name, float(term_cfg.coef), term))
        if not self.terms:
            raise ValueError("algo.loss_terms has no term with a non-zero coefficient")
        self.callbacks: list[TrainerCallback] = [
            registry.get("trainer_callbacks", cb.name).create(**to_container(cb.params))
            for cb in algo.callbacks
        ]
        for callback, cb_cfg in zip(self.callbacks, algo.callbacks, strict=True):
            callback.name = callback.name or cb_cfg.name
        requires = set().union(*(w.term.requires for w in self.terms), self.estimator.requires)
        self.needs_entropy = any(w.term.needs_entropy for w in self.terms)
        need_reference = K.REF_LOG_PROBS in requires

        # -- model, tokenizer, policy, rollout backend -------------------------------------
        base_model_path = self._model_path()
        self.warm_start_summary: dict[str, Any] = {}
        warm_start = str(cfg_get(tcfg, "warm_start", "none") or "none")
        if warm_start == "auto":
            # sft where demonstrations can be had (an expert, or recorded episodes) and
            # the parser can write them; otherwise the base model
            demos = self.env_spec.expert is not None or str(cfg.sft.source) != "expert"
            warm_start = "sft" if demos and hasattr(self.parser, "render") else "none"
            if self.is_main_process:
                print(
                    "[skillzero] trainer.warm_start=auto: "
                    + (
                        "supervised warm start"
                        if warm_start == "sft"
                        else f"env {cfg.env.name!r} has no expert plans (or its parser no "
                        "render): starting from the base model"
                    )
                )
        if warm_start == "sft" and self.resume_path is None:
            from skillzero.core.sft import ensure_warm_start

            # the supervised warm start (built once, then cached) is the starting policy
            # and the KL reference
            base_model_path, self.warm_start_summary = ensure_warm_start(cfg, self.ctx)
            if self.is_main_process:
                import json

                (self.run_dir / "warm_start.json").write_text(
                    json.dumps({"model": base_model_path, **self.warm_start_summary}, indent=2)
                )
        elif warm_start not in ("none", "sft"):  # (auto was resolved above)
            raise ValueError(f"trainer.warm_start={warm_start!r}: choose none, sft or auto")
        model_path = str(self.resume_path / "model") if self.resume_path else base_model_path
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.pad_token_id = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        from skillzero.core.policy import Policy

        self.sampling_cfg = cfg.backend.sampling
        self.policy = Policy(
            model_path,
            cfg.model,
            tcfg,
            self.ctx,
            need_reference=need_reference,
            reference_path=base_model_path,
            temperature=float(self.sampling_cfg.temperature) or 1.0,
        )
        self.backend: RolloutBackend | None = None
        self._train_pool: EnvPool | None = None
        self._val_pool: EnvPool | None = None
        if self.is_main_process:
            model_cfg = to_container(cfg.model)
            model_cfg["path"] = model_path
            self.backend = registry.get("rollout_backends", cfg.backend.name).create(
                model_cfg, to_container(cfg.backend)
            )

        exact_sampler = cfg.backend.name == "transformers" and str(cfg.model.dtype) == "float32"
        if not tcfg.recompute_log_probs and self.is_main_process and not exact_sampler:
            print(
                "[skillzero] warning: trainer.recompute_log_probs=false uses the sampler's "
                f"log-probs; backend {cfg.backend.name!r} in {cfg.model.dtype} may not "
                "compute what the trainer would (check rollout/sampler_trainer_log_prob_gap "
                "on a run with recomputation)"
            )

        # -- skills, logging ---------------------------------------------------------------
        self.skill_provider: SkillProvider = self.build_skill_provider(to_container(cfg.skills))
        from skillzero.core.metrics_log import MetricsLogger

        self.logger = MetricsLogger(
            self.run_dir,
            list(tcfg.loggers),
            config=to_container(cfg),
            project=str(tcfg.wandb_project),
            run_name=self.run_dir.name,
            enabled=self.is_main_process,
        )
        self._pending: dict[str, float] = {}
        self._traj_counter = 0
        self._validation_seconds = 0.0
        if self.resume_path is not None:
            self._restore(self.resume_path)
        self.log(  # the warm start's own validation before and after SFT (step-0 record)
            {
                f"warm_start/{key}": float(value)
                for key, value in self.warm_start_summary.items()
                if isinstance(value, int | float)
            }
        )

    # ------------------------------------------------------------------------------------
    # helpers the callbacks use
    # ------------------------------------------------------------------------------------
    @property
    def val_tasks(self) -> list[Task]:
        """``trainer.val_tasks`` tasks of the env's validation split (all when 0), see
        :func:`balanced_subset`."""
        if self._val_tasks is None:
            tasks = list(self.env_spec.list_tasks(self.env_cfg, self.config.env.val_split))
            self._val_tasks = balanced_subset(tasks, int(self.config.trainer.val_tasks))
        return self._val_tasks

    def build_skill_provider(self, skills_cfg: Mapping[str, Any]) -> SkillProvider:
        """A registered skill provider from a ``skills``-group mapping (its ``bank``
        defaults to the env's name)."""
        return make_skill_provider(skills_cfg, str(self.config.env.name))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def render_skills(
        self,
        provider: SkillProvider,
        ctx: PromptContext,
        *,
        budget_tokens: int | str | None = "config",
    ) -> RenderedSkills:
        """The skill block ``provider`` gives for the episode of ``ctx``, under
        ``budget_tokens`` (default: ``skills.budget_tokens``; None: no budget)."""
        if budget_tokens == "config":
            budget_tokens = cfg_get(self.config.skills, "budget_tokens")
        return skill_block_for(provider, ctx, self.prompt_builder, self.count_tokens, budget_tokens)

    def apply_chat_template(self, messages: list[dict[str, str]]) -> list[int]:
        """Prompt ids of one chat, ending with the assistant's generation prompt."""
        return list(
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    def score_responses(self, prompt_ids: Sequence[Sequence[int]], batch: Any) -> torch.Tensor:
        """(B, R) log-probs of the batch's responses after other prompts (collective)."""
        return self.policy.compute_log_probs(
            batch, prompts=prompt_ids, pad_token_id=self.pad_token_id
        )

    def log(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Add metrics to this step's record (written once per step)."""
        del step  # metrics land in the record of the step being run
        self._pending.update({k: float(v) for k, v in metrics.items()})

    def log_table(self, name: str, rows: list[dict[str, Any]], step: int) -> None:
        self.logger.log_table(name, rows, step)

    # ------------------------------------------------------------------------------------
    # rollouts
    # ------------------------------------------------------------------------------------
    def _model_path(self) -> str:
        # rank 0 converts the embedded default once; the others wait and read the cache
        path = None
        if self.is_main_process:
            path = resolve_model_path(self.config.model)
        self.ctx.barrier()
        if not self.is_main_process:
            path = resolve_model_path(self.config.model)
        return str(path)

    def _pool(self, which: str) -> EnvPool:
        env = self.config.env
        if which == "train":
            if self._train_pool is None:
                self._train_pool = EnvPool(
                    self.env_spec.env,
                    self.env_cfg,
                    num_groups=int(env.num_groups),
                    group_size=int(env.group_size),
                    workers=int(env.pool.workers),
                    backend=str(env.pool.backend),
                    seed=self.seed,
                    receive_timeout=env.pool.receive_timeout,
                )
            return self._train_pool
        if self._val_pool is None:
            self._val_pool = EnvPool(
                self.env_spec.env,
                self.env_cfg,
                num_groups=max(1, int(self.config.trainer.val_envs)),
                group_size=1,
                workers=int(env.pool.workers),
                backend=str(env.pool.backend),
                seed=self.seed + 1000,
                receive_timeout=env.pool.receive_timeout,
            )
        return self._val_pool

    def _collector(self, pool: EnvPool) -> Collector:
        assert self.backend is not None
        return Collector(
            pool,
            self.backend,
            self.prompt_builder,
            self.parser,
            max_prompt_tokens=int(self.config.env.max_prompt_tokens),
            render_skills=self.render_skills,
            apply_chat_template=self.apply_chat_template,
            eos_token_id=self.tokenizer.eos_token_id,
        )

    def collect(self, step: int) -> tuple[list[Any], list[EpisodeResult], dict[str, float]]:
        """Rank 0: play this step's episodes (with dynamic sampling when enabled)."""
        env, algo = self.config.env, self.config.algo
        pool = self._pool("train")
        collector = self._collector(pool)
        num_groups, group_size = int(env.num_groups), int(env.group_size)
        rounds = int(algo.max_resample_rounds) if algo.dynamic_sampling else 1
        kept_samples: list[Any] = []
        kept_episodes: list[EpisodeResult] = []
        kept_groups = 0
        timing = {"generation": 0.0, "env": 0.0, "prompt": 0.0}
        counters = {"truncated_prompts": 0.0, "shortened_histories": 0.0, "dropped_groups": 0.0}
        last: RolloutResult | None = None
        from skillzero.core.metrics_log import progress

        bar = progress(
            num_groups * group_size,
            f"step {step} rollout",
            enabled=self.is_main_process and bool(self.config.trainer.progress),
            unit="ep",
        )
        for round_index in range(rounds):
            tasks = self.sampler.next(num_groups)
            group_base = round_index * num_groups
            assignments = [
                Assignment(
                    task=tasks[g],
                    seed=_mix_seed(self.seed, step, round_index, g),
                    group_id=group_base + g,
                )
                for g in range(num_groups)
                for _ in range(group_size)
            ]
            result = collector.run(
                assignments,
                sampling_params(
                    self.sampling_cfg,
                    seed=_mix_seed(self.seed, step, round_index),
                    overrides=self.sampling_overrides,
                ),
                skill_provider=self.skill_provider,
                traj_id_start=self._traj_counter,
                progress=bar,
                keep_prompts=int(self.config.trainer.log_prompts) if round_index == 0 else 0,
            )
            self._write_prompts(step, "rollout", result.prompts)
            self._traj_counter += len(assignments)
            last = result
            timing["generation"] += result.generation_seconds
            timing["env"] += result.env_seconds
            timing["prompt"] += result.prompt_seconds
            counters["truncated_prompts"] += result.truncated_prompts
            counters["shortened_histories"] += result.shortened_histories
            if not algo.dynamic_sampling:
                kept_samples, kept_episodes = result.samples, result.episodes
                break
            returns: dict[int, set[float]] = {}
            for episode in result.episodes:
                returns.setdefault(episode.group_id, set()).add(round(episode.env_return, 6))
            informative = [g for g, values in sorted(returns.items()) if len(values) > 1]
            room = num_groups - kept_groups
            chosen = set(informative[:room])
            counters["dropped_groups"] += len(returns) - len(chosen)
            kept_samples += [s for s in result.samples if s.group_id in chosen]
            kept_episodes += [e for e in result.episodes if e.group_id in chosen]
            kept_groups += len(chosen)
            if kept_groups >= num_groups:
                break
            bar.reset(total=num_groups * group_size)
        bar.close()
        if algo.dynamic_sampling and kept_groups == 0 and last is not None:
            # every group was uninformative in every round: train on the last round anyway
            # (its advantages are zero; KL and entropy terms still apply)
            kept_samples, kept_episodes = last.samples, last.episodes
        metrics = episode_metrics(kept_episodes, self.env_spec, "rollout")
        metrics["rollout/samples"] = float(len(kept_samples))
        for key, value in counters.items():
            metrics[f"rollout/{key}"] = value
        if algo.dynamic_sampling:
            metrics["rollout/kept_groups"] = float(kept_groups)
        for key, value in timing.items():
            metrics[f"time/{key}"] = value
        return kept_samples, kept_episodes, metrics

    def validate(
        self,
        *,
        skill_provider: SkillProvider | None = None,
        tasks: Sequence[Task] | None = None,
        tag: str = "val",
    ) -> ValidationResult:
        """Play ``tasks`` (default :attr:`val_tasks`) once each with the validation
        sampling settings; safe to call on every rank (rank 0 plays, others receive)."""
        result: ValidationResult | None = None
        if self.is_main_process:
            begin = time.perf_counter()
            tasks = list(self.val_tasks if tasks is None else tasks)
            pool = self._pool("val")
            assignments = [
                Assignment(task=task, seed=_mix_seed(self.seed, 7, i), group_id=i)
                for i, task in enumerate(tasks)
            ]
            played = self._collector(pool).run(
                assignments,
                # the same seed for every validation: paired comparisons (with and without
                # skills, before and after an update) see the same sampling noise
                sampling_params(
                    self.config.backend.val_sampling,
                    seed=_mix_seed(self.seed, 7),
                    overrides=self.sampling_overrides,
                ),
                skill_provider=skill_provider
                if skill_provider is not None
                else self.skill_provider,
                record_samples=False,
                keep_prompts=int(self.config.trainer.log_prompts),
            )
            self._write_prompts(self.step, tag, played.prompts)
            metrics = episode_metrics(played.episodes, self.env_spec, tag)
            seconds = time.perf_counter() - begin
            metrics[f"time/{tag}"] = seconds
            self._validation_seconds += seconds
            result = ValidationResult(played.episodes, metrics)
        result = self.ctx.broadcast_object(result)
        assert result is not None
        self.log(result.metrics)
        return result

    # ------------------------------------------------------------------------------------
    # the loop
    # ------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Run from the current step to ``total_steps``; returns the last step's metrics."""
        tcfg = self.config.trainer
        for callback in self.callbacks:
            callback.on_train_start(self)
        if tcfg.val_before_train and self.step == 0:
            self.validate()
        if self.step == 0:
            self._flush(0)  # the starting policy's record (validations, warm start)
        last: dict[str, float] = {}
        while self.step < self.total_steps:
            step = self.step + 1
            last = self.train_step(step)
        for callback in self.callbacks:
            callback.on_train_end(self)
        self._flush(self.step)
        if not ckpt.is_complete(ckpt.step_dir(self.run_dir, self.step)):
            self.save_checkpoint(self.step)
        if self.is_main_process and tcfg.plots:
            try:
                from skillzero.core.plotting import plot_run

                plot_run(self.run_dir)
            except Exception as exc:  # plots are a convenience; never lose a run to them
                print(f"[skillzero] plotting failed: {type(exc).__name__}: {exc}")
        return last

    def train_step(self, step: int) -> dict[str, float]:
        """One iteration (see the module docstring); returns its metrics."""
        tcfg = self.config.trainer
        started = time.perf_counter()
        times: dict[str, float] = {}
        self._validation_seconds = 0.0
        for callback in self.callbacks:
            callback.before_rollout(self, step)

        payload = None
        if self.is_main_process:
            samples, _, rollout_metrics = self.collect(step)
            if not samples:
                raise RuntimeError(
                    "the rollout produced no step samples (every env failed to start?)"
                )
            payload = (collate_steps(samples, pad_token_id=self.pad_token_id), rollout_metrics)
        batch, metrics = self.ctx.broadcast_object(payload)
        if self.backend is not None:
            self.backend.sleep()

        penalty = float(self.config.env.invalid_action_penalty)
        batch[K.PENALTY] = penalty * (~batch[K.ACTION_VALID]).float()
        batch[K.TRAINING_STEP] = torch.full((batch.shape[0],), step, dtype=torch.long)

        begin = time.perf_counter()
        if tcfg.recompute_log_probs:
            batch[K.OLD_LOG_PROBS] = self.policy.compute_log_probs(
                batch, pad_token_id=self.pad_token_id
            )
        else:  # the sampler's own log-probs (see trainer.recompute_log_probs)
            batch[K.OLD_LOG_PROBS] = batch[K.ROLLOUT_LOG_PROBS].clone()
        if self.policy.reference is not None:
            batch[K.REF_LOG_PROBS] = self.policy.compute_log_probs(
                batch, reference=True, pad_token_id=self.pad_token_id
            )
        times["log_probs"] = time.perf_counter() - begin
        if tcfg.recompute_log_probs:
            mask = batch[K.RESPONSE_MASK]
            metrics["rollout/sampler_trainer_log_prob_gap"] = float(
                ((batch[K.ROLLOUT_LOG_PROBS] - batch[K.OLD_LOG_PROBS]).abs() * mask).sum()
                / mask.sum().clamp(min=1)
            )

        begin = time.perf_counter()
        for callback in self.callbacks:
            callback.after_rollout(self, step, batch)
        times["callbacks"] = time.perf_counter() - begin

        begin = time.perf_counter()
        advantages = self.estimator(batch)
        batch[K.ADVANTAGES] = advantages.float()
        metrics.update({f"advantage/{k}": v for k, v in self.estimator.metrics().items()})
        metrics["advantage/mean"] = float(advantages.float().mean())
        metrics["advantage/abs_mean"] = float(advantages.float().abs().mean())
        times["advantage"] = time.perf_counter() - begin

        from skillzero.core.metrics_log import progress

        minibatch = int(tcfg.minibatch_size)
        n_updates = int(tcfg.ppo_epochs) * -(-batch.shape[0] // minibatch)
        bar = progress(
            n_updates,
            f"step {step} update",
            enabled=self.is_main_process and bool(tcfg.progress),
        )
        begin = time.perf_counter()
        generator = torch.Generator().manual_seed(_mix_seed(self.seed, step, 99))
        metrics.update(
            self.policy.update(
                batch,
                self.terms,
                minibatch_size=minibatch,
                ppo_epochs=int(tcfg.ppo_epochs),
                generator=generator,
                needs_entropy=self.needs_entropy,
                progress=bar,
            )
        )
        bar.close()
        times["update"] = time.perf_counter() - begin

        begin = time.perf_counter()
        state = self.policy.full_state_dict()
        if self.backend is not None:
            self.backend.wake()
            self.backend.load_weights(state.items())
        del state
        times["weight_sync"] = time.perf_counter() - begin

        self.step = step
        for callback in self.callbacks:
            callback.after_update(self, step, metrics)
        if tcfg.val_every and step % int(tcfg.val_every) == 0:
            self.validate()
        if tcfg.save_every and step % int(tcfg.save_every) == 0 and step < self.total_steps:
            begin = time.perf_counter()
            self.save_checkpoint(step)
            times["checkpoint"] = time.perf_counter() - begin

        for key, value in times.items():
            metrics[f"time/{key}"] = value
        metrics["time/step"] = time.perf_counter() - started
        # validation broadcasts its episodes to every rank
        metrics["time/validation"] = self.ctx.broadcast_object(self._validation_seconds)
        # "other" is the framework's own overhead: what is not generation, env stepping,
        # forward/backward passes, weight sync, validation or checkpoint writing
        accounted = sum(
            metrics.get(f"time/{key}", 0.0)
            for key in (
                "generation",
                "env",
                "log_probs",
                "callbacks",
                "update",
                "weight_sync",
                "validation",
                "checkpoint",
            )
        )
        metrics["time/other"] = max(0.0, metrics["time/step"] - accounted)
        self.log(metrics)
        self._flush(step)
        return metrics

    def _write_prompts(self, step: int, tag: str, prompts: list[dict[str, Any]]) -> None:
        """Append sample prompts to ``prompts.jsonl`` (what the policy actually saw)."""
        if not prompts or not self.is_main_process:
            return
        import json

        with open(self.run_dir / "prompts.jsonl", "a", encoding="utf-8") as handle:
            for record in prompts:
                handle.write(json.dumps({"step": step, "tag": tag, **record}) + "\n")

    def _flush(self, step: int) -> None:
        if self._pending:
            self.logger.log(self._pending, step)
        self._pending = {}

    # ------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------
    def save_checkpoint(self, step: int) -> Path:
        """Write an atomic checkpoint of ``step`` (collective)."""
        weights = self.policy.full_state_dict()
        optimizer = self.policy.optimizer_state()
        partial = None
        if self.is_main_process:
            partial = ckpt.begin(self.run_dir, step)
            self.policy.save_pretrained(str(partial / "model"), weights, self.tokenizer)
            torch.save(optimizer, partial / "optimizer.pt")
            torch.save(self._trainer_state(step), partial / "trainer_state.pt")
        del weights, optimizer
        partial = Path(self.ctx.broadcast_object(str(partial) if partial else None))
        ckpt.save_rng(partial, self.ctx.rank)
        self.ctx.barrier()
        final = ckpt.step_dir(self.run_dir, step)
        if self.is_main_process:
            final = ckpt.commit(partial, step, keep=int(self.config.trainer.keep_checkpoints))
        self.ctx.barrier()
        return final

    def _trainer_state(self, step: int) -> dict[str, Any]:
        active = self.skill_provider.active_sources
        return {
            "step": step,
            "scheduler": self.policy.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "traj_counter": self._traj_counter,
            "callbacks": {cb.name: cb.state_dict() for cb in self.callbacks},
            "skill_active_sources": None if active is None else sorted(active),
            "config": to_container(self.config),
        }

    def _restore(self, path: Path) -> None:
        state = ckpt.load_trainer_state(path)
        optimizer = None
        if self.is_main_process:
            optimizer = torch.load(path / "optimizer.pt", weights_only=False)
        self.policy.load_optimizer_state(optimizer)
        self.policy.scheduler.load_state_dict(state["scheduler"])
        self.sampler.load_state_dict(state["sampler"])
        self._traj_counter = int(state.get("traj_counter", 0))
        saved = state.get("callbacks", {})
        for callback in self.callbacks:
            if callback.name in saved:
                callback.load_state_dict(saved[callback.name])
        active = state.get("skill_active_sources")
        self.skill_provider.set_active_sources(active)
        rng = ckpt.load_rng(path, self.ctx.rank)
        if rng is not None:
            ckpt.set_rng_state(rng)
        self.step = int(state["step"])
        self.resumed_from = path
        if self.is_main_process:
            print(f"[skillzero] resumed from {path} (step {self.step})")

    # ------------------------------------------------------------------------------------
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)

    def close(self) -> None:
        for pool in (self._train_pool, self._val_pool):
            if pool is not None:
                pool.close()
        if self.backend is not None:
            self.backend.close()
        self.logger.close()


def train(cfg: DictConfig) -> int:
    """Entry point of ``skillzero train`` (one process, or each rank under torchrun)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    trainer = Trainer(cfg)
    try:
        metrics = trainer.fit()
    finally:
        trainer.close()
        trainer.ctx.close()
    if trainer.is_main_process:
        success = metrics.get("rollout/success_rate")
        print(
            f"[skillzero] finished {trainer.step} steps; run folder: {trainer.run_dir}"
            + (f"; last rollout success {success:.3f}" if success is not None else "")
        )
    return 0


__all__ = ["Trainer", "ValidationResult", "episode_metrics", "sampling_params", "train"]
