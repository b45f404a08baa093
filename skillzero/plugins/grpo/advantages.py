"""Advantage estimators of the GRPO family: GRPO and GiGPO.

A batch holds one sample per env per turn (see :mod:`skillzero.contracts.trajectory`). Sample
``i`` is step ``t_i`` of trajectory ``τ_i``, which belongs to group ``g_i`` (the envs that
played the same task). Its *score* is the episode's return minus the step's
invalid-action penalty, as in verl-agent (the penalty is subtracted from the
episode-level score of each step sample and from its step reward)::

    s_i = R(τ_i) - p_i

**GRPO** normalises scores within each group::

    A_i = (s_i - mean_g) / (std_g + ε)        (norm_by_std)
    A_i =  s_i - mean_g                        (otherwise)

**GiGPO** (Feng et al. 2025, arXiv 2505.10978, eq. 3-8) adds a step-level term computed in
anchor-state groups, the samples of a group whose current observation is the same
(at any time step)::

    A_i = A^E_i + ω · A^S_i
    A^E_i = (s_i - mean_g) / F_norm                          (episode level, eq. 3)
    R_t   = Σ_{k ≥ t} γ^{k-t} (r_k - p_k)                    (step return, eq. 5)
    A^S_i = (R_{t_i} - mean_{G^S(i)} R) / F_norm             (step level, eq. 7)

with ``F_norm`` the group's standard deviation (+ ε) in mode ``mean_std_norm`` and 1 in
mode ``mean_norm``. Standard deviations are unbiased (``torch.std``), as in verl.

Padding rows (``group_id == -1``, see :func:`skillzero.contracts.trajectory.pad_to_multiple`)
take part in no statistic and get advantage 0.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import TYPE_CHECKING

import torch

from skillzero.contracts.losses import AdvantageEstimator
from skillzero.contracts.trajectory import K

if TYPE_CHECKING:
    from tensordict import TensorDict

__all__ = [
    "GRPOAdvantage",
    "GiGPOAdvantage",
    "discounted_returns",
    "group_mean_std",
]

_STAT_DTYPE = torch.float64  # statistics in double: equal scores give exactly std 0


def group_mean_std(
    values: torch.Tensor, index: torch.Tensor, num_groups: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-group mean, unbiased standard deviation and size of ``values``.

    ``index`` (same length as ``values``) holds group numbers in ``[0, num_groups)``. The
    standard deviation of a group of one is 0 here; callers apply their own singleton
    convention.
    """
    values = values.to(_STAT_DTYPE)
    count = torch.bincount(index, minlength=num_groups)
    total = torch.zeros(num_groups, dtype=_STAT_DTYPE, device=values.device)
    mean = total.index_add(0, index, values) / count.clamp(min=1)
    squares = total.index_add(0, index, (values - mean[index]) ** 2)
    std = (squares / (count - 1).clamp(min=1)).sqrt()
    return mean, std, count


def _penalty(batch: TensorDict) -> torch.Tensor:
    """The invalid-action penalty of each step; 0 when the trainer did not add it."""
    penalty = batch.get(K.PENALTY, None)
    if penalty is None:
        return torch.zeros(batch.shape[0], dtype=torch.float32, device=batch.device)
    return penalty.to(torch.float32)


def _step_positions(traj: torch.Tensor, step: torch.Tensor, num_traj: int) -> torch.Tensor:
    """Rank of each sample within its trajectory, ordered by ``step`` (0 for the first)."""
    order = torch.argsort(step, stable=True)
    order = order[torch.argsort(traj[order], stable=True)]
    sorted_traj, sorted_step = traj[order], step[order]
    repeated = (sorted_traj[1:] == sorted_traj[:-1]) & (sorted_step[1:] == sorted_step[:-1])
    if bool(repeated.any()):
        raise ValueError("a trajectory has two samples with the same step")
    count = torch.bincount(traj, minlength=num_traj)
    start = count.cumsum(0) - count
    positions = torch.empty_like(traj)
    positions[order] = torch.arange(len(traj), device=traj.device) - start[sorted_traj]
    return positions


def discounted_returns(
    rewards: torch.Tensor, traj_id: torch.Tensor, step: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Discounted return to go of every sample: ``R_t = Σ_{k ≥ t} γ^{k-t} r_k``.

    Samples of a trajectory (same ``traj_id``) are ordered by ``step``; they need not be
    contiguous or sorted in the batch. The backward recursion ``R_t = r_t + γ R_{t+1}``
    runs over time, vectorised over trajectories.
    """
    if len(rewards) == 0:
        return rewards.to(torch.float32)
    _, traj = torch.unique(traj_id, return_inverse=True)
    num_traj = int(traj.max()) + 1
    positions = _step_positions(traj, step, num_traj)
    length = int(positions.max()) + 1
    table = torch.zeros(num_traj, length, dtype=_STAT_DTYPE, device=rewards.device)
    table[traj, positions] = rewards.to(_STAT_DTYPE)
    returns = torch.zeros_like(table)
    running = torch.zeros(num_traj, dtype=_STAT_DTYPE, device=rewards.device)
    # Cells after a trajectory's last step are 0, so the recursion starts at 0 there.
    for t in range(length - 1, -1, -1):
        running = table[:, t] + gamma * running
        returns[:, t] = running
    return returns[traj, positions].to(torch.float32)


class GRPOAdvantage(AdvantageEstimator):
    """Group-relative outcome advantage (verl's ``compute_grpo_outcome_advantage``).

    ``A_i = (s_i - mean_g) / (std_g + ε)`` with ``s_i = episode_return_i - penalty_i``
    (``A_i = s_i - mean_g`` without ``norm_by_std``).

    ``mean_std_over`` chooses the samples the group statistics are taken over:

    - ``"steps"`` (verl-agent's default, ``compute_mean_std_cross_steps=True``): every
      step sample's score ``s_i``, so a trajectory weighs as much as it has steps.
    - ``"trajectories"``: one value per trajectory, its (penalty-free) episode return,
      which is the textbook GRPO baseline. Each step is still normalised with its own
      score ``s_i``, so an invalid step's advantage stays ``p_i / (std_g + ε)`` below
      the valid steps of its trajectory. (verl's ``compute_mean_std_cross_steps=False``
      takes the score of whichever step of a trajectory comes first in the batch, which
      makes the statistic depend on that step's penalty; we use the return instead.)

    A group with a single element (one step sample, or one trajectory) gets mean 0 and
    std 1, as in verl, so its advantage is its score.
    """

    def __init__(
        self, norm_by_std: bool = True, mean_std_over: str = "steps", epsilon: float = 1e-6
    ) -> None:
        if mean_std_over not in ("steps", "trajectories"):
            raise ValueError(
                f"mean_std_over must be 'steps' or 'trajectories', got {mean_std_over!r}"
            )
        self.norm_by_std = bool(norm_by_std)
        self.mean_std_over = mean_std_over
        self.epsilon = float(epsilon)
        self._metrics: dict[str, float] = {}

    def __call__(self, batch: TensorDict) -> torch.Tensor:
        episode_return = batch.get(K.EPISODE_RETURN).to(torch.float32)
        advantages = torch.zeros_like(episode_return)
        real = batch.get(K.GROUP_ID) >= 0
        if not bool(real.any()):
            self._metrics = {"num_groups": 0.0, "uniform_return_group_share": 0.0}
            return advantages
        _, group = torch.unique(batch.get(K.GROUP_ID)[real], return_inverse=True)
        num_groups = int(group.max()) + 1
        returns = episode_return[real]
        score = returns - _penalty(batch)[real]
        advantages[real] = self.normalise(score, returns, group, batch.get(K.TRAJ_ID)[real])
        self._metrics = {
            "num_groups": float(num_groups),
            "uniform_return_group_share": _uniform_share(returns, group, num_groups),
        }
        return advantages

    def normalise(
        self,
        score: torch.Tensor,
        episode_return: torch.Tensor,
        group: torch.Tensor,
        traj_id: torch.Tensor,
    ) -> torch.Tensor:
        """Group-normalised scores of real (non-padding) samples.

        ``group`` holds group numbers ``0..G-1``; ``episode_return`` and ``traj_id`` are
        only read for ``mean_std_over="trajectories"``.
        """
        num_groups = int(group.max()) + 1
        if self.mean_std_over == "steps":
            mean, std, count = group_mean_std(score, group, num_groups)
        else:
            _, traj = torch.unique(traj_id, return_inverse=True)
            num_traj = int(traj.max()) + 1
            traj_return = torch.zeros(num_traj, dtype=torch.float32, device=score.device)
            traj_return = traj_return.scatter(0, traj, episode_return)
            traj_group = torch.zeros(num_traj, dtype=torch.long, device=score.device)
            traj_group = traj_group.scatter(0, traj, group)
            if not bool((traj_group[traj] == group).all()):
                raise ValueError("a trajectory has samples in two groups")
            if not bool((traj_return[traj] == episode_return).all()):
                raise ValueError("a trajectory has samples with different episode returns")
            mean, std, count = group_mean_std(traj_return, traj_group, num_groups)
        singleton = count == 1
        mean = torch.where(singleton, torch.zeros_like(mean), mean)
        std = torch.where(singleton, torch.ones_like(std), std)
        centred = score.to(_STAT_DTYPE) - mean[group]
        if self.norm_by_std:
            centred = centred / (std[group] + self.epsilon)
        return centred.to(torch.float32)

    def metrics(self) -> dict[str, float]:
        """``num_groups``; ``uniform_return_group_share``: share of groups whose episodes
        all have the same return (they carry no outcome signal, only penalties)."""
        return dict(self._metrics)


def _uniform_share(values: torch.Tensor, group: torch.Tensor, num_groups: int) -> float:
    """Share of groups whose ``values`` are all equal."""
    low = torch.full((num_groups,), float("inf"), device=values.device)
    high = torch.full((num_groups,), float("-inf"), device=values.device)
    low = low.scatter_reduce(0, group, values, reduce="amin")
    high = high.scatter_reduce(0, group, values, reduce="amax")
    return float((low == high).float().mean())


class GiGPOAdvantage(AdvantageEstimator):
    """Group-in-Group Policy Optimization advantage (verl-agent's
    ``compute_gigpo_outcome_advantage``).

    ``A = A^E + ω · A^S`` (``ω = step_weight``):

    - ``A^E``: GRPO on ``s_i = episode_return_i - penalty_i`` with statistics over the
      group's step samples, divided by ``std_g + ε`` iff ``mode == "mean_std_norm"``.
    - ``A^S = (R_t - mean_{G^S} R) / F_norm`` where ``R_t = Σ_{k≥t} γ^{k-t}(r_k - p_k)`` is
      the discounted return of the step (``γ = gamma``; ``r`` the env reward of each
      step, ``p`` its penalty) and ``G^S`` the anchor-state group of the sample: the
      samples of the same group with the same ``anchor_key`` (hash of the raw
      observation), at whatever time step. ``F_norm = std_{G^S} + ε`` in
      ``mean_std_norm`` mode and 1 in ``mean_norm`` mode. A sample alone in its anchor
      group gets ``A^S = 0``.

    With ``similarity_threshold`` set, anchor groups are built instead by greedy
    clustering of the raw observation text (``prompt_context.observation``) within each
    group: a sample joins the first cluster, in batch order, whose first member's text
    has ``difflib.SequenceMatcher.ratio() >= similarity_threshold`` (verl-agent's
    ``enable_similarity``, used for search with 0.9).
    """

    def __init__(
        self,
        gamma: float = 0.95,
        step_weight: float = 1.0,
        mode: str = "mean_std_norm",
        epsilon: float = 1e-6,
        similarity_threshold: float | None = None,
    ) -> None:
        if mode not in ("mean_std_norm", "mean_norm"):
            raise ValueError(f"mode must be 'mean_std_norm' or 'mean_norm', got {mode!r}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if similarity_threshold is not None and not 0.0 < similarity_threshold <= 1.0:
            raise ValueError(
                f"similarity_threshold must be in (0, 1] or null, got {similarity_threshold}"
            )
        self.gamma = float(gamma)
        self.step_weight = float(step_weight)
        self.mode = mode
        self.epsilon = float(epsilon)
        self.similarity_threshold = similarity_threshold
        self._episode = GRPOAdvantage(
            norm_by_std=mode == "mean_std_norm", mean_std_over="steps", epsilon=epsilon
        )
        self._metrics: dict[str, float] = {}

    def __call__(self, batch: TensorDict) -> torch.Tensor:
        episode_advantage = self._episode(batch)
        advantages = torch.zeros_like(episode_advantage)
        real = batch.get(K.GROUP_ID) >= 0
        if not bool(real.any()):
            self._metrics = {
                **self._episode.metrics(),
                "num_step_groups": 0.0,
                "step_group_size_mean": 0.0,
                "step_group_singleton_share": 0.0,
            }
            return advantages
        _, group = torch.unique(batch.get(K.GROUP_ID)[real], return_inverse=True)
        step_reward = batch.get(K.REWARD)[real].to(torch.float32) - _penalty(batch)[real]
        step_return = discounted_returns(
            step_reward, batch.get(K.TRAJ_ID)[real], batch.get(K.STEP)[real], self.gamma
        )
        anchor = self._anchor_groups(batch, real, group)
        num_anchor = int(anchor.max()) + 1
        step_advantage = self._step_advantage(step_return, anchor, num_anchor)
        advantages[real] = episode_advantage[real] + self.step_weight * step_advantage
        sizes = torch.bincount(anchor, minlength=num_anchor)
        self._metrics = {
            **self._episode.metrics(),
            "num_step_groups": float(num_anchor),
            "step_group_size_mean": float(sizes.float().mean()),
            "step_group_singleton_share": float((sizes == 1).float().mean()),
        }
        return advantages

    def _step_advantage(
        self, step_return: torch.Tensor, anchor: torch.Tensor, num_anchor: int
    ) -> torch.Tensor:
        mean, std, count = group_mean_std(step_return, anchor, num_anchor)
        centred = step_return.to(_STAT_DTYPE) - mean[anchor]
        if self.mode == "mean_std_norm":
            centred = centred / (std[anchor] + self.epsilon)
        # A sample alone in its anchor group is compared with nothing.
        centred = torch.where(count[anchor] > 1, centred, torch.zeros_like(centred))
        return centred.to(torch.float32)

    def _anchor_groups(
        self, batch: TensorDict, real: torch.Tensor, group: torch.Tensor
    ) -> torch.Tensor:
        """Anchor-group number (``0..S-1``) of each real sample."""
        if self.similarity_threshold is None:
            pairs = torch.stack([group, batch.get(K.ANCHOR_KEY)[real]], dim=1)
            _, anchor = torch.unique(pairs, dim=0, return_inverse=True)
            return anchor
        contexts = batch.get(K.PROMPT_CONTEXT).tolist()
        rows = real.nonzero().flatten().tolist()
        observations = []
        for row in rows:
            observation = getattr(contexts[row], "observation", None)
            if not isinstance(observation, str):
                raise ValueError(
                    "similarity_threshold needs the raw observation text in "
                    f"prompt_context.observation; row {row} has {contexts[row]!r}"
                )
            observations.append(observation)
        clusters = similarity_clusters(observations, group.tolist(), self.similarity_threshold)
        return torch.as_tensor(clusters, dtype=torch.long, device=group.device)

    def metrics(self) -> dict[str, float]:
        """The episode-level GRPO metrics plus ``num_step_groups``,
        ``step_group_size_mean`` and ``step_group_singleton_share`` (share of anchor
        groups with one sample: those steps get no step-level signal)."""
        return dict(self._metrics)


def similarity_clusters(observations: list[str], groups: list[int], threshold: float) -> list[int]:
    """Greedy text clustering within each group (verl-agent's ``build_step_group`` with
    ``enable_similarity``): in order, each observation joins the first cluster of its
    group whose representative (first member) has
    ``SequenceMatcher(None, observation, representative).ratio() >= threshold``, or
    starts a new cluster. Returns a cluster number per observation.
    """
    representatives: dict[int, list[tuple[SequenceMatcher, int]]] = {}
    seen: dict[tuple[int, str], int] = {}  # identical text always lands in the same cluster
    out: list[int] = []
    next_id = 0
    for observation, group in zip(observations, groups, strict=True):
        cluster = seen.get((group, observation))
        if cluster is None:
            for matcher, candidate in representatives.setdefault(group, []):
                matcher.set_seq1(observation)
                # quick ratios are upper bounds of ratio(): cheap rejections
                if (
                    matcher.real_quick_ratio() >= threshold
                    and matcher.quick_ratio() >= threshold
                    and matcher.ratio() >= threshold
                ):
                    cluster = candidate
                    break
            if cluster is None:
                cluster, next_id = next_id, next_id + 1
                # seq2 is the representative: SequenceMatcher caches its analysis of b
                representatives[group].append((SequenceMatcher(None, "", observation), cluster))
            seen[(group, observation)] = cluster
        out.append(cluster)
    return out
