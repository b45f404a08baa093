"""Supervised warm start: ``skillzero sft env=...``.

Many agent-RL recipes start RL from a supervised ("cold start") policy. This module
builds that policy from demonstrations:

* **expert plans**: the env's registered expert (``register_envs(..., expert=...)``)
  gives a sequence of actions that solves each training task (ALFWorld: the planner
  walkthrough stored in every game file);
* **recorded episodes**: a ``skillzero eval`` JSON report or a JSONL file of episodes
  (``{"task_id": ..., "actions": [...], "won": true, "seed": 0}``), e.g. a stronger
  model's episodes.

Each demonstration is **replayed in the real env** (an :class:`EnvPool`), and every step
becomes one supervised sample whose prompt is built exactly as in RL: the same
:class:`PromptContext`, prompt builder, history window (history shown as the actions the
env received), token limit (:func:`fit_prompt`) and skill block; the target is the
expert action written in the env's response format (the parser's ``render``), followed
by EOS. A replay that does not end in a win is dropped (``sft.only_won``), so a stale
plan never teaches wrong actions.

The loss is the token-mean negative log-likelihood of the response tokens (the ``nll``
loss term), optimised by the same FSDP :class:`~skillzero.core.policy.Policy` as RL.
``SFTTrainer`` is a :class:`~skillzero.core.training.Trainer` whose step is a supervised
mini-batch instead of a rollout, so checkpoints (HF folders), ``metrics.jsonl``, plots,
validation in the env and ``trainer.resume`` work as for ``skillzero train``. Each
``sft.eval_every`` steps it reports the loss on held-out tasks' expert samples and the
share of held-out expert steps where the greedy policy writes the expert action.

``trainer.warm_start=sft`` in ``skillzero train`` builds such a checkpoint on first use
(:func:`ensure_warm_start`), caches it under the user cache keyed by everything that
shapes it, and starts RL from it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict

from skillzero import registry
from skillzero.contracts.env import PromptContext, Task, TurnRecord, render_response
from skillzero.contracts.skills import EMPTY_SKILLS, SkillProvider
from skillzero.contracts.trajectory import K, StepSample, action_mask, collate_steps
from skillzero.core import checkpoint as ckpt
from skillzero.core.collector import fit_prompt, skill_block_for
from skillzero.core.components import (
    chat_prompt_ids,
    count_tokens,
    make_pool,
    make_skill_provider,
)
from skillzero.core.config import cfg_get, to_container
from skillzero.core.distributed import DistContext, init_distributed
from skillzero.core.pool import EnvPool
from skillzero.core.tasks import balanced_subset
from skillzero.core.training import Trainer
from skillzero.core.update import sync_weights

# ----------------------------------------------------------------------------------------
# Demonstrations
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demonstration:
    """A sequence of actions to replay from the start of ``task`` (env seed ``seed``)."""

    task: Task
    actions: tuple[str, ...]
    seed: int = 0


def expert_demonstrations(
    env_spec: Any, env_cfg: Mapping[str, Any], tasks: Sequence[Task]
) -> tuple[list[Demonstration], int]:
    """The env expert's plan for each task; returns the demonstrations and the number of
    tasks the expert had no plan for."""
    expert = env_spec.make_expert(env_cfg)
    if expert is None:
        raise ValueError(
            f"env {env_spec.name!r} registers no expert; give recorded episodes instead "
            "(sft.source=PATH to a `skillzero eval` report or a JSONL of episodes)"
        )
    demos, missing = [], 0
    try:
        for i, task in enumerate(tasks):
            actions = expert.actions(task)
            if not actions:
                missing += 1
                continue
            demos.append(Demonstration(task, tuple(str(a) for a in actions), seed=i))
    finally:
        # an expert that plays the env itself (ALFWorld's searching expert) holds an engine
        close = getattr(expert, "close", None)
        if callable(close):
            close()
    return demos, missing


def read_episode_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Episode records from a ``skillzero eval`` report (``{"episodes": [...]}``), a JSON
    list, or a JSONL file (one episode per line; blank lines are skipped). A line that
    is not a JSON object is an error naming the file and line."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"sft.source: no file {file}")
    text = file.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("{") and file.suffix != ".jsonl":
        data = json.loads(text)
        records = data.get("episodes") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise ValueError(f"{file}: a JSON report needs an 'episodes' list")
        return [r for r in records if isinstance(r, dict)]
    if stripped.startswith("["):
        data = json.loads(text)
        return [r for r in data if isinstance(r, dict)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{file}:{number}: expected a JSON object per line")
        records.append(record)
    return records


def recorded_demonstrations(
    records: Sequence[Mapping[str, Any]],
    tasks: Sequence[Task],
    *,
    only_won: bool = True,
) -> tuple[list[Demonstration], dict[str, int]]:
    """Demonstrations from episode records whose ``task_id`` is one of ``tasks``.

    An episode is kept when it has actions, every action is valid (an invalid response
    is recorded as ``null``) and, with ``only_won``, it was won. Returns the
    demonstrations and counts of what was skipped and why."""
    by_id = {task.task_id: task for task in tasks}
    demos: list[Demonstration] = []
    skipped = {"unknown_task": 0, "not_won": 0, "invalid_actions": 0, "no_actions": 0}
    for record in records:
        task = by_id.get(str(record.get("task_id", "")))
        if task is None:
            skipped["unknown_task"] += 1
            continue
        if only_won and not record.get("won", False):
            skipped["not_won"] += 1
            continue
        actions = record.get("actions")
        if not isinstance(actions, list) or not actions:
            skipped["no_actions"] += 1
            continue
        if any(not isinstance(a, str) or not a for a in actions):
            skipped["invalid_actions"] += 1
            continue
        seed = record.get("seed")
        demos.append(Demonstration(task, tuple(actions), seed=int(seed or 0)))
    return demos, skipped


# ----------------------------------------------------------------------------------------
# Replay: demonstrations -> supervised step samples
# ----------------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    """Samples of the replayed demonstrations and what happened to each."""

    samples: list[StepSample] = field(default_factory=list)
    replayed: int = 0
    won: int = 0
    dropped: list[str] = field(default_factory=list)
    """``"<task_id>: <why>"`` for each demonstration whose samples were not kept."""
    steps: int = 0
    skill_sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The skill sources in the prompts of each kept demonstration, by task id."""

    def metrics(self) -> dict[str, float]:
        return {
            "sft/demonstrations": float(self.replayed),
            "sft/demonstrations_won": float(self.won),
            "sft/demonstrations_dropped": float(len(self.dropped)),
            "sft/samples": float(len(self.samples)),
            "sft/steps_per_demonstration": self.steps / max(1, self.replayed),
        }


@dataclass
class _Replay:
    index: int
    demo: Demonstration
    observation: str
    first_observation: str
    admissible: list[str] | None
    skill_block: str = ""
    skill_ids: tuple[str, ...] = ()
    skill_sources: tuple[str, ...] = ()
    history: list[TurnRecord] = field(default_factory=list)
    samples: list[StepSample] = field(default_factory=list)
    problem: str | None = None


def replay_demonstrations(
    pool: EnvPool,
    demos: Sequence[Demonstration],
    prompt_builder: Any,
    parser: Any,
    *,
    apply_chat_template: Callable[[list[dict[str, str]]], list[int]],
    encode: Callable[[str], list[int]],
    eos_token_id: int | None,
    max_prompt_tokens: int,
    render_skills: Callable[[PromptContext], Any] | None = None,
    only_won: bool = True,
    progress: Any = None,
) -> ReplayResult:
    """Play every demonstration in ``pool`` and turn its steps into samples.

    Up to ``pool.num_envs`` demonstrations run side by side. At each step the prompt is
    built as the collector builds it, the expert action is written in the env's
    response format and parsed back (a format that cannot express the action drops the
    demonstration), and the env receives exactly what the parser returned. ``progress``:
    an optional tqdm-like bar advanced once per finished demonstration."""
    result = ReplayResult()
    queue = list(enumerate(demos))
    running: dict[int, _Replay] = {}

    def start(slots: Sequence[int]) -> None:
        batch = {slot: queue.pop(0) for slot in slots if queue}
        if not batch:
            return
        replies = pool.reset_envs({s: (d.task, d.seed) for s, (_, d) in batch.items()})
        for slot, (index, demo) in batch.items():
            reply = replies[slot]
            state = _Replay(
                index, demo, reply.observation, reply.observation, reply.admissible_actions
            )
            result.replayed += 1
            if reply.done:
                if progress is not None:
                    progress.update(1)
                result.dropped.append(
                    f"{demo.task.task_id}: the env failed to start ({reply.info.get('error')})"
                )
                continue
            if render_skills is not None:
                rendered = render_skills(_context(state))
                state.skill_block, state.skill_ids = rendered.text, tuple(rendered.skill_ids)
                state.skill_sources = tuple(rendered.sources)
            running[slot] = state

    def finish(slot: int, won: bool) -> None:
        state = running.pop(slot)
        if progress is not None:
            progress.update(1)
        result.steps += len(state.history)
        if state.problem is None and only_won and not won:
            state.problem = f"the replay ended without a win after {len(state.history)} steps"
        if state.problem is not None:
            result.dropped.append(f"{state.demo.task.task_id}: {state.problem}")
        else:
            result.won += int(won)
            result.skill_sources[state.demo.task.task_id] = state.skill_sources
            for sample in state.samples:
                sample.won = won
                sample.episode_return = float(won)
            result.samples.extend(state.samples)

    start(list(range(pool.num_envs)))
    while queue and len(running) < pool.num_envs:  # refill slots whose reset failed
        start([s for s in range(pool.num_envs) if s not in running])

    while running:
        actions: dict[int, str] = {}
        for slot in sorted(running):
            state = running[slot]
            step = len(state.history)
            if step >= len(state.demo.actions):
                state.problem = f"the plan ran out after {step} actions without ending"
                continue
            wanted = state.demo.actions[step]
            response = render_response(parser, wanted)
            parsed = parser(response, state.admissible)
            if not parsed.valid:
                state.problem = f"step {step + 1}: {wanted!r} does not parse ({parsed.reason})"
                continue
            ctx = _context(state)
            prompt_ids, used, _ = fit_prompt(
                ctx, prompt_builder, apply_chat_template, max_prompt_tokens
            )
            response_ids = list(encode(response))
            if eos_token_id is not None:
                response_ids.append(int(eos_token_id))
            state.samples.append(
                StepSample(
                    prompt_ids=prompt_ids,
                    response_ids=response_ids,
                    rollout_log_probs=[0.0] * len(response_ids),
                    group_id=state.index,
                    traj_id=state.index,
                    step=step,
                    action_valid=True,
                    anchor_observation=state.observation,
                    task_type=state.demo.task.task_type,
                    skill_ids=state.skill_ids,
                    task_id=state.demo.task.task_id,
                    prompt_context=used,
                )
            )
            actions[slot] = parsed.action
        for slot in [s for s in sorted(running) if running[s].problem is not None]:
            finish(slot, won=False)
        if not actions:
            start([s for s in range(pool.num_envs) if s not in running])
            continue
        replies = pool.step(actions)
        for slot, action in actions.items():
            state = running[slot]
            reply = replies[slot]
            state.samples[-1].reward = float(reply.reward)
            state.samples[-1].done = reply.done
            state.history.append(TurnRecord(state.observation, action))
            state.observation = reply.observation
            if reply.admissible_actions is not None or reply.done:
                state.admissible = reply.admissible_actions
            if reply.done:
                finish(slot, won=reply.won)
        start([s for s in range(pool.num_envs) if s not in running])
    return result


def _context(state: _Replay) -> PromptContext:
    return PromptContext(
        task=state.demo.task,
        observation=state.observation,
        step=len(state.history) + 1,
        history=tuple(state.history),
        admissible_actions=tuple(state.admissible) if state.admissible else None,
        first_observation=state.first_observation,
        skill_block=state.skill_block,
    )


def split_heldout(
    demos: Sequence[Demonstration], heldout_tasks: int, seed: int
) -> tuple[list[Demonstration], list[Demonstration]]:
    """Hold the demonstrations of ``heldout_tasks`` tasks (drawn with ``seed``) out of
    training; they measure held-out loss and action accuracy."""
    task_ids = sorted({d.task.task_id for d in demos})
    if heldout_tasks <= 0 or len(task_ids) < 2:
        return list(demos), []
    count = min(heldout_tasks, len(task_ids) - 1)
    held = set(random.Random(seed).sample(task_ids, count))
    return (
        [d for d in demos if d.task.task_id not in held],
        [d for d in demos if d.task.task_id in held],
    )


# ----------------------------------------------------------------------------------------
# The SFT run
# ----------------------------------------------------------------------------------------


@dataclass
class SFTData:
    """What rank 0 builds before training and every rank receives."""

    train: list[StepSample]
    heldout: list[StepSample]
    metrics: dict[str, float]
    dropped: list[str]


def build_sft_data(cfg: DictConfig) -> SFTData:
    """Demonstrations of ``cfg.sft.source`` on ``env.train_split``, replayed into samples
    (runs on one process; the trainer broadcasts the result)."""
    from transformers import AutoTokenizer

    from skillzero.core.models import resolve_model_path

    sft = cfg.sft
    env_spec = registry.get("envs", cfg.env.name)
    env_cfg = to_container(cfg.env)
    tasks = list(env_spec.list_tasks(env_cfg, cfg.env.train_split))
    if sft.max_tasks:  # round-robin over task types: every type gets demonstrations
        tasks = balanced_subset(tasks, int(sft.max_tasks))
    if not tasks:
        raise ValueError(f"env {cfg.env.name!r} has no tasks in split {cfg.env.train_split!r}")
    source = str(sft.source)
    metrics: dict[str, float] = {}
    if source == "expert":
        demos, missing = expert_demonstrations(env_spec, env_cfg, tasks)
        metrics["sft/tasks_without_plan"] = float(missing)
    else:
        demos, skipped = recorded_demonstrations(
            read_episode_records(source), tasks, only_won=bool(sft.only_won)
        )
        metrics.update({f"sft/skipped_{k}": float(v) for k, v in skipped.items()})
    if not demos:
        raise ValueError(
            f"sft.source={source!r} gave no demonstrations for the {len(tasks)} tasks of "
            f"{cfg.env.name}/{cfg.env.train_split}"
        )
    model_path = resolve_model_path(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    prompt_builder = env_spec.make_prompt_builder(env_cfg)
    parser = env_spec.make_action_parser(env_cfg)
    provider: SkillProvider = make_skill_provider(to_container(cfg.skills), str(cfg.env.name))

    def render(ctx: PromptContext) -> Any:
        if cfg_get(cfg.skills, "provider", "none") == "none":
            return EMPTY_SKILLS
        return skill_block_for(
            provider,
            ctx,
            prompt_builder,
            lambda text: count_tokens(tokenizer, text),
            cfg_get(cfg.skills, "budget_tokens"),
        )

    def chat_ids(messages: list[dict[str, str]]) -> list[int]:
        return chat_prompt_ids(tokenizer, messages)

    train_demos, heldout_demos = split_heldout(demos, int(sft.heldout_tasks), int(cfg.trainer.seed))
    # a plan longer than env.max_steps would be cut off before its win: replay whole plans
    replay_cfg = {
        **env_cfg,
        "max_steps": max(int(cfg.env.max_steps), *(len(d.actions) for d in demos)),
    }
    with make_pool(
        env_spec,
        replay_cfg,
        cfg.env.pool,
        num_groups=max(1, min(int(sft.replay_envs), len(demos))),
        group_size=1,
        seed=int(cfg.trainer.seed),
    ) as pool:
        from skillzero.core.metrics_log import progress

        bar = progress(len(demos), f"sft replay {cfg.env.name}", unit="demo")
        replays = [
            replay_demonstrations(
                pool,
                part,
                prompt_builder,
                parser,
                apply_chat_template=chat_ids,
                encode=lambda text: tokenizer.encode(text, add_special_tokens=False),
                eos_token_id=tokenizer.eos_token_id,
                max_prompt_tokens=int(cfg.env.max_prompt_tokens),
                render_skills=render,
                only_won=bool(sft.only_won),
                progress=bar,
            )
            for part in (train_demos, heldout_demos)
        ]
        bar.close()
    train, heldout = replays
    metrics.update(train.metrics())
    metrics["sft/heldout_samples"] = float(len(heldout.samples))
    if not train.samples:
        raise ValueError(
            "no demonstration replayed to a win; first problems: " + "; ".join(train.dropped[:3])
        )
    return SFTData(train.samples, heldout.samples, metrics, train.dropped + heldout.dropped)


def sft_run_config(cfg: DictConfig, total_steps: int) -> DictConfig:
    """The trainer config of an SFT run: the ``nll`` loss alone, ``sft.*`` optimiser
    settings, one optimiser step per ``sft.batch_size`` samples, validation in the env
    before and after."""
    run = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.set_struct(run, False)
    sft = run.sft
    run.algo = {
        "name": "sft",
        "advantage": {"name": "grpo", "params": {}},
        "loss_terms": [{"name": "nll", "coef": 1.0, "params": {}}],
        "callbacks": [],
        "dynamic_sampling": False,
        "max_resample_rounds": 0,
        "params": {},
    }
    run.trainer.total_steps = int(total_steps)
    run.trainer.warm_start = "none"  # this run builds the warm start
    run.trainer.minibatch_size = int(sft.batch_size)
    run.trainer.ppo_epochs = 1
    run.trainer.val_every = 0
    run.trainer.val_before_train = True  # the base model, on the same tasks and seeds
    run.trainer.save_every = 0
    run.trainer.optim.lr = float(sft.lr)
    run.trainer.optim.warmup_steps = int(sft.warmup_steps)
    run.trainer.optim.scheduler = str(sft.scheduler)
    run.trainer.optim.min_lr_ratio = float(sft.min_lr_ratio)
    return run


def sft_steps(num_samples: int, epochs: float, batch_size: int) -> int:
    return max(1, math.ceil(epochs * num_samples / max(1, batch_size)))


class SFTTrainer(Trainer):
    """A :class:`~skillzero.core.training.Trainer` whose step is a supervised
    mini-batch of demonstration samples (see the module docstring)."""

    def __init__(self, cfg: DictConfig, *, ctx: DistContext | None = None) -> None:
        ctx = ctx or init_distributed(str(cfg.trainer.device))
        data = None
        if ctx.is_main:
            begin = time.perf_counter()
            data = build_sft_data(cfg)
            data.metrics["time/replay"] = time.perf_counter() - begin
            print(
                f"[skillzero] sft: {len(data.train)} samples from "
                f"{int(data.metrics['sft/demonstrations_won'])} demonstrations "
                f"({len(data.heldout)} held-out samples; "
                f"{len(data.dropped)} demonstrations dropped)"
            )
            for problem in data.dropped[:5]:
                print(f"[skillzero] sft: dropped {problem}")
        data = ctx.broadcast_object(data)
        assert data is not None
        self.data: SFTData = data
        sft = cfg.sft
        steps = sft_steps(len(data.train), float(sft.epochs), int(sft.batch_size))
        super().__init__(sft_run_config(cfg, steps), ctx=ctx)
        self.batch_size = int(sft.batch_size)
        self.eval_every = int(sft.eval_every)
        self.validate_after = bool(cfg_get(sft, "validate_after", True))
        self._heldout_batch = (
            collate_steps(data.heldout, pad_token_id=self.pad_token_id) if data.heldout else None
        )
        self.log(data.metrics)

    # -- data order ----------------------------------------------------------------------
    def _indices(self, step: int) -> list[int]:
        """The samples of optimiser step ``step`` (1-based): consecutive slices of one
        seeded permutation per epoch, so a resumed run sees the same order."""
        n = len(self.data.train)
        orders: dict[int, torch.Tensor] = {}
        out: list[int] = []
        for position in range((step - 1) * self.batch_size, step * self.batch_size):
            epoch, offset = divmod(position, n)
            if epoch not in orders:
                generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
                orders[epoch] = torch.randperm(n, generator=generator)
            out.append(int(orders[epoch][offset]))
        return out

    # -- evaluation ----------------------------------------------------------------------
    def heldout_metrics(self) -> dict[str, float]:
        """Loss on the held-out expert samples and the share of them the greedy policy
        reproduces (collective; one forward pass for both, see :meth:`action_accuracy`)."""
        if self._heldout_batch is None:
            return {}
        batch = self._heldout_batch
        log_probs, greedy = self.policy.compute_log_probs(
            batch, pad_token_id=self.pad_token_id, greedy=True
        )
        mask = batch[K.RESPONSE_MASK].float()
        metrics = {
            "sft/heldout_loss": float(-(log_probs * mask).sum() / mask.sum().clamp(min=1)),
            "sft/heldout_action_accuracy": self._reproduced(batch, greedy),
        }
        return self.ctx.broadcast_object(metrics)

    def action_accuracy(self, samples: Sequence[StepSample]) -> float:
        """Share of ``samples`` whose greedy response is the expert's (collective).

        Measured by teacher forcing: every response token is the most likely one given
        the expert's tokens before it, which is exactly when greedy decoding writes the
        expert's response. A final end-of-sequence token is not required (generation
        stops at the format's stop string before it). One forward pass, no generation."""
        batch = collate_steps(list(samples), pad_token_id=self.pad_token_id)
        _, greedy = self.policy.compute_log_probs(
            batch, pad_token_id=self.pad_token_id, greedy=True
        )
        return self._reproduced(batch, greedy)

    def _reproduced(self, batch: TensorDict, greedy: torch.Tensor) -> float:
        mask = action_mask(batch, self.tokenizer.eos_token_id)
        hits = (greedy | ~mask).all(-1)
        return float(hits.float().mean()) if hits.numel() else 0.0

    def _sync_weights(self) -> None:
        sync_weights(self.policy, self.backend)

    # -- one step ------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        started = time.perf_counter()
        self._validation_seconds = 0.0
        if step == 1 and self.eval_every:
            self.log({k: v for k, v in self.heldout_metrics().items()})
            self._flush(0)
        batch = collate_steps(
            [self.data.train[i] for i in self._indices(step)], pad_token_id=self.pad_token_id
        )
        begin = time.perf_counter()
        metrics = self.policy.update(
            batch,
            self.terms,
            minibatch_size=batch.shape[0],
            ppo_epochs=1,
            generator=torch.Generator().manual_seed(self.seed + step),
        )
        metrics["time/update"] = time.perf_counter() - begin
        metrics["sft/epoch"] = step * self.batch_size / len(self.data.train)
        self.step = step
        last = step == self.total_steps
        if (self.eval_every and step % self.eval_every == 0) or last:
            begin = time.perf_counter()
            self._sync_weights()
            metrics.update(self.heldout_metrics())
            if last and self.validate_after:
                self.validate()
            metrics["time/evaluation"] = time.perf_counter() - begin
        metrics["time/step"] = time.perf_counter() - started
        self.log(metrics)
        self._flush(step)
        return metrics


def run_sft(cfg: DictConfig) -> Path:
    """Run ``skillzero sft``; returns the final checkpoint folder (its ``model/`` is a
    Hugging Face folder that ``model.path=`` accepts)."""
    trainer = SFTTrainer(cfg)
    try:
        trainer.fit()
    finally:
        trainer.close()
    final = ckpt.step_dir(trainer.run_dir, trainer.step)
    if trainer.is_main_process:
        print(f"[skillzero] sft finished {trainer.step} steps; checkpoint: {final}")
    return final


def sft(cfg: DictConfig) -> int:
    """Entry point of ``skillzero sft``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    run_sft(cfg)
    return 0


# ----------------------------------------------------------------------------------------
# The cached warm start of `skillzero train trainer.warm_start=sft`
# ----------------------------------------------------------------------------------------

WARM_START_MARKER = "COMPLETE"
WARM_START_SUMMARY = "summary.json"


def warm_start_key(cfg: DictConfig, task_ids: Sequence[str], device_type: str) -> str:
    """A hash of everything that shapes the SFT checkpoint: the base model and the
    precision it computes in on ``device_type``, the env's prompt and format settings, the
    training tasks, the skills and the sft settings."""
    from skillzero.core.models import resolve_compute_dtype, resolve_model_path

    env = to_container(cfg.env)
    shaping = {
        "model": resolve_model_path(cfg.model),
        "model_dtype": str(cfg.model.dtype),
        # what `auto` resolved to on this device
        "model_compute_dtype": str(
            resolve_compute_dtype(cfg_get(cfg.model, "compute_dtype", None), device_type)
        ),
        "model_trainable_layers": cfg_get(cfg.model, "trainable_layers", None),
        "env": {k: v for k, v in env.items() if k not in ("pool", "num_groups", "group_size")},
        "tasks": hashlib.sha256("\n".join(task_ids).encode()).hexdigest(),
        "skills": to_container(cfg.skills),
        "sft": {k: v for k, v in to_container(cfg.sft).items() if k != "cache_dir"},
        "seed": int(cfg.trainer.seed),
        "val_tasks": int(cfg.trainer.val_tasks),
        "version": 1,
    }
    blob = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def warm_start_root(cfg: DictConfig) -> Path:
    configured = cfg_get(cfg.sft, "cache_dir", None)
    if configured:
        return Path(str(configured)).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillzero" / "sft"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks: rely on the rename
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_warm_start(cfg: DictConfig, ctx: DistContext) -> tuple[str, dict[str, Any]]:
    """The model folder of the cached SFT warm start for ``cfg`` (built on first use;
    collective) and its summary (the SFT run's validation before and after, with no
    skills in the prompt: the starting policy's zero-skill numbers)."""
    # The warm start is the zero-skill policy (RL decides how skills enter the prompt):
    # its samples and its validations carry no skill block, which also keeps it cheap.
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    OmegaConf.set_struct(cfg, False)
    cfg.skills = {"provider": "none", "bank": None, "budget_tokens": None, "params": {}}
    root = None
    if ctx.is_main:
        env_spec = registry.get("envs", cfg.env.name)
        tasks = env_spec.list_tasks(to_container(cfg.env), cfg.env.train_split)
        root = str(
            warm_start_root(cfg)
            / f"{cfg.env.name}-{warm_start_key(cfg, [t.task_id for t in tasks], ctx.device.type)}"
        )
    final = Path(ctx.broadcast_object(root))
    ready = ctx.broadcast_object((final / WARM_START_MARKER).is_file() if ctx.is_main else None)
    if not ready:
        lock = final.with_name(final.name + ".lock")
        with _locked(lock) if ctx.is_main else contextlib.nullcontext():
            done = ctx.broadcast_object(
                (final / WARM_START_MARKER).is_file() if ctx.is_main else None
            )
            if not done:
                if ctx.is_main:
                    print(f"[skillzero] building the SFT warm start (cached in {final})")
                work = final.with_name(final.name + ".partial")
                if ctx.is_main and work.exists():
                    shutil.rmtree(work)
                run = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
                OmegaConf.set_struct(run, False)
                run.trainer.output_dir = str(work / "run")
                run.trainer.resume = False
                run.trainer.warm_start = "none"
                # the console line shows the warm start's progress; no separate TB/W&B run
                run.trainer.loggers = [
                    name for name in cfg.trainer.loggers if name in ("console", "jsonl")
                ] or ["jsonl"]
                run.trainer.plots = True
                run.trainer.log_prompts = 0
                trainer = SFTTrainer(run, ctx=ctx)
                try:
                    trainer.fit()
                finally:
                    trainer.close()
                    # free the SFT policy, optimizer and backend before RL builds its own
                    del trainer
                    gc.collect()
                if ctx.is_main:
                    checkpoint = ckpt.latest_checkpoint(work / "run")
                    assert checkpoint is not None
                    shutil.copytree(checkpoint / "model", work / "model")
                    summary = _summarise(work / "run" / "metrics.jsonl")
                    (work / WARM_START_SUMMARY).write_text(json.dumps(summary, indent=2))
                    (work / WARM_START_MARKER).write_text("ok\n")
                    if final.exists():
                        shutil.rmtree(final)
                    os.replace(work, final)
                ctx.barrier()
    summary = {}
    if ctx.is_main:
        try:
            summary = json.loads((final / WARM_START_SUMMARY).read_text())
        except (OSError, ValueError):
            summary = {}
        print(f"[skillzero] warm start: {final / 'model'}", file=sys.stderr)
    summary = ctx.broadcast_object(summary)
    return str(final / "model"), summary


def _summarise(metrics_file: Path) -> dict[str, Any]:
    """The SFT run's validation before (step 0) and after (last step), and its held-out
    numbers, from its ``metrics.jsonl``."""
    records = []
    with contextlib.suppress(OSError):
        for line in metrics_file.read_text().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    first = next((r for r in records if r.get("step") == 0 and "val/success_rate" in r), {})
    last = next(
        (r for r in reversed(records) if "val/success_rate" in r and r.get("step", 0) > 0), {}
    )
    keys = ("val/success_rate", "val/valid_action_ratio", "val/episode_length")
    summary: dict[str, Any] = {f"base/{k}": first.get(k) for k in keys}
    summary.update({f"sft/{k}": last.get(k) for k in keys})
    for record in reversed(records):
        for key in ("sft/heldout_loss", "sft/heldout_action_accuracy", "sft/samples"):
            if key in record and f"final/{key}" not in summary:
                summary[f"final/{key}"] = record[key]
    summary["steps"] = max((int(r.get("step", 0)) for r in records), default=0)
    return summary


__all__ = [
    "Demonstration",
    "ReplayResult",
    "SFTTrainer",
    "build_sft_data",
    "ensure_warm_start",
    "expert_demonstrations",
    "read_episode_records",
    "recorded_demonstrations",
    "replay_demonstrations",
    "run_sft",
    "sft",
]
