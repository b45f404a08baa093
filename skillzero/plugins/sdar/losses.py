"""Self-distillation loss terms: SDAR's gated term and the Skill-SD baseline.

Both read ``teacher_log_probs`` (B, R): the log-probs of the student's own sampled
response tokens under the same policy when its prompt also holds privileged skills
(added to the batch by the ``sdar_teacher`` callback, at the rollout weights θ_old).

Notation, per response token ``y_t``::

    log π_θ(y_t | s_t)     outputs.log_probs      (student, current weights, with grad)
    log π_T(y_t | s_t⁺)    teacher_log_probs      (teacher, θ_old, constant)
    log π_old(y_t | s_t)   old_log_probs          (student, θ_old, constant)
"""

from __future__ import annotations

from typing import ClassVar

import torch
from tensordict import TensorDict

from skillzero.contracts.losses import LossOutput, LossTerm, PolicyOutputs, token_mean
from skillzero.contracts.trajectory import K

GATES: tuple[str, ...] = ("sigmoid",)


def sdar_gate(gap: torch.Tensor, beta: float) -> torch.Tensor:
    """SDAR's gate ``g = σ(β·Δ)`` of a (detached) teacher–student gap ``Δ``.

    β = 0 gives the constant 0.5 (the GRPO+OPSD baseline); with β = 5 a gap of
    -0.5 / 0 / +0.5 gives 0.076 / 0.5 / 0.924.
    """
    return torch.sigmoid(beta * gap)


def _masked(values: torch.Tensor, batch: TensorDict) -> torch.Tensor:
    # Teacher log-probs past a row's response may be anything the scorer left there
    # (0, -inf); zero them so that 0 * inf never turns a token mean into NaN.
    return torch.where(batch[K.RESPONSE_MASK], values, torch.zeros_like(values))


class SDARLoss(LossTerm):
    """SDAR's gated self-distillation term (``sdar_utils.compute_sdar_loss``)::

        Δ_t = sg[log π_T(y_t|s_t⁺)] − sg[log π_θ(y_t|s_t)]
        g_t = sg[σ(β·Δ_t)]
        L   = token-mean[ g_t · (log π_T(y_t|s_t⁺) − log π_θ(y_t|s_t)) ]

    Only the student log-prob carries gradient, so ``∇L = −token-mean[g_t ∇log π_θ]``:
    a gated push *up* of the student's own sampled tokens (strong where the teacher
    likes the token more than the student does, weak where it likes it less), never a
    push down. With ``beta=0`` every token gets g = 0.5: uniform self-imitation.

    Metrics (token means): ``gate_mean``, ``gate_active_ratio`` (share of tokens with
    g > 0.5) and ``teacher_gap_mean`` (mean Δ).
    """

    requires: ClassVar[frozenset[str]] = frozenset({K.TEACHER_LOG_PROBS})

    def __init__(self, beta: float = 5.0, gate: str = "sigmoid") -> None:
        if gate not in GATES:
            raise ValueError(
                f"unknown SDAR gate {gate!r}; available: {', '.join(GATES)} (the released "
                "code has only the sigmoid gap gate)"
            )
        self.beta = float(beta)
        self.gate = gate

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        log_probs = outputs.log_probs
        teacher = _masked(batch[K.TEACHER_LOG_PROBS].to(log_probs.dtype), batch).detach()
        student = _masked(log_probs, batch)
        gap = teacher - student.detach()
        gate = sdar_gate(gap, self.beta).detach()
        loss = token_mean(gate * (teacher - student), batch)
        with torch.no_grad():
            metrics = {
                "gate_mean": float(token_mean(gate, batch)),
                "gate_active_ratio": float(token_mean((gate > 0.5).to(gate.dtype), batch)),
                "teacher_gap_mean": float(token_mean(gap, batch)),
            }
        return LossOutput(loss, metrics)


class SkillSDLoss(LossTerm):
    """The Skill-SD baseline's importance-weighted reverse-KL term
    (``skillsd_utils.compute_sdl_loss``)::

        ℓ_t  = log π_θ(y_t|s_t) − log π_T(y_t|s_t⁺)
        k3_t = exp(−ℓ_t) − 1 + ℓ_t                         (−ℓ clamped at ``k3_clamp``)
        ρ_t  = exp(clamp(log π_θ(y_t|s_t) − log π_old(y_t|s_t), max=ratio_clamp))
        L    = token-mean[ ρ_t · k3_t ]

    As in the released code, ρ is **not** detached: the gradient flows through both
    factors and, where neither clamp is active, simplifies to
    ``∇(ρ·k3) = ρ·(k3 + 1 − e^{−ℓ})·∇log π_θ = ρ·ℓ·∇log π_θ``. Unlike SDAR, descent
    therefore pushes a token *down* where the student is above the teacher (ℓ > 0) and
    up where it is below. L and its gradient are 0 where student and teacher agree.

    Metrics: ``k3_mean`` and ``ratio_mean`` (token means).
    """

    requires: ClassVar[frozenset[str]] = frozenset({K.TEACHER_LOG_PROBS, K.OLD_LOG_PROBS})

    def __init__(self, ratio_clamp: float = 10.0, k3_clamp: float = 20.0) -> None:
        self.ratio_clamp = float(ratio_clamp)
        self.k3_clamp = float(k3_clamp)

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        log_probs = outputs.log_probs
        teacher = _masked(batch[K.TEACHER_LOG_PROBS].to(log_probs.dtype), batch).detach()
        old = _masked(batch[K.OLD_LOG_PROBS].to(log_probs.dtype), batch).detach()
        student = _masked(log_probs, batch)
        ell = student - teacher
        k3 = torch.exp((-ell).clamp(max=self.k3_clamp)) - 1.0 + ell
        ratio = torch.exp((student - old).clamp(max=self.ratio_clamp))
        loss = token_mean(ratio * k3, batch)
        with torch.no_grad():
            metrics = {
                "k3_mean": float(token_mean(k3, batch)),
                "ratio_mean": float(token_mean(ratio, batch)),
            }
        return LossOutput(loss, metrics)
