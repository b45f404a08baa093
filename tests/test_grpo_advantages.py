"""GRPO and GiGPO advantages on hand-computed batches (plugin ``skillzero.plugins.grpo``)."""

from __future__ import annotations

import difflib
import math
import statistics
import time
from types import SimpleNamespace

import pytest
import torch
from tensordict import NonTensorStack, TensorDict

from skillzero.contracts.trajectory import K, StepSample, collate_steps, pad_to_multiple
from skillzero.plugins.grpo.advantages import (
    GiGPOAdvantage,
    GRPOAdvantage,
    discounted_returns,
    similarity_clusters,
)

torch.set_num_threads(1)

EPS = 1e-6


def make_batch(
    group: list[int],
    traj: list[int],
    step: list[int],
    episode_return: list[float],
    *,
    reward: list[float] | None = None,
    penalty: list[float] | None = None,
    anchor: list[int] | None = None,
    observations: list[str] | None = None,
) -> TensorDict:
    """A batch with just the keys advantage estimators read."""
    n = len(group)
    data = {
        K.GROUP_ID: torch.tensor(group),
        K.TRAJ_ID: torch.tensor(traj),
        K.STEP: torch.tensor(step),
        K.EPISODE_RETURN: torch.tensor(episode_return, dtype=torch.float32),
        K.REWARD: torch.tensor(reward or [0.0] * n, dtype=torch.float32),
        K.ANCHOR_KEY: torch.tensor(anchor or list(range(n))),
        K.RESPONSE_MASK: torch.ones(n, 2, dtype=torch.bool),
    }
    if penalty is not None:
        data[K.PENALTY] = torch.tensor(penalty, dtype=torch.float32)
    td = TensorDict(data, batch_size=[n])
    if observations is not None:
        td[K.PROMPT_CONTEXT] = NonTensorStack(
            *[SimpleNamespace(observation=o) for o in observations]
        )
    return td


def close(actual: torch.Tensor, expected: list[float], tol: float = 1e-5) -> None:
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=torch.float32), atol=tol, rtol=tol
    )


# Group 0: trajectory 0 won (return 10) in 3 steps, trajectory 1 lost (return 0) in 1 step.
UNEQUAL = {
    "group": [0, 0, 0, 0],
    "traj": [0, 0, 0, 1],
    "step": [0, 1, 2, 0],
    "episode_return": [10.0, 10.0, 10.0, 0.0],
}


# ----------------------------------------------------------------------------------------
# GRPO
# ----------------------------------------------------------------------------------------


def test_grpo_statistics_over_steps_weigh_long_trajectories_more() -> None:
    # scores 10, 10, 10, 0: mean 7.5, unbiased std sqrt((3 * 2.5² + 7.5²) / 3) = 5
    adv = GRPOAdvantage(mean_std_over="steps")(make_batch(**UNEQUAL))
    close(adv, [0.5, 0.5, 0.5, -1.5])


def test_grpo_statistics_over_trajectories_take_one_return_per_episode() -> None:
    # returns 10, 0: mean 5, std sqrt(50)
    adv = GRPOAdvantage(mean_std_over="trajectories")(make_batch(**UNEQUAL))
    r = 5 / math.sqrt(50)
    close(adv, [r, r, r, -r])


def test_grpo_without_std_only_centres() -> None:
    adv = GRPOAdvantage(norm_by_std=False)(make_batch(**UNEQUAL))
    close(adv, [2.5, 2.5, 2.5, -7.5])


def test_grpo_singleton_group_gets_mean_0_std_1() -> None:
    batch = make_batch([0, 1], [0, 1], [0, 0], [10.0, 3.0], penalty=[0.0, 0.1])
    adv = GRPOAdvantage()(batch)
    assert adv[1] == pytest.approx(2.9 / (1 + EPS), abs=1e-6)
    # group 0 is a singleton too
    assert adv[0] == pytest.approx(10 / (1 + EPS), abs=1e-5)


def test_grpo_singleton_means_one_sample_or_one_trajectory() -> None:
    # One trajectory of two steps: over steps the scores are equal (advantage 0); over
    # trajectories the group has one element (mean 0, std 1: the advantage is the score).
    batch = make_batch([0, 0], [0, 0], [0, 1], [3.0, 3.0], penalty=[0.0, 0.1])
    steps = GRPOAdvantage(mean_std_over="steps")(batch)
    trajectories = GRPOAdvantage(mean_std_over="trajectories")(batch)
    # steps: scores 3, 2.9 -> mean 2.95, std sqrt(2 * 0.05²) = 0.0707
    sd = statistics.stdev([3.0, 2.9])
    close(steps, [0.05 / (sd + EPS), -0.05 / (sd + EPS)], tol=1e-3)
    close(trajectories, [3.0, 2.9], tol=1e-5)


def test_grpo_penalty_lowers_the_invalid_step() -> None:
    # trajectory 0 (return 10): its second step was invalid (penalty 0.1)
    batch = make_batch([0, 0, 0], [0, 0, 1], [0, 1, 0], [10.0, 10.0, 0.0], penalty=[0.0, 0.1, 0.0])
    scores = [10.0, 9.9, 0.0]
    mean, sd = statistics.mean(scores), statistics.stdev(scores)
    close(GRPOAdvantage()(batch), [(s - mean) / (sd + EPS) for s in scores])
    # over trajectories the statistics use the returns 10 and 0; each step keeps its penalty
    sd_traj = math.sqrt(50)
    close(
        GRPOAdvantage(mean_std_over="trajectories")(batch),
        [5 / sd_traj, 4.9 / sd_traj, -5 / sd_traj],
    )


def test_grpo_absent_penalty_is_zero() -> None:
    with_zero = make_batch(**UNEQUAL, penalty=[0.0] * 4)
    torch.testing.assert_close(GRPOAdvantage()(make_batch(**UNEQUAL)), GRPOAdvantage()(with_zero))


def test_grpo_all_equal_scores_give_zero() -> None:
    batch = make_batch([0, 0, 0], [0, 1, 2], [0, 0, 0], [10.0, 10.0, 10.0])
    grpo = GRPOAdvantage()
    close(grpo(batch), [0.0, 0.0, 0.0])
    assert grpo.metrics() == {"num_groups": 1.0, "uniform_return_group_share": 1.0}


def test_grpo_padding_rows_get_zero_and_change_nothing() -> None:
    samples = [
        StepSample([1, 2], [3, 4], [-0.1, -0.2], episode_return=r, group_id=g, traj_id=t, step=s)
        for g, t, s, r in [(0, 0, 0, 10.0), (0, 0, 1, 10.0), (0, 1, 0, 0.0), (1, 2, 0, 10.0)]
    ] + [StepSample([1], [2], [-0.1], episode_return=0.0, group_id=1, traj_id=3, step=0)]
    batch = collate_steps(samples)
    padded = pad_to_multiple(batch, 4)
    assert padded.shape[0] == 8
    grpo = GRPOAdvantage()
    plain, with_padding = grpo(batch), grpo(padded)
    torch.testing.assert_close(with_padding[:5], plain)
    assert with_padding[5:].tolist() == [0.0, 0.0, 0.0]
    # group 1 has returns 10, 0 (diverse), group 0 has 10, 10, 0: none is uniform
    assert grpo.metrics() == {"num_groups": 2.0, "uniform_return_group_share": 0.0}


def test_grpo_group_ids_need_not_be_contiguous() -> None:
    batch = make_batch([7, 7, 42], [5, 9, 3], [0, 0, 0], [1.0, 0.0, 4.0])
    r = 0.5 / statistics.stdev([1.0, 0.0])
    close(GRPOAdvantage()(batch), [r, -r, 4.0], tol=1e-5)


def test_grpo_rejects_unknown_convention() -> None:
    with pytest.raises(ValueError, match="mean_std_over"):
        GRPOAdvantage(mean_std_over="episodes")


def test_grpo_trajectories_mode_checks_consistency() -> None:
    batch = make_batch([0, 0], [0, 0], [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="different episode returns"):
        GRPOAdvantage(mean_std_over="trajectories")(batch)


# ----------------------------------------------------------------------------------------
# Discounted step returns
# ----------------------------------------------------------------------------------------


def test_discounted_returns_of_a_three_step_trajectory() -> None:
    # rewards 1, 0, 10 with γ = 0.5: R2 = 10, R1 = 0 + 0.5·10 = 5, R0 = 1 + 0.5·5 = 3.5
    returns = discounted_returns(
        torch.tensor([1.0, 0.0, 10.0]), torch.tensor([4, 4, 4]), torch.tensor([0, 1, 2]), 0.5
    )
    close(returns, [3.5, 5.0, 10.0])


def test_discounted_returns_follow_step_not_batch_order() -> None:
    # two interleaved trajectories, rows shuffled
    rewards = torch.tensor([10.0, 2.0, 1.0, 0.0, 3.0])
    traj = torch.tensor([0, 1, 0, 0, 1])
    step = torch.tensor([2, 1, 0, 1, 0])
    returns = discounted_returns(rewards, traj, step, 0.9)
    # traj 0: steps (1, 0, 10) -> R0 = 1 + 0.9·0 + 0.81·10 = 9.1, R1 = 9, R2 = 10
    # traj 1: steps (3, 2)     -> R0 = 3 + 0.9·2 = 4.8, R1 = 2
    close(returns, [10.0, 2.0, 9.1, 9.0, 4.8])


def test_discounted_returns_reject_repeated_steps() -> None:
    with pytest.raises(ValueError, match="same step"):
        discounted_returns(torch.ones(2), torch.tensor([0, 0]), torch.tensor([1, 1]), 0.9)


# ----------------------------------------------------------------------------------------
# GiGPO
# ----------------------------------------------------------------------------------------

# Group 0, γ = 0.5:
#   traj 0 (won, return 10): observations a, b, c; rewards 0, 0, 10 -> R = 2.5, 5, 10
#   traj 1 (lost, return 0): observations a, d, b, e; rewards 0     -> R = 0, 0, 0, 0
# Group 1: traj 2, one step, observation a (same hash as in group 0), reward 3, return 3.
# Anchor groups: {0a, 1a} and {0b, 1b} (the state b is met at steps 1 and 2), the rest
# singletons; group 1's `a` is a group of its own.
A, B, C, D, E = 11, 22, 33, 44, 55
GIGPO = {
    "group": [0, 0, 0, 0, 0, 0, 0, 1],
    "traj": [0, 0, 0, 1, 1, 1, 1, 2],
    "step": [0, 1, 2, 0, 1, 2, 3, 0],
    "episode_return": [10.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 3.0],
    "reward": [0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 3.0],
    "anchor": [A, B, C, A, D, B, E, A],
}


def episode_level(std: bool) -> list[float]:
    scores = [10.0] * 3 + [0.0] * 4
    mean, sd = statistics.mean(scores), statistics.stdev(scores)
    scale = sd + EPS if std else 1.0
    return [(s - mean) / scale for s in scores] + [3.0 / (1 + EPS) if std else 3.0]


def test_gigpo_mean_norm_step_level() -> None:
    gigpo = GiGPOAdvantage(gamma=0.5, step_weight=1.0, mode="mean_norm")
    adv = gigpo(make_batch(**GIGPO))
    # A^S: state a: R 2.5 vs 0 -> ±1.25; state b: R 5 vs 0 -> ±2.5; singletons 0
    step = [1.25, 2.5, 0.0, -1.25, 0.0, -2.5, 0.0, 0.0]
    close(adv, [e + s for e, s in zip(episode_level(std=False), step, strict=True)])


def test_gigpo_mean_std_norm_step_level() -> None:
    gigpo = GiGPOAdvantage(gamma=0.5, step_weight=1.0, mode="mean_std_norm")
    adv = gigpo(make_batch(**GIGPO))
    # two-member anchor groups: (x - mean) / std = ±1/√2 whatever the spread
    h = 1.25 / (statistics.stdev([2.5, 0.0]) + EPS)
    step = [h, h, 0.0, -h, 0.0, -h, 0.0, 0.0]
    close(adv, [e + s for e, s in zip(episode_level(std=True), step, strict=True)])
    assert h == pytest.approx(1 / math.sqrt(2), abs=1e-5)


def test_gigpo_step_weight_scales_the_step_level_only() -> None:
    batch = make_batch(**GIGPO)
    full = GiGPOAdvantage(gamma=0.5, step_weight=1.0, mode="mean_norm")(batch)
    none = GiGPOAdvantage(gamma=0.5, step_weight=0.0, mode="mean_norm")(batch)
    half = GiGPOAdvantage(gamma=0.5, step_weight=0.5, mode="mean_norm")(batch)
    close(none, episode_level(std=False))
    torch.testing.assert_close(half, none + 0.5 * (full - none))
    # step_weight 0 is GRPO over steps without std
    torch.testing.assert_close(none, GRPOAdvantage(norm_by_std=False)(batch))


def test_gigpo_metrics_count_anchor_groups() -> None:
    gigpo = GiGPOAdvantage(gamma=0.5)
    gigpo(make_batch(**GIGPO))
    metrics = gigpo.metrics()
    # group 0: a, b, c, d, e; group 1: a -> 6 groups, 4 singletons, 8 samples
    assert metrics["num_step_groups"] == 6.0
    assert metrics["step_group_singleton_share"] == pytest.approx(4 / 6)
    assert metrics["step_group_size_mean"] == pytest.approx(8 / 6)
    assert metrics["num_groups"] == 2.0


def test_gigpo_penalty_hits_episode_score_and_step_rewards() -> None:
    # traj 0: observations x, y, z; rewards 0, 0, 10; the step-1 action was invalid (0.1)
    # traj 1: observation x; reward 10. Both won: returns 10.
    batch = make_batch(
        [0, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 1, 2, 0],
        [10.0] * 4,
        reward=[0.0, 0.0, 10.0, 10.0],
        penalty=[0.0, 0.1, 0.0, 0.0],
        anchor=[1, 2, 3, 1],
    )
    adv = GiGPOAdvantage(gamma=0.5, mode="mean_norm")(batch)
    # A^E: scores 10, 9.9, 10, 10 -> mean 9.975 -> 0.025, -0.075, 0.025, 0.025
    # R (traj 0) with r = reward - penalty = 0, -0.1, 10: R2 = 10, R1 = 4.9, R0 = 2.45
    # A^S: state x: 2.45 vs 10 -> mean 6.225 -> -3.775, +3.775; y, z singletons
    close(adv, [0.025 - 3.775, -0.075, 0.025, 0.025 + 3.775])


def test_gigpo_is_permutation_equivariant() -> None:
    batch = make_batch(**GIGPO)
    gigpo = GiGPOAdvantage(gamma=0.5)
    perm = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])
    torch.testing.assert_close(gigpo(batch[perm]), gigpo(batch)[perm])


def test_gigpo_padding_rows_get_zero() -> None:
    batch = make_batch(**GIGPO)
    padded = torch.cat([batch, make_batch([-1, -1], [-1, -1], [0, 0], [10.0, 10.0])], dim=0)
    gigpo = GiGPOAdvantage(gamma=0.5)
    adv = gigpo(padded)
    torch.testing.assert_close(adv[:8], gigpo(batch))
    assert adv[8:].tolist() == [0.0, 0.0]


def test_gigpo_with_collated_anchor_hashes() -> None:
    # anchor_key from collate_steps: the same text in the same group forms a step group
    def s(traj: int, step: int, obs: str, reward: float, ret: float) -> StepSample:
        return StepSample(
            [1],
            [2],
            [-0.1],
            reward=reward,
            episode_return=ret,
            group_id=0,
            traj_id=traj,
            step=step,
            anchor_observation=obs,
        )

    batch = collate_steps(
        [s(0, 0, "room", 0.0, 10.0), s(0, 1, "fridge", 10.0, 10.0), s(1, 0, "room", 0.0, 0.0)]
    )
    adv = GiGPOAdvantage(gamma=0.5, mode="mean_norm")(batch)
    # A^E: scores 10, 10, 0 -> mean 20/3; A^S: "room": R 5 vs 0 -> ±2.5
    close(adv, [10 - 20 / 3 + 2.5, 10 - 20 / 3, -20 / 3 - 2.5])


def test_gigpo_similarity_groups_near_identical_text() -> None:
    kitchen_mug = "You are in the kitchen. On the counter 1, you see a mug 1 and a knife 2."
    kitchen_cup = "You are in the kitchen. On the counter 1, you see a cup 1 and a knife 2."
    garden = "The garden is empty."
    assert difflib.SequenceMatcher(None, kitchen_cup, kitchen_mug).ratio() >= 0.9
    batch = make_batch(
        [0, 0, 0],
        [0, 1, 2],
        [0, 0, 0],
        [0.0, 0.0, 0.0],
        reward=[4.0, 0.0, 1.0],
        observations=[kitchen_mug, kitchen_cup, garden],
    )
    similar = GiGPOAdvantage(mode="mean_norm", similarity_threshold=0.9)(batch)
    close(similar, [2.0, -2.0, 0.0])
    # exact-match anchors (distinct hashes here) make every state a singleton
    exact = GiGPOAdvantage(mode="mean_norm")(batch)
    close(exact, [0.0, 0.0, 0.0])


def test_similarity_clusters_compare_with_the_first_member() -> None:
    first = "abcdefghij"
    second = "abcdefghXY"  # 0.8 to first
    third = "abcdefUVXY"  # 0.8 to second, 0.6 to first
    ratio = lambda a, b: difflib.SequenceMatcher(None, a, b).ratio()  # noqa: E731
    assert ratio(second, first) == pytest.approx(0.8)
    assert ratio(third, second) == pytest.approx(0.8)
    assert ratio(third, first) == pytest.approx(0.6)
    # greedy: second joins first's cluster; third is compared with its representative
    assert similarity_clusters([first, second, third], [0, 0, 0], 0.75) == [0, 0, 1]
    # clusters never cross groups
    assert similarity_clusters([first, first], [0, 1], 0.75) == [0, 1]


def test_gigpo_similarity_needs_observations() -> None:
    batch = make_batch([0], [0], [0], [1.0], observations=["x"])
    batch[K.PROMPT_CONTEXT] = NonTensorStack(None)
    with pytest.raises(ValueError, match=r"prompt_context\.observation"):
        GiGPOAdvantage(similarity_threshold=0.9)(batch)


def test_gigpo_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="mode"):
        GiGPOAdvantage(mode="std")
    with pytest.raises(ValueError, match="gamma"):
        GiGPOAdvantage(gamma=1.5)
    with pytest.raises(ValueError, match="similarity_threshold"):
        GiGPOAdvantage(similarity_threshold=0.0)


def test_advantages_are_fast_on_an_alfworld_sized_batch() -> None:
    # 16 groups x 8 trajectories x 50 steps = 6400 samples, the largest ALFWorld batch
    g = torch.Generator().manual_seed(0)
    n_groups, size, steps = 16, 8, 50
    traj = torch.arange(n_groups * size).repeat_interleave(steps)
    n = len(traj)
    batch = TensorDict(
        {
            K.GROUP_ID: traj // size,
            K.TRAJ_ID: traj,
            K.STEP: torch.arange(steps).repeat(n_groups * size),
            K.EPISODE_RETURN: (torch.rand(n_groups * size, generator=g) < 0.5)
            .float()
            .repeat_interleave(steps)
            * 10,
            K.REWARD: torch.zeros(n),
            K.PENALTY: (torch.rand(n, generator=g) < 0.1).float() * 0.1,
            K.ANCHOR_KEY: torch.randint(0, 30, (n,), generator=g),
            K.RESPONSE_MASK: torch.ones(n, 1, dtype=torch.bool),
        },
        batch_size=[n],
    )
    for estimator in (GRPOAdvantage(), GiGPOAdvantage()):
        estimator(batch)  # warm-up
        start = time.perf_counter()
        adv = estimator(batch)
        elapsed = time.perf_counter() - start
        assert adv.shape == (n,)
        assert torch.isfinite(adv).all()
        assert elapsed < 0.5, f"{type(estimator).__name__} took {elapsed:.3f}s"
