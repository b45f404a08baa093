"""A trainer's checkpoint: what it holds, writing it, and resuming from it.

A checkpoint folder (:mod:`skillzero.core.checkpoint` makes it atomic) holds the policy
as a Hugging Face folder (``model/``), the model and optimizer state sharded with
``torch.distributed.checkpoint`` (``dcp/``: each rank writes its own part, nothing is
gathered, and a resume may use another number of ranks), each rank's RNG state and
``trainer_state.pt``: the step, the learning-rate schedule, the task sampler's position,
the trajectory counter, every callback's ``state_dict`` and the skill sources still in
use. Resuming restores all of it, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from skillzero.contracts.callbacks import TrainerCallback
from skillzero.contracts.skills import SkillProvider
from skillzero.core import checkpoint as ckpt
from skillzero.core.config import to_container
from skillzero.core.distributed import DistContext
from skillzero.core.tasks import TaskSampler

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from skillzero.core.policy import Policy


def trainer_state(
    step: int,
    *,
    policy: Policy,
    sampler: TaskSampler,
    traj_counter: int,
    callbacks: Sequence[TrainerCallback],
    skill_provider: SkillProvider,
    config: DictConfig,
) -> dict[str, Any]:
    """The contents of ``trainer_state.pt`` for ``step``."""
    active = skill_provider.active_sources
    return {
        "step": step,
        "scheduler": policy.scheduler.state_dict(),
        "sampler": sampler.state_dict(),
        "traj_counter": traj_counter,
        "callbacks": {cb.name: cb.state_dict() for cb in callbacks},
        "skill_active_sources": None if active is None else sorted(active),
        "config": to_container(config),
    }


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    ctx: DistContext,
    policy: Policy,
    tokenizer: Any,
    state: Callable[[], Mapping[str, Any]],
    keep: int,
) -> Path:
    """Write the checkpoint of ``step`` atomically and return its folder (collective).
    ``state`` gives the trainer state (called on rank 0 only); ``keep`` complete
    checkpoints are kept (0: all)."""
    partial = ckpt.begin(run_dir, step) if ctx.is_main else None
    partial = Path(ctx.broadcast_object(str(partial) if partial else None))
    ckpt.save_sharded(partial, policy.model, policy.optimizer)
    weights = policy.full_state_dict()  # the export gathers the model, never the optimizer
    if ctx.is_main:
        policy.save_pretrained(str(partial / "model"), weights, tokenizer)
        torch.save(dict(state()), partial / "trainer_state.pt")
    del weights
    ckpt.save_rng(partial, ctx.rank)
    ctx.barrier()
    final = ckpt.step_dir(run_dir, step)
    if ctx.is_main:
        final = ckpt.commit(partial, step, keep=keep)
    ctx.barrier()
    return final


def restore_checkpoint(
    path: Path,
    *,
    ctx: DistContext,
    policy: Policy,
    sampler: TaskSampler,
    callbacks: Sequence[TrainerCallback],
    skill_provider: SkillProvider,
) -> dict[str, Any]:
    """Load the weights and optimizer, schedule, sampler position, callback states,
    active skill sources and this rank's RNG state of the checkpoint at ``path`` into the
    given components; returns the trainer state (``step``, ``traj_counter``, ...)."""
    state = ckpt.load_trainer_state(path)
    if ckpt.checkpoint_format(path) == "sharded":  # resharded to this run's ranks
        ckpt.load_sharded(path, policy.model, policy.optimizer)
    else:  # the older format: the weights came from model/, the optimizer gathered
        optimizer = None
        if ctx.is_main:
            optimizer = torch.load(path / ckpt.LEGACY_OPTIMIZER, weights_only=False)
        policy.load_optimizer_state(optimizer)
    policy.scheduler.load_state_dict(state["scheduler"])
    sampler.load_state_dict(state["sampler"])
    saved = state.get("callbacks", {})
    for callback in callbacks:
        if callback.name in saved:
            callback.load_state_dict(saved[callback.name])
    skill_provider.set_active_sources(state.get("skill_active_sources"))
    rng = ckpt.load_rng(path, ctx.rank)
    if rng is not None:
        ckpt.set_rng_state(rng)
    return state


__all__ = ["restore_checkpoint", "save_checkpoint", "trainer_state"]
