"""The RLSD baseline's token-level advantage (``rlsd_utils.compute_rlsd_token_advantage``).

RL sets the direction of the update, the teacher–student gap its per-token size::

    A     = GRPO advantage of the step sample                       (B,)
    Δ_t   = log π_T(y_t | s_t⁺) − log π_old(y_t | s_t)               (B, R)
    w_t   = clip(exp(sign(A)·Δ_t), 1 − clip, 1 + clip)
    Â_t   = A · ((1 − λ) + λ·w_t)

so a token the teacher prefers gets a larger share of a positive advantage and a
smaller share of a negative one. λ decays linearly with the training step ``s``
(1-based), exactly as the released ``_get_rlsd_lambda``::

    λ(s) = λ_start + (λ_end − λ_start) · min(s / decay_steps, 1)

(step 1 already uses ``λ_start·(1 − 1/decay_steps)``; λ reaches ``λ_end`` at step
``decay_steps`` and stays there, after which RLSD is plain GRPO).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from tensordict import TensorDict

from skillzero.contracts.losses import AdvantageEstimator
from skillzero.contracts.trajectory import K, masked_mean


def rlsd_lambda(step: int, lambda_start: float, lambda_end: float, decay_steps: int) -> float:
    """λ at the 1-based training ``step`` (linear decay, then constant)."""
    if decay_steps <= 0:
        return float(lambda_end)
    progress = min(max(step, 0) / decay_steps, 1.0)
    return float(lambda_start + (lambda_end - lambda_start) * progress)


class RLSDAdvantage(AdvantageEstimator):
    """RLSD: GRPO advantages reweighted per token by the clipped teacher ratio.

    ``grpo_params`` go to :class:`skillzero.plugins.grpo.advantages.GRPOAdvantage`
    (``norm_by_std``, ``mean_std_over``, ``epsilon``). Returns (B, R), zero on masked
    tokens and on padding rows (``group_id == -1``).
    """

    requires: ClassVar[frozenset[str]] = frozenset({K.TEACHER_LOG_PROBS, K.OLD_LOG_PROBS})

    def __init__(
        self,
        lambda_start: float = 0.5,
        lambda_end: float = 0.0,
        decay_steps: int = 100,
        clip: float = 0.2,
        **grpo_params: Any,
    ) -> None:
        from skillzero.plugins.grpo.advantages import GRPOAdvantage

        if not 0.0 <= clip < 1.0:
            raise ValueError(f"clip must be in [0, 1), got {clip}")
        self.lambda_start = float(lambda_start)
        self.lambda_end = float(lambda_end)
        self.decay_steps = int(decay_steps)
        self.clip = float(clip)
        self.grpo = GRPOAdvantage(**grpo_params)
        self._metrics: dict[str, float] = {}

    def lam(self, step: int) -> float:
        """λ at the 1-based training ``step``."""
        return rlsd_lambda(step, self.lambda_start, self.lambda_end, self.decay_steps)

    def __call__(self, batch: TensorDict) -> torch.Tensor:
        if K.TRAINING_STEP not in batch:
            raise KeyError(f"RLSD needs the batch key {K.TRAINING_STEP!r} for its λ schedule")
        step = int(batch[K.TRAINING_STEP][0])
        lam = self.lam(step)
        mask = batch[K.RESPONSE_MASK]
        seq_adv = self.grpo(batch)
        if seq_adv.dim() != 1:
            raise ValueError(
                f"RLSD expects a (B,) GRPO advantage, got shape {tuple(seq_adv.shape)}"
            )
        seq_adv = seq_adv.float()
        teacher = batch[K.TEACHER_LOG_PROBS].float()
        old = batch[K.OLD_LOG_PROBS].float()
        gap = torch.where(mask, teacher - old, torch.zeros_like(teacher))
        weight = torch.exp(torch.sign(seq_adv).unsqueeze(-1) * gap)
        weight = weight.clamp(1.0 - self.clip, 1.0 + self.clip)
        token_adv = seq_adv.unsqueeze(-1) * ((1.0 - lam) + lam * weight)
        real = mask & (batch[K.GROUP_ID] != -1).unsqueeze(-1)
        token_adv = torch.where(real, token_adv, torch.zeros_like(token_adv))
        self._metrics = {
            **self.grpo.metrics(),
            "lambda": lam,
            "teacher_gap_mean": float(masked_mean(gap, real)),
            "token_weight_mean": float(masked_mean(weight, real)),
        }
        return token_adv

    def metrics(self) -> dict[str, float]:
        return dict(self._metrics)
