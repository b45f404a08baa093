"""The learner's side of one step, from a collected batch to new weights in the sampler.

In the order the trainer calls them: :func:`add_penalty` (the invalid-action penalty and
the step number, as batch keys), :func:`add_old_log_probs` (what the current weights and
the frozen reference give the sampled responses), :func:`add_advantages` (the
algorithm's estimator), :func:`update_policy` (``ppo_epochs`` x mini-batches x
micro-batches of ``sum(coef * term)``) and :func:`sync_weights` (the new weights go to
the rollout backend). Each reads and writes the batch keys documented in
:mod:`skillzero.contracts.trajectory`; every rank runs them (they are collective where
the policy is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDict

from skillzero.contracts.losses import AdvantageEstimator, WeightedTerm
from skillzero.contracts.rollout import RolloutBackend
from skillzero.contracts.trajectory import K

if TYPE_CHECKING:  # the policy module is imported when a trainer builds one
    from skillzero.core.policy import Policy


def add_penalty(batch: TensorDict, penalty: float, step: int) -> None:
    """``penalty`` = ``coef * (1 - action_valid)`` and ``training_step`` on every sample."""
    batch[K.PENALTY] = penalty * (~batch[K.ACTION_VALID]).float()
    batch[K.TRAINING_STEP] = torch.full((batch.shape[0],), step, dtype=torch.long)


def add_old_log_probs(
    policy: Policy, batch: TensorDict, *, recompute: bool, pad_token_id: int
) -> None:
    """``old_log_probs``: the current weights' log-probs of the sampled responses (or,
    with ``recompute`` false, the sampler's own), and ``ref_log_probs`` when the policy
    holds a frozen reference (some loss term needs it). Collective."""
    if recompute:
        batch[K.OLD_LOG_PROBS] = policy.compute_log_probs(batch, pad_token_id=pad_token_id)
    else:  # the sampler's own log-probs (see trainer.recompute_log_probs)
        batch[K.OLD_LOG_PROBS] = batch[K.ROLLOUT_LOG_PROBS].clone()
    if policy.reference is not None:
        batch[K.REF_LOG_PROBS] = policy.compute_log_probs(
            batch, reference=True, pad_token_id=pad_token_id
        )


def sampler_gap(batch: TensorDict) -> float:
    """Token-mean absolute gap between the sampler's and the trainer's log-probs of the
    responses: how far the two computations differ (0 for an exact sampler)."""
    mask = batch[K.RESPONSE_MASK]
    return float(
        ((batch[K.ROLLOUT_LOG_PROBS] - batch[K.OLD_LOG_PROBS]).abs() * mask).sum()
        / mask.sum().clamp(min=1)
    )


def add_advantages(estimator: AdvantageEstimator, batch: TensorDict) -> dict[str, float]:
    """``advantages`` from the algorithm's estimator; returns ``advantage/...`` metrics."""
    advantages = estimator(batch)
    batch[K.ADVANTAGES] = advantages.float()
    metrics = {f"advantage/{k}": v for k, v in estimator.metrics().items()}
    metrics["advantage/mean"] = float(advantages.float().mean())
    metrics["advantage/abs_mean"] = float(advantages.float().abs().mean())
    return metrics


def update_policy(
    policy: Policy,
    batch: TensorDict,
    terms: Sequence[WeightedTerm],
    *,
    minibatch_size: int,
    ppo_epochs: int,
    seed: int,
    needs_entropy: bool = False,
    progress: Any = None,
) -> dict[str, float]:
    """``ppo_epochs`` passes over ``batch`` in shuffled mini-batches (the shuffle drawn
    from ``seed``), one optimiser step each; returns the loss terms' metrics.
    Collective."""
    return policy.update(
        batch,
        terms,
        minibatch_size=minibatch_size,
        ppo_epochs=ppo_epochs,
        generator=torch.Generator().manual_seed(seed),
        needs_entropy=needs_entropy,
        progress=progress,
    )


def update_count(batch_size: int, minibatch_size: int, ppo_epochs: int) -> int:
    """Optimiser steps of one :func:`update_policy` call (for a progress bar)."""
    return ppo_epochs * -(-batch_size // minibatch_size)


def sync_weights(policy: Policy, backend: RolloutBackend | None) -> None:
    """Send the policy's full weights to the rollout backend (rank 0 holds it; the
    gathering of the weights is collective, so every rank calls this)."""
    state = policy.full_state_dict()
    if backend is not None:
        backend.wake()
        backend.load_weights(state.items())
    del state


__all__ = [
    "add_advantages",
    "add_old_log_probs",
    "add_penalty",
    "sampler_gap",
    "sync_weights",
    "update_count",
    "update_policy",
]
