"""PPO-style loss terms: clipped surrogate, KL to the reference policy, entropy.

Every term reduces per-token values with :func:`skillzero.contracts.losses.token_mean`
(verl's ``loss_agg_mode="token-mean"``), and so do its metrics, so both are exact when the
trainer sums them over micro-batches. The trainer minimises ``Σ coef · term``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch

from skillzero.contracts.losses import LossOutput, LossTerm, PolicyOutputs, token_mean
from skillzero.contracts.trajectory import K

if TYPE_CHECKING:
    from tensordict import TensorDict

__all__ = ["EntropyLoss", "LowVarKLLoss", "PPOClipLoss", "kl_penalty"]

# exp() of a log-ratio beyond ±20 overflows nothing useful; verl clamps there too.
_LOG_RATIO_LIMIT = 20.0


def _token_advantages(advantages: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Advantages (B,) broadcast over the response tokens, or (B, R) as they are."""
    advantages = advantages.to(like.dtype)
    if advantages.dim() == 1:
        return advantages.unsqueeze(-1).expand_as(like)
    return advantages


class PPOClipLoss(LossTerm):
    """PPO's clipped surrogate with dual clip (verl's ``compute_policy_loss``).

    Per token, with ``ρ = exp(log π_θ - log π_old)`` and advantage ``A``::

        L^clip = max(-A ρ, -A clip(ρ, 1 - ε_low, 1 + ε_high))
        L      = min(L^clip, -A c)   if A < 0 (dual clip, Ye et al. 2020)
        L      = L^clip               otherwise

    and the loss is the token mean of ``L``. ``ε_low``/``ε_high`` default to
    ``clip_ratio`` (set them apart for DAPO's clip-higher); ``c = dual_clip`` must be
    > 1, or ``None`` to turn the dual clip off.

    Metrics (token means): ``clip_fraction``, the share of tokens where the clipped
    branch is the larger one; ``dual_clip_fraction``, where the dual clip bounds the
    loss; ``approx_kl``, the mean of ``log π_old - log π_θ``; ``ratio_mean``.
    """

    requires: ClassVar[frozenset[str]] = frozenset({K.OLD_LOG_PROBS, K.ADVANTAGES})

    def __init__(
        self,
        clip_ratio: float = 0.2,
        clip_ratio_low: float | None = None,
        clip_ratio_high: float | None = None,
        dual_clip: float | None = 3.0,
    ) -> None:
        self.clip_ratio_low = float(clip_ratio if clip_ratio_low is None else clip_ratio_low)
        self.clip_ratio_high = float(clip_ratio if clip_ratio_high is None else clip_ratio_high)
        if self.clip_ratio_low < 0 or self.clip_ratio_high < 0:
            raise ValueError("clip ratios must be >= 0")
        if dual_clip is not None and dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 (or null to turn it off), got {dual_clip}")
        self.dual_clip = None if dual_clip is None else float(dual_clip)

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        log_probs = outputs.log_probs
        old_log_probs = batch.get(K.OLD_LOG_PROBS).to(log_probs.dtype)
        advantages = _token_advantages(batch.get(K.ADVANTAGES), log_probs)

        log_ratio = (log_probs - old_log_probs).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
        ratio = torch.exp(log_ratio)
        unclipped = -advantages * ratio
        clipped = -advantages * ratio.clamp(1.0 - self.clip_ratio_low, 1.0 + self.clip_ratio_high)
        loss = torch.maximum(unclipped, clipped)
        clip_active = clipped > unclipped
        dual_active = torch.zeros_like(clip_active)
        if self.dual_clip is not None:
            bound = -advantages * self.dual_clip
            negative = advantages < 0
            dual_active = negative & (loss > bound)
            loss = torch.where(negative, torch.minimum(loss, bound), loss)

        with torch.no_grad():
            metrics = {
                "clip_fraction": float(token_mean(clip_active.to(log_probs.dtype), batch)),
                "dual_clip_fraction": float(token_mean(dual_active.to(log_probs.dtype), batch)),
                "approx_kl": float(token_mean(-log_ratio, batch)),
                "ratio_mean": float(token_mean(ratio, batch)),
            }
        return LossOutput(token_mean(loss, batch), metrics)


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token estimate of ``KL(π_θ || π_ref)`` from the sampled tokens' log-probs
    (verl's ``kl_penalty``; Schulman's k1/k2/k3 estimators).

    - ``k1`` / ``kl``: ``log π_θ - log π_ref``
    - ``k2`` / ``mse``: ``½ (log π_θ - log π_ref)²``
    - ``k3`` / ``low_var_kl``: ``exp(δ) - δ - 1`` with ``δ = log π_ref - log π_θ``
      (unbiased, non-negative, low variance)
    - ``abs``: ``|log π_θ - log π_ref|``
    """
    diff = log_probs - ref_log_probs
    if kind in ("k1", "kl"):
        return diff
    if kind in ("k2", "mse"):
        return 0.5 * diff.square()
    if kind in ("k3", "low_var_kl"):
        delta = (-diff).clamp(-_LOG_RATIO_LIMIT, _LOG_RATIO_LIMIT)
        return torch.exp(delta) - delta - 1.0
    if kind == "abs":
        return diff.abs()
    raise ValueError(f"unknown KL kind {kind!r}; use low_var_kl (k3), k1 (kl), mse (k2) or abs")


class LowVarKLLoss(LossTerm):
    """KL penalty to the frozen reference policy, as a loss (verl's ``use_kl_loss``).

    Loss = token mean of :func:`kl_penalty` ``(log π_θ, log π_ref, kind)``; the default
    ``low_var_kl`` (k3) estimator ``exp(δ) - δ - 1``, ``δ = log π_ref - log π_θ``, is
    clamped to ``[-clamp, clamp]`` as in verl (``clamp=None`` turns that off; the other
    kinds are never clamped). Metric ``kl``: the token-mean estimate.
    """

    requires: ClassVar[frozenset[str]] = frozenset({K.REF_LOG_PROBS})

    def __init__(self, kind: str = "low_var_kl", clamp: float | None = 10.0) -> None:
        kl_penalty(torch.zeros(1), torch.zeros(1), kind)  # rejects an unknown kind now
        self.kind = kind
        self.clamp = None if clamp is None else float(clamp)

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        log_probs = outputs.log_probs
        ref_log_probs = batch.get(K.REF_LOG_PROBS).to(log_probs.dtype)
        kl = kl_penalty(log_probs, ref_log_probs, self.kind)
        if self.clamp is not None and self.kind in ("k3", "low_var_kl"):
            kl = kl.clamp(-self.clamp, self.clamp)
        loss = token_mean(kl, batch)
        return LossOutput(loss, {"kl": float(loss.detach())})


class EntropyLoss(LossTerm):
    """Token-mean entropy of the policy over the response tokens.

    The trainer *minimises* ``coef · loss``, so an entropy **bonus** takes a negative
    coefficient: ``coef: -0.001`` adds ``0.001 · H`` to the objective being maximised
    (verl's ``entropy_coeff: 0.001``). Metric ``entropy``.
    """

    needs_entropy: ClassVar[bool] = True

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        if outputs.entropy is None:
            raise ValueError("EntropyLoss needs outputs.entropy (the trainer computes it)")
        loss = token_mean(outputs.entropy, batch)
        return LossOutput(loss, {"entropy": float(loss.detach())})
