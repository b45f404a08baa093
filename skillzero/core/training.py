"""The training loop: ``skillzero train env=... algo=...``.

One iteration (:meth:`Trainer.train_step`) is the algorithm box, top to bottom::

    callbacks.before_rollout
    1. collect       rank 0 plays num_groups x group_size episodes (dynamic sampling:
                     groups whose returns are all equal are dropped and more collected);
                     every rank receives the batch of step samples (a TensorDict)
                     and adds the invalid-action penalty, coef * (1 - action_valid)
       old log-probs the current weights score the sampled responses (and the frozen
                     reference, when a loss term needs ref_log_probs)
       callbacks.after_rollout   e.g. a teacher adds teacher_log_probs
    2. advantages    the algorithm's estimator (GRPO, GiGPO, ...)
    3. update        ppo_epochs x mini-batches x micro-batches of sum(coef * term)
    4. weight sync   the new weights go to the rollout backend
       callbacks.after_update    e.g. a skill curriculum validates and changes the skills
    5. validation, checkpoint, logging

This module wires the pieces; each lives where it can be read and changed alone:
building components from the config (:mod:`skillzero.core.components`), collection,
dynamic sampling, seeds and episode metrics (:mod:`skillzero.core.collection`), the
learner's steps (:mod:`skillzero.core.update`), checkpoints and resume
(:mod:`skillzero.core.run_state`) and the time accounting (:mod:`skillzero.core.timing`).

Every rank runs this loop; only rank 0 owns the env pools and the rollout backend, and
the others wait at the next collective. The trainer's public attributes and methods
(``step``, ``config``, ``skill_provider``, ``validate``, ``render_skills``,
``score_responses``, ``log``, ...) are what trainer callbacks use.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict

from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.env import PromptContext, Task
from skillzero.contracts.losses import AdvantageEstimator, WeightedTerm
from skillzero.contracts.rollout import RolloutBackend
from skillzero.contracts.skills import RenderedSkills, SkillProvider
from skillzero.contracts.trajectory import StepSample, collate_steps
from skillzero.core import checkpoint as ckpt
from skillzero.core import run_state
from skillzero.core.collection import (
    GroupBatch,
    ValidationResult,
    episode_metrics,
    group_assignments,
    mix_seed,
    sampling_params,
    validation_assignments,
    validation_sampling,
)
from skillzero.core.collector import Collector, EpisodeResult, skill_block_for
from skillzero.core.components import (
    build_algorithm,
    build_env,
    chat_prompt_ids,
    count_tokens,
    make_pool,
    make_skill_provider,
    pad_token_id,
)
from skillzero.core.config import cfg_get, to_container
from skillzero.core.distributed import DistContext, init_distributed
from skillzero.core.metrics_log import append_prompts
from skillzero.core.models import resolve_model_path
from skillzero.core.pool import EnvPool
from skillzero.core.tasks import TaskSampler, balanced_subset
from skillzero.core.timing import StepClock
from skillzero.core.update import (
    add_advantages,
    add_old_log_probs,
    add_penalty,
    sampler_gap,
    sync_weights,
    update_count,
    update_policy,
)

UPDATE_SEED = 99
"""Mixed into the seed of each step's mini-batch shuffle."""


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
        env = build_env(cfg.env)
        self.env_spec = env.spec
        self.env_cfg: dict[str, Any] = env.cfg
        self.prompt_builder = env.prompt_builder
        self.parser = env.parser
        self.sampling_overrides = env.sampling_overrides
        self.train_tasks: list[Task] = list(
            self.env_spec.list_tasks(self.env_cfg, cfg.env.train_split)
        )
        if not self.train_tasks:
            raise ValueError(f"env {cfg.env.name!r} has no tasks in split {cfg.env.train_split!r}")
        self.sampler = TaskSampler(self.train_tasks, seed=self.seed)
        self._val_tasks: list[Task] | None = None

        # -- algorithm -------------------------------------------------------------------
        self.algorithm = build_algorithm(cfg.algo)
        self.estimator: AdvantageEstimator = self.algorithm.estimator
        self.terms: list[WeightedTerm] = self.algorithm.terms
        self.callbacks: list[TrainerCallback] = self.algorithm.callbacks
        self.needs_entropy = self.algorithm.needs_entropy

        # -- model, tokenizer, policy, rollout backend -------------------------------------
        base_model_path, self.warm_start_summary = self._starting_model(self._model_path())
        model_path = str(self.resume_path / "model") if self.resume_path else base_model_path
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.pad_token_id = pad_token_id(self.tokenizer)
        from skillzero.core.policy import Policy

        self.sampling_cfg = cfg.backend.sampling
        self.policy = Policy(
            model_path,
            cfg.model,
            tcfg,
            self.ctx,
            need_reference=self.algorithm.needs_reference,
            reference_path=base_model_path,
            temperature=float(self.sampling_cfg.temperature) or 1.0,
        )
        self.backend: RolloutBackend | None = None
        self._train_pool: EnvPool | None = None
        self._val_pool: EnvPool | None = None
        if self.is_main_process:
            model_cfg = to_container(cfg.model)
            model_cfg["path"] = model_path
            from skillzero.core.multi_engine import build_rollout_backend

            # trainer.rollout.engines > 1: that many engines as Ray actors
            self.backend = build_rollout_backend(
                cfg.backend.name, model_cfg, to_container(cfg.backend), tcfg.rollout
            )

        # The transformers backend computes the trainer's function of the same weights
        # (with model.compute_dtype both in the same mixed precision: rounding apart,
        # tests/test_compute_dtype.py); other backends and weight dtypes may not.
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
        clock = StepClock()
        self._validation_seconds = 0.0
        for callback in self.callbacks:
            callback.before_rollout(self, step)

        # 1. collect: the episodes, as one batch of step samples on every rank
        batch, metrics = self._collect_batch(step)
        add_penalty(batch, float(self.config.env.invalid_action_penalty), step)
        with clock.phase("log_probs"):
            add_old_log_probs(
                self.policy,
                batch,
                recompute=bool(tcfg.recompute_log_probs),
                pad_token_id=self.pad_token_id,
            )
        if tcfg.recompute_log_probs:
            metrics["rollout/sampler_trainer_log_prob_gap"] = sampler_gap(batch)
        with clock.phase("callbacks"):
            for callback in self.callbacks:
                callback.after_rollout(self, step, batch)

        # 2. advantages
        with clock.phase("advantage"):
            metrics.update(add_advantages(self.estimator, batch))

        # 3. update
        with clock.phase("update"):
            metrics.update(self._update(batch, step))

        # 4. weight sync
        with clock.phase("weight_sync"):
            sync_weights(self.policy, self.backend)
        self.step = step
        for callback in self.callbacks:
            callback.after_update(self, step, metrics)

        # 5. validation, checkpoint, logging
        if tcfg.val_every and step % int(tcfg.val_every) == 0:
            self.validate()
        if tcfg.save_every and step % int(tcfg.save_every) == 0 and step < self.total_steps:
            with clock.phase("checkpoint"):
                self.save_checkpoint(step)
        # rank 0 plays (and times) validation; every rank reports rank 0's time
        validation_seconds = self.ctx.broadcast_object(self._validation_seconds)
        metrics.update(clock.metrics(metrics, validation_seconds))
        self.log(metrics)
        self._flush(step)
        return metrics

    def _collect_batch(self, step: int) -> tuple[TensorDict, dict[str, float]]:
        """Rank 0 plays the step's episodes (:meth:`collect`); every rank receives the
        collated batch and the rollout metrics. The backend then sleeps (frees its
        memory) until the weight sync."""
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
        return batch, metrics

    def _update(self, batch: TensorDict, step: int) -> dict[str, float]:
        """The policy update of ``step`` on ``batch``, with a progress bar."""
        from skillzero.core.metrics_log import progress

        tcfg = self.config.trainer
        minibatch = int(tcfg.minibatch_size)
        bar = progress(
            update_count(batch.shape[0], minibatch, int(tcfg.ppo_epochs)),
            f"step {step} update",
            enabled=self.is_main_process and bool(tcfg.progress),
        )
        metrics = update_policy(
            self.policy,
            batch,
            self.terms,
            minibatch_size=minibatch,
            ppo_epochs=int(tcfg.ppo_epochs),
            seed=mix_seed(self.seed, step, UPDATE_SEED),
            needs_entropy=self.needs_entropy,
            progress=bar,
        )
        bar.close()
        return metrics

    # ------------------------------------------------------------------------------------
    # rollouts and validation
    # ------------------------------------------------------------------------------------
    def collect(self, step: int) -> tuple[list[StepSample], list[EpisodeResult], dict[str, float]]:
        """Rank 0: play this step's episodes (with dynamic sampling when enabled)."""
        env, algo = self.config.env, self.config.algo
        collector = self._collector(self._pool("train"))
        num_groups, group_size = int(env.num_groups), int(env.group_size)
        rounds = int(algo.max_resample_rounds) if algo.dynamic_sampling else 1
        kept = GroupBatch(num_groups, dynamic=bool(algo.dynamic_sampling))
        from skillzero.core.metrics_log import progress

        bar = progress(
            num_groups * group_size,
            f"step {step} rollout",
            enabled=self.is_main_process and bool(self.config.trainer.progress),
            unit="ep",
        )
        for round_index in range(rounds):
            assignments = group_assignments(
                self.sampler.next(num_groups),
                group_size,
                seed=self.seed,
                step=step,
                round_index=round_index,
            )
            result = collector.run(
                assignments,
                sampling_params(
                    self.sampling_cfg,
                    seed=mix_seed(self.seed, step, round_index),
                    overrides=self.sampling_overrides,
                ),
                skill_provider=self.skill_provider,
                traj_id_start=self._traj_counter,
                progress=bar,
                keep_prompts=int(self.config.trainer.log_prompts) if round_index == 0 else 0,
            )
            self._write_prompts(step, "rollout", result.prompts)
            self._traj_counter += len(assignments)
            if kept.add(result):
                break
            bar.reset(total=num_groups * group_size)
        bar.close()
        samples, episodes = kept.finish()
        return samples, episodes, kept.metrics(self.env_spec)

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
            played = self._collector(pool).run(
                validation_assignments(tasks, self.seed),
                validation_sampling(
                    self.config.backend.val_sampling, self.seed, self.sampling_overrides
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

    def _pool(self, which: str) -> EnvPool:
        """The env pool of training (``num_groups`` x ``group_size``) or of validation
        (``trainer.val_envs`` envs), started on first use."""
        env = self.config.env
        if which == "train":
            if self._train_pool is None:
                self._train_pool = make_pool(
                    self.env_spec,
                    self.env_cfg,
                    env.pool,
                    num_groups=int(env.num_groups),
                    group_size=int(env.group_size),
                    seed=self.seed,
                )
            return self._train_pool
        if self._val_pool is None:
            self._val_pool = make_pool(
                self.env_spec,
                self.env_cfg,
                env.pool,
                num_groups=max(1, int(self.config.trainer.val_envs)),
                group_size=1,
                seed=self.seed + 1000,
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

    # ------------------------------------------------------------------------------------
    # helpers the callbacks use
    # ------------------------------------------------------------------------------------
    @property
    def val_tasks(self) -> list[Task]:
        """``trainer.val_tasks`` tasks of the env's validation split (all when 0), see
        :func:`~skillzero.core.tasks.balanced_subset`."""
        if self._val_tasks is None:
            tasks = list(self.env_spec.list_tasks(self.env_cfg, self.config.env.val_split))
            self._val_tasks = balanced_subset(tasks, int(self.config.trainer.val_tasks))
        return self._val_tasks

    def build_skill_provider(self, skills_cfg: Mapping[str, Any]) -> SkillProvider:
        """A registered skill provider from a ``skills``-group mapping (its ``bank``
        defaults to the env's name)."""
        return make_skill_provider(skills_cfg, str(self.config.env.name))

    def count_tokens(self, text: str) -> int:
        return count_tokens(self.tokenizer, text)

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

    def expert_samples(
        self, tasks: Sequence[Task], skill_providers: Sequence[SkillProvider]
    ) -> list[Any]:
        """The env expert's plans for ``tasks`` replayed once per provider in
        ``skill_providers``, on the main process (the validation pool, the env's
        ``max_steps``): one :class:`~skillzero.core.sft.ReplayResult` per provider, whose
        samples are the prompts the policy would see at each expert step with that
        provider's skills and the expert's action as the response. Plans run the same
        in every replay (same tasks, seeds and actions), so the samples pair up by
        ``(task_id, step)``. Raises when the env has no expert or its parser cannot
        write actions."""
        from skillzero.core.sft import expert_demonstrations, replay_demonstrations

        if not hasattr(self.parser, "render"):
            raise ValueError(
                f"env {self.config.env.name!r}: its action parser cannot write the "
                "expert's actions (no render())"
            )
        demos, _ = expert_demonstrations(self.env_spec, self.env_cfg, list(tasks))
        pool = self._pool("val")

        def encode(text: str) -> list[int]:
            return list(self.tokenizer.encode(text, add_special_tokens=False))

        results = []
        for provider in skill_providers:
            results.append(
                replay_demonstrations(
                    pool,
                    demos,
                    self.prompt_builder,
                    self.parser,
                    apply_chat_template=self.apply_chat_template,
                    encode=encode,
                    eos_token_id=self.tokenizer.eos_token_id,
                    max_prompt_tokens=int(self.config.env.max_prompt_tokens),
                    render_skills=lambda ctx, p=provider: self.render_skills(p, ctx),
                    # a plan cut at max_steps still shows the expert's first actions
                    only_won=False,
                )
            )
        return results

    def apply_chat_template(self, messages: list[dict[str, str]]) -> list[int]:
        """Prompt ids of one chat, ending with the assistant's generation prompt."""
        return chat_prompt_ids(self.tokenizer, messages)

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

    def _write_prompts(self, step: int, tag: str, prompts: list[dict[str, Any]]) -> None:
        """Append sample prompts to ``prompts.jsonl`` (what the policy actually saw)."""
        if self.is_main_process:
            append_prompts(self.run_dir, step, tag, prompts)

    def _flush(self, step: int) -> None:
        if self._pending:
            self.logger.log(self._pending, step)
        self._pending = {}

    # ------------------------------------------------------------------------------------
    # the starting weights
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

    def _starting_model(self, base_model_path: str) -> tuple[str, dict[str, Any]]:
        """The weights RL starts from (and the KL reference) and the warm start's summary:
        ``base_model_path``, or with ``trainer.warm_start=sft`` the cached supervised
        warm start (built on first use; ``auto``: sft where the env has demonstrations
        and its parser can write them). A resumed run starts from its checkpoint."""
        cfg = self.config
        warm_start = str(cfg_get(cfg.trainer, "warm_start", "none") or "none")
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
            model_path, summary = ensure_warm_start(cfg, self.ctx)
            if self.is_main_process:
                (self.run_dir / "warm_start.json").write_text(
                    json.dumps({"model": model_path, **summary}, indent=2)
                )
            return model_path, summary
        if warm_start not in ("none", "sft"):  # (auto was resolved above)
            raise ValueError(f"trainer.warm_start={warm_start!r}: choose none, sft or auto")
        return base_model_path, {}

    # ------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------
    def save_checkpoint(self, step: int) -> Path:
        """Write an atomic checkpoint of ``step`` (collective)."""
        return run_state.save_checkpoint(
            self.run_dir,
            step,
            ctx=self.ctx,
            policy=self.policy,
            tokenizer=self.tokenizer,
            state=lambda: self._trainer_state(step),
            keep=int(self.config.trainer.keep_checkpoints),
        )

    def _trainer_state(self, step: int) -> dict[str, Any]:
        return run_state.trainer_state(
            step,
            policy=self.policy,
            sampler=self.sampler,
            traj_counter=self._traj_counter,
            callbacks=self.callbacks,
            skill_provider=self.skill_provider,
            config=self.config,
        )

    def _restore(self, path: Path) -> None:
        state = run_state.restore_checkpoint(
            path,
            ctx=self.ctx,
            policy=self.policy,
            sampler=self.sampler,
            callbacks=self.callbacks,
            skill_provider=self.skill_provider,
        )
        self._traj_counter = int(state.get("traj_counter", 0))
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


__all__ = [
    "Trainer",
    "ValidationResult",
    "balanced_subset",
    "episode_metrics",
    "make_skill_provider",
    "sampling_params",
    "train",
]
