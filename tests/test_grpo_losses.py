"""PPO clip, KL and entropy loss terms, and the ``algo=grpo``/``algo=gigpo`` configs."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict

from skillzero import registry
from skillzero.contracts.losses import PolicyOutputs, WeightedTerm, combine
from skillzero.contracts.trajectory import K
from skillzero.core.config import compose, validate
from skillzero.plugins.grpo.losses import EntropyLoss, LowVarKLLoss, PPOClipLoss, kl_penalty

torch.set_num_threads(1)

# Row 0 has A = +1, row 1 has A = -1; the last token of each row is padding and holds a
# wild ratio that must not count. Ratios (ε = 0.2, dual clip c = 3):
#   A=+1, ρ=1.1: inside           -> -1.1
#   A=+1, ρ=1.5: above 1+ε        -> max(-1.5, -1.2) = -1.2   (clipped)
#   A=+1, ρ=0.5: below 1-ε, A>0   -> max(-0.5, -0.8) = -0.5   (not clipped)
#   A=-1, ρ=0.5: below 1-ε, A<0   -> max(0.5, 0.8)   =  0.8   (clipped)
#   A=-1, ρ=5.0: far above        -> max(5, 1.2) = 5, min(5, 3) = 3 (dual clip)
#   A=-1, ρ=1.1: inside           ->  1.1
RATIOS = [[1.1, 1.5, 0.5, 100.0], [0.5, 5.0, 1.1, 1e-3]]
MASK = [[True, True, True, False], [True, True, True, False]]
PER_TOKEN = [-1.1, -1.2, -0.5, 0.8, 3.0, 1.1]


def ppo_batch(
    ratios: list[list[float]] = RATIOS,
    advantages: list[float] | torch.Tensor = (1.0, -1.0),
    mask: list[list[bool]] = MASK,
) -> tuple[TensorDict, torch.Tensor]:
    """A batch with old log-probs and the new log-probs (with grad) giving ``ratios``."""
    old = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-1.5, -0.7, -2.2, -1.0]])[:, : len(ratios[0])]
    old = old[: len(ratios)]
    new = (old + torch.tensor(ratios).log()).requires_grad_(True)
    batch = TensorDict(
        {
            K.RESPONSE_MASK: torch.tensor(mask),
            K.OLD_LOG_PROBS: old,
            K.ADVANTAGES: torch.as_tensor(advantages, dtype=torch.float32),
        },
        batch_size=[len(ratios)],
    )
    return batch, new


def test_ppo_clip_hand_computed_loss_and_metrics() -> None:
    batch, new = ppo_batch()
    out = PPOClipLoss(clip_ratio=0.2, dual_clip=3.0)(batch, PolicyOutputs(new))
    assert float(out.loss.detach()) == pytest.approx(sum(PER_TOKEN) / 6, abs=1e-5)
    assert out.metrics["clip_fraction"] == pytest.approx(2 / 6)
    assert out.metrics["dual_clip_fraction"] == pytest.approx(1 / 6)
    real = [1.1, 1.5, 0.5, 0.5, 5.0, 1.1]
    assert out.metrics["ratio_mean"] == pytest.approx(sum(real) / 6, abs=1e-5)
    assert out.metrics["approx_kl"] == pytest.approx(-sum(math.log(r) for r in real) / 6, abs=1e-5)


def test_ppo_clip_gradient_vanishes_where_clipped() -> None:
    batch, new = ppo_batch()
    PPOClipLoss()(batch, PolicyOutputs(new)).loss.backward()
    # d/dlogπ of -Aρ is -Aρ; clipped and dual-clipped tokens (and padding) get none
    expected = torch.tensor([[-1.1, 0.0, -0.5, 0.0], [0.0, 0.0, 1.1, 0.0]]) / 6
    torch.testing.assert_close(new.grad, expected)


def test_ppo_clip_without_dual_clip() -> None:
    batch, new = ppo_batch()
    out = PPOClipLoss(dual_clip=None)(batch, PolicyOutputs(new))
    per_token = [*PER_TOKEN[:4], 5.0, PER_TOKEN[5]]
    assert float(out.loss.detach()) == pytest.approx(sum(per_token) / 6, abs=1e-5)
    assert out.metrics["dual_clip_fraction"] == 0.0


def test_ppo_clip_asymmetric_clip_higher() -> None:
    batch, new = ppo_batch()
    out = PPOClipLoss(clip_ratio_low=0.2, clip_ratio_high=0.28)(batch, PolicyOutputs(new))
    per_token = [-1.1, -1.28, *PER_TOKEN[2:]]
    assert float(out.loss.detach()) == pytest.approx(sum(per_token) / 6, abs=1e-5)


def test_ppo_clip_accepts_per_token_advantages() -> None:
    # (B, R) advantages: row 0 gets A = +1 then -1 then +1
    per_token = torch.tensor([[1.0, -1.0, 1.0, 0.0], [-1.0, -1.0, -1.0, 0.0]])
    batch, new = ppo_batch(advantages=per_token)
    out = PPOClipLoss()(batch, PolicyOutputs(new))
    # token (0, 1): A=-1, ρ=1.5 -> max(1.5, 1.2) = 1.5 (below the dual bound 3)
    expected = [-1.1, 1.5, -0.5, *PER_TOKEN[3:]]
    assert float(out.loss.detach()) == pytest.approx(sum(expected) / 6, abs=1e-5)


def test_ppo_clip_at_ratio_one_is_minus_mean_advantage() -> None:
    batch, new = ppo_batch(ratios=[[1.0, 1.0, 1.0, 1.0]] * 2, advantages=[2.0, -0.5])
    out = PPOClipLoss()(batch, PolicyOutputs(new))
    assert float(out.loss.detach()) == pytest.approx(-(3 * 2.0 - 3 * 0.5) / 6, abs=1e-6)
    assert out.metrics["clip_fraction"] == 0.0
    assert out.metrics["approx_kl"] == pytest.approx(0.0, abs=1e-7)


def test_ppo_clip_rejects_dual_clip_at_most_one() -> None:
    with pytest.raises(ValueError, match="dual_clip"):
        PPOClipLoss(dual_clip=1.0)


def test_ppo_clip_micro_batches_sum_to_the_mini_batch_token_mean() -> None:
    # four rows with 3, 1, 4, 2 response tokens, split 2 + 2 as the trainer would
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([3, 1, 4, 2])
    mask = torch.arange(4).expand(4, 4) < lengths.unsqueeze(1)
    old = -torch.rand(4, 4, generator=g) * 2
    new = (old + (torch.rand(4, 4, generator=g) - 0.5)).requires_grad_(True)
    batch = TensorDict(
        {
            K.RESPONSE_MASK: mask,
            K.OLD_LOG_PROBS: old,
            K.ADVANTAGES: torch.tensor([1.5, -0.7, 0.3, -2.0]),
        },
        batch_size=[4],
    )
    term = PPOClipLoss()
    whole = term(batch, PolicyOutputs(new))
    weighted = batch.clone()
    weighted[K.TOKEN_WEIGHT] = mask.float() / mask.sum()
    parts = [term(weighted[rows], PolicyOutputs(new[rows])) for rows in (slice(0, 2), slice(2, 4))]
    assert float(sum(p.loss for p in parts).detach()) == pytest.approx(
        float(whole.loss.detach()), abs=1e-6
    )
    for key, value in whole.metrics.items():
        assert sum(p.metrics[key] for p in parts) == pytest.approx(value, abs=1e-6), key
    # the unequal split would be wrong with a per-micro-batch mean
    naive = sum(
        float(term(batch[rows], PolicyOutputs(new[rows])).loss.detach())
        for rows in ([0, 1], [2, 3])
    )
    assert naive / 2 != pytest.approx(float(whole.loss.detach()), abs=1e-3)


# ----------------------------------------------------------------------------------------
# KL
# ----------------------------------------------------------------------------------------


def kl_batch(ref: list[list[float]]) -> TensorDict:
    return TensorDict(
        {
            K.RESPONSE_MASK: torch.ones(len(ref), len(ref[0]), dtype=torch.bool),
            K.REF_LOG_PROBS: torch.tensor(ref),
        },
        batch_size=[len(ref)],
    )


def test_low_var_kl_matches_the_k3_formula() -> None:
    logp = torch.tensor([[-1.0, -2.0]])
    out = LowVarKLLoss()(kl_batch([[-1.5, -1.0]]), PolicyOutputs(logp))
    # δ = ref - logp = -0.5, 1.0; k3 = exp(δ) - δ - 1
    k3 = [math.exp(-0.5) + 0.5 - 1, math.exp(1.0) - 1.0 - 1]
    assert float(out.loss.detach()) == pytest.approx(sum(k3) / 2, abs=1e-6)
    assert out.metrics["kl"] == pytest.approx(sum(k3) / 2, abs=1e-6)


def test_low_var_kl_is_zero_with_zero_gradient_at_equality() -> None:
    logp = torch.tensor([[-0.3, -4.0, -1.2]], requires_grad=True)
    out = LowVarKLLoss()(kl_batch([[-0.3, -4.0, -1.2]]), PolicyOutputs(logp))
    out.loss.backward()
    assert float(out.loss.detach()) == 0.0
    assert torch.all(logp.grad.abs() < 1e-7)


def test_low_var_kl_is_clamped() -> None:
    logp = torch.tensor([[-6.0]])
    # δ = 5: exp(5) - 6 = 142.4, clamped to 10 (or to 50)
    assert float(LowVarKLLoss()(kl_batch([[-1.0]]), PolicyOutputs(logp)).loss) == 10.0
    assert float(LowVarKLLoss(clamp=50)(kl_batch([[-1.0]]), PolicyOutputs(logp)).loss) == 50.0
    unclamped = LowVarKLLoss(clamp=None)(kl_batch([[-1.0]]), PolicyOutputs(logp)).loss
    assert float(unclamped) == pytest.approx(math.exp(5) - 6, rel=1e-5)


def test_kl_kinds() -> None:
    logp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(kl_penalty(logp, ref, "mse"), torch.tensor([0.125, 0.5]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), torch.tensor([0.125, 0.5]))
    torch.testing.assert_close(kl_penalty(logp, ref, "abs"), torch.tensor([0.5, 1.0]))
    out = LowVarKLLoss(kind="k1")(kl_batch([[-1.5, -1.0]]), PolicyOutputs(logp[None]))
    assert float(out.loss.detach()) == pytest.approx(-0.25)


def test_kl_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown KL kind"):
        LowVarKLLoss(kind="k4")


def test_kl_requires_reference_log_probs() -> None:
    assert LowVarKLLoss.requires == frozenset({K.REF_LOG_PROBS})
    assert PPOClipLoss.requires == frozenset({K.OLD_LOG_PROBS, K.ADVANTAGES})


# ----------------------------------------------------------------------------------------
# Entropy
# ----------------------------------------------------------------------------------------


def test_entropy_negative_coef_is_a_bonus() -> None:
    batch = TensorDict({K.RESPONSE_MASK: torch.tensor([[True, True, False]])}, batch_size=[1])
    entropy = torch.tensor([[1.0, 2.0, 50.0]], requires_grad=True)
    assert EntropyLoss.needs_entropy
    out = EntropyLoss()(batch, PolicyOutputs(torch.zeros(1, 3), entropy))
    assert float(out.loss.detach()) == pytest.approx(1.5)
    assert out.metrics["entropy"] == pytest.approx(1.5)
    total = combine(
        [WeightedTerm("entropy", -0.001, EntropyLoss())],
        batch,
        PolicyOutputs(torch.zeros(1, 3), entropy),
    )
    assert float(total.loss.detach()) == pytest.approx(-0.0015)
    total.loss.backward()
    # minimising the total raises the entropy of real tokens (negative gradient)
    torch.testing.assert_close(entropy.grad, torch.tensor([[-0.0005, -0.0005, 0.0]]))


def test_entropy_needs_the_entropy_output() -> None:
    batch = TensorDict({K.RESPONSE_MASK: torch.ones(1, 2, dtype=torch.bool)}, batch_size=[1])
    with pytest.raises(ValueError, match="entropy"):
        EntropyLoss()(batch, PolicyOutputs(torch.zeros(1, 2)))


# ----------------------------------------------------------------------------------------
# The plugin and its configs
# ----------------------------------------------------------------------------------------


def test_plugin_registers_its_components() -> None:
    components = registry.plugin_components("grpo")
    assert sorted(components["advantage_estimators"]) == ["gigpo", "grpo"]
    assert sorted(components["loss_terms"]) == ["entropy", "kl", "ppo_clip"]
    assert "pkg://skillzero.plugins.grpo.conf" in registry.config_search_paths()


@pytest.mark.parametrize("algo", ["grpo", "gigpo"])
def test_algo_config_builds_its_components(algo: str) -> None:
    cfg = validate(compose([f"algo={algo}"]))
    assert cfg.algo.name == algo
    estimator = registry.get("advantage_estimators", cfg.algo.advantage.name).create(
        **cfg.algo.advantage.params
    )
    terms = [
        WeightedTerm(t.name, t.coef, registry.get("loss_terms", t.name).create(**t.params))
        for t in cfg.algo.loss_terms
    ]
    assert [(t.name, t.coef) for t in terms] == [
        ("ppo_clip", 1.0),
        ("kl", 0.01),
        ("entropy", -0.001),
    ]
    # one tiny batch through the whole algorithm
    batch, new = ppo_batch()
    batch[K.GROUP_ID] = torch.tensor([0, 0])
    batch[K.TRAJ_ID] = torch.tensor([0, 1])
    batch[K.STEP] = torch.tensor([0, 0])
    batch[K.EPISODE_RETURN] = torch.tensor([10.0, 0.0])
    batch[K.REWARD] = torch.tensor([10.0, 0.0])
    batch[K.ANCHOR_KEY] = torch.tensor([1, 1])
    batch[K.REF_LOG_PROBS] = batch[K.OLD_LOG_PROBS]
    batch[K.ADVANTAGES] = estimator(batch)
    assert batch[K.ADVANTAGES][0] > 0 > batch[K.ADVANTAGES][1]
    outputs = PolicyOutputs(new, entropy=torch.ones(2, 4))
    out = combine(terms, batch, outputs)
    assert torch.isfinite(out.loss)
    assert {"loss/ppo_clip", "loss/kl", "loss/entropy", "ppo_clip/clip_fraction"} <= set(
        out.metrics
    )
    separately = [t.coef * float(t.term(batch, outputs).loss.detach()) for t in terms]
    assert out.metrics["loss/total"] == pytest.approx(sum(separately), abs=1e-6)
