"""Loss terms and advantage estimators: the pieces an algorithm is assembled from.

An algorithm config lists loss terms with coefficients::

    algo:
      advantage: {name: grpo}
      loss_terms:
        - {name: ppo_clip, coef: 1.0, params: {clip_ratio: 0.2, dual_clip: 3.0}}
        - {name: entropy, coef: -0.001}
        - {name: sdar, coef: 0.01, params: {beta: 5.0}}

and the trainer minimises ``sum(coef_i * term_i(batch, log_probs))``. A term reads the
batch keys it needs (documented in :mod:`skillzero.contracts.trajectory`) and declares them
in :attr:`LossTerm.requires`, so the trainer computes only what some term asks for
(the frozen reference model is built only when a term requires ``ref_log_probs``).

Aggregation: terms reduce per-token values with :func:`token_mean`. The trainer splits a
mini-batch into micro-batches (and ranks) and puts ``token_weight`` in each micro-batch,
so the partial token means of the micro-batches *sum* to the exact token mean of the
whole mini-batch, whatever the micro-batch size or the number of ranks. Metrics a term
returns are aggregated the same way (summed over micro-batches and ranks), so compute
them with :func:`token_mean` too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch
    from tensordict import TensorDict


def token_mean(values: torch.Tensor, batch: TensorDict) -> torch.Tensor:
    """Token-mean of per-token ``values`` (B, R) over the response tokens.

    Inside the trainer this is this micro-batch's share of the mini-batch token mean
    (``sum(values * token_weight)``); on a batch without ``token_weight`` (a unit test, a
    one-off call) it is the plain masked mean over ``response_mask``.
    """
    weight = batch.get("token_weight", None)
    if weight is None:
        mask = batch.get("response_mask").to(values.dtype)
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * weight.to(values.dtype)).sum()


@dataclass
class PolicyOutputs:
    """What the trainer computes with the current weights for a mini-batch.

    ``log_probs`` (B, R) are the new log-probs of the response tokens (with grad);
    ``entropy`` (B, R) is present when a term requires it.
    """

    log_probs: torch.Tensor
    entropy: torch.Tensor | None = None


@dataclass
class LossOutput:
    """A term's scalar loss (before its coefficient) and named metrics (floats)."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class LossTerm(ABC):
    """One additive piece of the training objective."""

    #: batch keys this term reads besides the rollout layout (e.g. ``ref_log_probs``)
    requires: ClassVar[frozenset[str]] = frozenset()
    #: whether the trainer must compute token entropies for this term
    needs_entropy: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput: ...


class AdvantageEstimator(ABC):
    """Computes ``advantages`` for a whole collected batch (before mini-batching)."""

    #: batch keys this estimator reads besides the rollout layout
    requires: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def __call__(self, batch: TensorDict) -> torch.Tensor:
        """Return advantages of shape (B,) (one per step sample) or (B, R).

        Rows with ``group_id == -1`` are padding (see
        :func:`skillzero.contracts.trajectory.pad_to_multiple`); give them 0.
        """

    def metrics(self) -> dict[str, float]:
        """Metrics of the last call (e.g. the share of singleton step groups)."""
        return {}


class NegativeLogLikelihood(LossTerm):
    """Supervised fine-tuning: the token-mean negative log-likelihood of the response
    tokens, ``-mean_t log pi(y_t | x, y_<t)``. ``skillzero sft`` uses it alone; with a
    small coefficient next to an RL objective it is an SFT auxiliary loss."""

    def __call__(self, batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
        loss = -token_mean(outputs.log_probs, batch)
        return LossOutput(loss, {"token_log_prob": float(-loss.detach())})


@dataclass
class WeightedTerm:
    """A loss term with its coefficient and the name it is logged under."""

    name: str
    coef: float
    term: LossTerm


def combine(terms: Sequence[WeightedTerm], batch: TensorDict, outputs: PolicyOutputs) -> LossOutput:
    """Sum ``coef * term`` over the terms; metrics are prefixed with each term's name."""
    total = None
    metrics: dict[str, float] = {}
    for weighted in terms:
        out = weighted.term(batch, outputs)
        contribution = weighted.coef * out.loss
        total = contribution if total is None else total + contribution
        metrics[f"loss/{weighted.name}"] = float(out.loss.detach())
        for key, value in out.metrics.items():
            metrics[f"{weighted.name}/{key}"] = value
    if total is None:
        raise ValueError("an algorithm needs at least one loss term")
    metrics["loss/total"] = float(total.detach())
    return LossOutput(total, metrics)
